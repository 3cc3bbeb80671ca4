"""The degradation pipeline (``--preprocessing``): turns a clean segment into a (degraded, target) pair.

Syntax: steps separated by commas, each step's words by spaces, e.g. ``"sample 5000 10000,whitenoise 0 0.002"``.
:func:`parse_pipeline` validates the whole string before any audio is touched; a mistake raises
:class:`DegradationError` naming the step, the syntax it expects and what it got.

Every step works on float64 mono ``[samples]`` pairs ``(degraded, target)``: it degrades ``degraded`` and keeps
``target`` time aligned with it (reverberation is aligned on the direct path, and its target is the clean
signal through the room's direct sound). Steps that change the sample rate (``sample``, ``reverb``,
``scale``, as in the original tool) resample both signals. Pure numpy/scipy/soxr (and
pyroomacoustics for ``rir simulate``): nothing is shelled out.

Steps (the original tool's first, then the new ones), by family module:

- :mod:`.band`: ``sample LOW HIGH`` (degraded resampled to LOW Hz then to HIGH Hz, band limit LOW/2; target
  resampled to HIGH), ``scale RATE`` (both signals resampled to RATE), ``lowpass HZ [cheby1|butter] [ORDER]``,
  ``bandlimit HZ_MIN HZ_MAX`` (random cutoff and filter), ``miceq`` (a random microphone EQ, :mod:`.colour`);
- :mod:`.noise`: ``whitenoise|pinknoise|brownnoise|tpdfnoise VARIANCE VOLUME`` (additive noise of that colour),
  ``noise DIR SNR_MIN SNR_MAX``, ``noise synth SNR_MIN SNR_MAX [KINDS]`` (generators in :mod:`.noisegen`);
- :mod:`.reverb`: ``reverb RATE [VARIANCE [REVERBERANCE [HF_DAMPING [ROOM_SCALE [STEREO_DEPTH [PRE_DELAY
  [WET_GAIN]]]]]]]``, ``rir DIR [DRR_MIN DRR_MAX]``, ``rir simulate RT60_MIN RT60_MAX`` (rooms from :mod:`.rooms`);
- :mod:`.level`: ``clip LEVEL``, ``quantize BITS``, ``gain DB_MIN DB_MAX``;
- :mod:`.control`: ``maybe P STEP ...`` (a step with probability P), ``both STEP ...`` (applied to the target
  too, with the same draws), ``identity P`` (with probability P, stop here: clean or lightly degraded pairs).

Each step class's docstring gives its exact reading of the parameters. :mod:`.base` holds the step base and the
one registry of names; :mod:`.pipeline` parses a string once and runs it; :mod:`.device` runs the same steps
with torch on whole batches (imported on its own: it needs torch).
"""

from rt_enhance.training.degrade.band import Bandlimit, Lowpass, MicColour, Sample, Scale
from rt_enhance.training.degrade.base import (
    DIRECT_SECONDS,
    EARLY_TAPER_SECONDS,
    STEPS,
    DegradationError,
    Pair,
    Param,
    ParamError,
    Step,
    convolve_aligned,
    direct_part,
    early_part,
    fit_length,
    register,
    resample,
)
from rt_enhance.training.degrade.control import Both, Identity, Maybe
from rt_enhance.training.degrade.files import AudioFolder
from rt_enhance.training.degrade.level import Clip, Gain, Quantize
from rt_enhance.training.degrade.noise import ColouredNoise, Noise
from rt_enhance.training.degrade.pipeline import Pipeline, parse_pipeline
from rt_enhance.training.degrade.reverb import Reverb, RirFiles, RirSimulate, simulate_rir

__all__ = [
    "DIRECT_SECONDS",
    "EARLY_TAPER_SECONDS",
    "STEPS",
    "AudioFolder",
    "Bandlimit",
    "Both",
    "Clip",
    "ColouredNoise",
    "DegradationError",
    "Gain",
    "Identity",
    "Lowpass",
    "Maybe",
    "MicColour",
    "Noise",
    "Pair",
    "Param",
    "ParamError",
    "Pipeline",
    "Quantize",
    "Reverb",
    "RirFiles",
    "RirSimulate",
    "Sample",
    "Scale",
    "Step",
    "convolve_aligned",
    "direct_part",
    "early_part",
    "fit_length",
    "parse_pipeline",
    "register",
    "resample",
    "simulate_rir",
]
