"""From a folder of WAVs to a live model: rt-train (1 epoch), rt-train --continue, rt-export, rt-enhance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import soundfile as sf
import torch
from helpers import train_argv

from rt_enhance.export import cli as export_cli
from rt_enhance.realtime import cli as enhance_cli
from rt_enhance.training import cli as train_cli

SYSTEMS = {"degraded", "spline", "sinc", "model (offline)", "model (engine)"}
METRIC_KEYS = {"snr", "si_sdr", "lsd", "pesq", "stoi", "highs"}


def test_folder_of_wavs_to_live_model(tmp_path: Path, tiny_corpus: Path, capsys) -> None:
    runs, run = tmp_path / "runs", tmp_path / "runs" / "t"
    flags = "-e 1 -c 3 -b 4 -s 512 --size tiny --val_count 2 --best_metric loss"
    argv = train_argv(runs, tiny_corpus, "t", flags, "--preprocessing", "sample 8000 16000,whitenoise 0 0.01")
    assert train_cli.main(argv) == 0
    printed = capsys.readouterr()
    summary = re.search(r"best\.pt is epoch 1 \(loss (\S+)\)", printed.out)
    assert summary and float(summary[1]) > 0  # the best validation loss as it is (L2: positive), not the score
    for name in ("best.pt", "last.pt", "config.json", "eval/metrics.md", "eval/metrics.json", "eval/spectrogram.png"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    first = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(first["systems"]) == SYSTEMS
    assert all(set(m) == METRIC_KEYS for m in first["systems"].values())
    assert "| model (engine) |" in (run / "eval" / "metrics.md").read_text()
    enhanced = sorted(p.name for p in (run / "eval").glob("*.wav"))
    assert any(n.endswith(".engine.wav") for n in enhanced) and any(n.endswith(".enhanced.wav") for n in enhanced)

    assert train_cli.main(["-n", "t", "--runs", str(runs), "--continue", "-e", "2"]) == 0
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["resume"]["progress"]["epoch"] == 2 and last["resume"]["progress"]["step"] == 6

    model = tmp_path / "t.onnx"
    assert export_cli.main([str(run / "best.pt"), "--out", str(model)]) == 0
    props = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert (props["sample_rate"], props["window"], props["hop"], props["task"]) == ("16000", "1024", "160", "joint")
    assert json.loads(props["training"])["epochs"] in (1, 2) and "si_sdr" in json.loads(props["metrics"])["val"]

    t = np.arange(16000) / 16000
    noisy = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.01 * np.random.default_rng(0).standard_normal(16000)
    sf.write(tmp_path / "x.wav", noisy.astype(np.float32), 16000, subtype="FLOAT")
    code = enhance_cli.main(["--model", str(model), "--in", str(tmp_path / "x.wav"), "--out", str(tmp_path / "y.wav"), "-q"])
    assert code == 0
    out, rate = sf.read(tmp_path / "y.wav", dtype="float32")
    assert rate == 16000 and out.shape == noisy.shape and np.isfinite(out).all() and np.abs(out).max() > 0

    assert train_cli.main(["-n", "t", "--runs", str(runs), "--load", "--engine_eval", "false"]) == 0
    again = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(again["systems"]) == SYSTEMS - {"model (engine)"}
