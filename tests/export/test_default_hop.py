"""One default hop per streaming model: what ``rt-export --init SIZE`` writes is what a checkpoint
trained from SIZE carries (stream-base was 480 from one and 96 from the other)."""

from __future__ import annotations

import pytest

from rt_enhance.export.cli import load_source, parse_args, streaming_hop
from rt_enhance.model.sizes import SIZES
from rt_enhance.training.models import build_meta

STREAMING = [name for name, size in SIZES.items() if size.family != "Generator"]


@pytest.mark.parametrize("name", STREAMING)
def test_rt_export_init_and_a_trained_checkpoint_agree_on_the_hop(name: str, tmp_path) -> None:
    args = parse_args(["--init", name, "--out", str(tmp_path / "m.onnx")])
    source = load_source(args)
    meta = build_meta(
        source.model,
        name=name,
        rate=source.model.sample_rate,
        window=4096,
        task="denoise",
        description="",
        training={},
        metrics={},
        size=name,
    )
    assert streaming_hop(args, source) == meta["hop"] == SIZES[name].hop


def test_stream_base_defaults_to_its_10_ms_hop_and_a_sizeless_model_to_its_2_ms_step(tmp_path) -> None:
    source = load_source(parse_args(["--init", "stream-base", "--out", str(tmp_path / "m.onnx")]))
    common = {"name": "b", "rate": 48000, "window": 4096, "task": "denoise", "description": "", "training": {}, "metrics": {}}
    assert build_meta(source.model, size="stream-base", **common)["hop"] == 480
    assert build_meta(source.model, **common)["hop"] == 96  # stride 16: the smallest multiple of at least 2 ms
