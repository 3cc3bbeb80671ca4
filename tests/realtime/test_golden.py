"""Golden files: each shipped model on a short committed clip, with expected metrics and tolerances.

A change that moves a shipped model's output (a retrained model, an engine change) fails here until
the expectation is updated on purpose: ``RT_GOLDEN_UPDATE=1 pytest tests/realtime/test_golden.py``
rewrites ``tests/golden/MODEL.json`` from the current output (review the diff before committing).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import run_cli

from rt_enhance.realtime.processor import bundled_model_path
from rt_enhance.training.metrics import lsd, si_sdr, snr

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))  # CASE.json runs the model of its "model" key, else CASE

TOLERANCE = {"si_sdr": 0.05, "lsd": 0.01, "snr": 0.05}  # dB, dB, dB: float noise across machines only


def case_model(case: str) -> str:
    return json.loads((GOLDEN / f"{case}.json").read_text()).get("model", case)


def metrics(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    return {"si_sdr": si_sdr(ref, est), "lsd": lsd(ref, est), "snr": snr(ref, est)}


def test_every_bundled_model_has_a_golden_file():
    from rt_enhance.realtime.processor import bundled_models_dir

    folder = Path(bundled_models_dir())
    shipped = sorted(p.stem for p in folder.glob("*.onnx")) if folder.is_dir() else []
    assert set(shipped) <= set(CASES), f"add tests/golden/NAME.json for {sorted(set(shipped) - set(CASES))}"
    assert {case_model(case) for case in CASES} <= set(shipped), (shipped, CASES)


@pytest.mark.parametrize("case", CASES or [pytest.param(None, marks=pytest.mark.skip(reason="no model is bundled yet"))])
def test_shipped_model_on_its_golden_clip(tmp_path, case):
    spec = json.loads((GOLDEN / f"{case}.json").read_text())
    model = spec.get("model", case)
    assert bundled_model_path(model) is not None, f"golden file for {model} but no realtime/models/{model}.onnx"
    out = tmp_path / "out.wav"
    done = run_cli("--in", str(GOLDEN / spec["input"]), "--out", str(out), "--model", model, "-q", *spec.get("flags", []))
    assert done.returncode == 0, done.stderr
    clean = sf.read(GOLDEN / spec["reference"], dtype="float64")[0]
    noisy = sf.read(GOLDEN / spec["input"], dtype="float64")[0]
    enhanced = sf.read(out, dtype="float64")[0]
    got, before = metrics(clean, enhanced), metrics(clean, noisy)
    if os.environ.get("RT_GOLDEN_UPDATE"):
        spec.update(expected=got, input_metrics=before)
        (GOLDEN / f"{case}.json").write_text(json.dumps(spec, indent=2) + "\n")
    for key, tolerance in TOLERANCE.items():
        assert abs(got[key] - spec["expected"][key]) <= tolerance, (key, got, spec["expected"])
    for key in spec.get("helps", ["si_sdr"]):  # the model helps on its clip, by the metrics its task moves
        better = got[key] < before[key] if key == "lsd" else got[key] > before[key]
        assert better, (key, got[key], before[key])
