"""A fast start: what ``rt-enhance --help`` / ``--list-devices`` and file mode import."""

import subprocess
import sys

HEAVY = ("numpy", "numba", "onnxruntime", "torch", "soundfile", "soxr")


def imported_after(code: str) -> set[str]:
    """The HEAVY modules loaded once ``code`` has run in a fresh interpreter."""
    probe = f"import sys\n{code}\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(filter(None, out.strip().splitlines()[-1].removeprefix("loaded:").split(",")))


def test_help_imports_nothing_heavy():
    code = "from rt_enhance.realtime import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == set()


def test_list_devices_imports_no_model_runtime():
    code = "from rt_enhance.realtime import cli\ncli.main(['--list-devices'])"
    assert not imported_after(code) & {"numba", "onnxruntime", "torch"}


def test_file_mode_with_a_streaming_model_needs_no_numba(tmp_path):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "in.wav", np.zeros((4800, 1), np.float32), 48000)
    code = (
        f"from rt_enhance.realtime import cli\n"
        f"assert cli.main(['--in', {str(tmp_path / 'in.wav')!r}, '--out', {str(tmp_path / 'out.wav')!r}, "
        f"'--model', 'speech-monitor', '-q']) == 0"
    )
    loaded = imported_after(code)
    assert "onnxruntime" in loaded and "numba" not in loaded  # the model ran, no kernel was loaded
    assert sf.info(str(tmp_path / "out.wav")).frames == 4800
