"""Self-describing, atomic checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rt_enhance.model import CheckpointError, Discriminator, Generator, load_checkpoint, save_checkpoint
from rt_enhance.model.checkpoint import FORMAT_VERSION

KWARGS = {"depth": 2, "width": 0.125, "max_kernel": 9, "prelu": True, "downsample": "superpixel"}


def test_roundtrip_rebuilds_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Generator(**KWARGS).eval()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 1, 64)).sum().backward()
    optimizer.step()
    extra = {"meta": {"sample_rate": 48000, "task": "denoise", "metrics": {"snr": 12.5}}, "step": 3, "optimizer": optimizer.state_dict()}
    path = tmp_path / "ckpt" / "g.pt"
    save_checkpoint(path, model, extra=extra)
    loaded, got = load_checkpoint(path)
    assert isinstance(loaded, Generator) and not loaded.training
    assert loaded.init_kwargs == model.init_kwargs
    x = torch.randn(2, 1, 64)
    assert torch.equal(loaded(x), model(x))
    assert got["meta"] == extra["meta"] and got["step"] == 3
    torch.optim.Adam(loaded.parameters()).load_state_dict(got["optimizer"])
    raw = torch.load(path, weights_only=True)  # plain content: safe to load anywhere
    assert raw["format_version"] == FORMAT_VERSION and raw["class"] == "Generator"
    assert list(tmp_path.joinpath("ckpt").iterdir()) == [path]  # no temporary file left


def test_discriminator_roundtrip(tmp_path: Path) -> None:
    model = Discriminator(depth=2, width=0.125, max_kernel=9, window=64, conditional=True)
    save_checkpoint(tmp_path / "d.pt", model)
    loaded, extra = load_checkpoint(tmp_path / "d.pt")
    assert isinstance(loaded, Discriminator) and loaded.conditional and extra == {}


def test_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.pt"
    save_checkpoint(path, Generator(**KWARGS), extra={"step": 1})
    before = path.read_bytes()

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, Generator(**KWARGS), extra={"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.pt"]


def test_non_plain_extra_is_refused_at_save(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"extra\['meta'\]\['snr'\] is a numpy.float64"):
        save_checkpoint(tmp_path / "g.pt", Generator(**KWARGS), extra={"meta": {"snr": np.float64(3.0)}})
    with pytest.raises(CheckpointError, match="reserved"):
        save_checkpoint(tmp_path / "g.pt", Generator(**KWARGS), extra={"state": {}})
    assert not (tmp_path / "g.pt").exists()


def _payload(**changes: object) -> dict:
    model = Generator(**KWARGS)
    payload = {"format_version": FORMAT_VERSION, "class": "Generator", "kwargs": model.init_kwargs, "state": model.state_dict()}
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"format_version": 99}, "format_version 99; this version of rt-enhance reads 1"),
        ({"class": "os.system"}, "unknown model class 'os.system'"),
        ({"kwargs": {"depth": 2, "colour": "red"}}, "cannot build Generator"),
        ({"kwargs": {**KWARGS, "depth": 3}}, "weights do not match"),
    ],
)
def test_bad_checkpoints_get_one_line(tmp_path: Path, changes: dict, message: str) -> None:
    path = tmp_path / "bad.pt"
    torch.save(_payload(**changes), path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable rt-enhance checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no format_version"):
        load_checkpoint(tmp_path / "other.pt")
