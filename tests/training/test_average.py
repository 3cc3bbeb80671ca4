"""Weight averages of checkpoints: the mean is exact, mismatched models are refused with one line, and
``rt-train --average N`` keeps the last N epochs and writes their mean."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import train_argv

from rt_enhance.model.checkpoint import load_checkpoint
from rt_enhance.training import average, cli


def _argv(runs: Path, corpus: Path, name: str, *extra: str) -> list[str]:
    flags = "-s 512 --size tiny -b 4 -c 2 --val_count 2 --workers 0 --deterministic --eval false --tensorboard false"
    return train_argv(runs, corpus, name, flags, "--preprocessing", "whitenoise 0 0.02", *extra)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state"]


def test_rt_train_average_keeps_the_last_epochs_and_writes_their_mean(tmp_path: Path, tiny_corpus: Path) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "r", "-e", "3", "--average", "2", "--lr_g", "1e-2")) == 0
    run = tmp_path / "r"
    kept = sorted(p.name for p in (run / "epochs").iterdir())
    assert kept == ["e0002.pt", "e0003.pt"]  # epoch 1 dropped once two later ones were kept
    assert "resume" not in torch.load(run / "epochs" / "e0003.pt", weights_only=True)  # weights only
    two, three = _weights(run / "epochs" / "e0002.pt"), _weights(run / "epochs" / "e0003.pt")
    last = _weights(run / "last.pt")
    assert all(torch.equal(three[name], last[name]) for name in last)  # the last epoch's weights, as last.pt holds them
    mean = _weights(run / "average.pt")
    moved = [name for name in two if two[name].is_floating_point() and not torch.equal(two[name], three[name])]
    assert moved  # the epochs differ, so the mean is something new
    for name in moved:
        torch.testing.assert_close(mean[name], (two[name].double() + three[name].double()).div(2).float(), rtol=0, atol=1e-7)
    model, extra = load_checkpoint(run / "average.pt")  # what rt-export and --init_from read
    assert [Path(a["checkpoint"]).name for a in extra["meta"]["averaged"]] == ["e0002.pt", "e0003.pt"]
    # --continue goes on keeping and averaging
    assert cli.main(["-n", "r", "--runs", str(tmp_path), "--continue", "-e", "4"]) == 0
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["e0003.pt", "e0004.pt"]


def test_weighted_mean_and_the_command_line(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "a", "-e", "1")) == 0
    assert cli.main(_argv(tmp_path, tiny_corpus, "b", "-e", "1", "--seed", "7")) == 0
    a, b = tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt"
    out = tmp_path / "soup.pt"
    assert average.main([str(out), str(a), str(b), "--weights", "3,1"]) == 0
    wa, wb, soup = _weights(a), _weights(b), _weights(out)
    for name in wa:
        if wa[name].is_floating_point():
            torch.testing.assert_close(soup[name], (0.75 * wa[name].double() + 0.25 * wb[name].double()).float(), rtol=0, atol=1e-7)
    assert "resume" not in torch.load(out, weights_only=True)


def test_checkpoints_of_other_models_or_bad_weights_get_one_line(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "tiny", "-e", "1")) == 0
    assert cli.main(_argv(tmp_path, tiny_corpus, "other", "-e", "1", "--size", "small")) == 0
    capsys.readouterr()
    tiny, other = str(tmp_path / "tiny" / "last.pt"), str(tmp_path / "other" / "last.pt")
    assert average.main([str(tmp_path / "x.pt"), tiny, other]) == 2
    err = capsys.readouterr().err
    assert err.startswith("average: ") and "another model" in err and err.count("\n") == 1
    assert average.main([str(tmp_path / "x.pt"), tiny, tiny, "--weights", "1,-1"]) == 2
    assert "finite non-negative" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_a_layer_takes_weights_of_its_own(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "a", "-e", "1")) == 0
    assert cli.main(_argv(tmp_path, tiny_corpus, "b", "-e", "1", "--seed", "7")) == 0
    a, b = tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt"
    wa, wb = _weights(a), _weights(b)
    floats = [n for n in wa if wa[n].is_floating_point()]
    prefix = floats[0].split(".")[0] + "."
    out = tmp_path / "soup.pt"
    assert average.main([str(out), str(a), str(b), "--weights", "0,1", "--layer", f"{prefix}=7,3"]) == 0
    soup = _weights(out)
    for name in floats:
        if name.startswith(prefix):
            torch.testing.assert_close(soup[name], (0.7 * wa[name].double() + 0.3 * wb[name].double()).float(), rtol=0, atol=1e-7)
        else:
            assert torch.equal(soup[name], wb[name])
    assert any(not n.startswith(prefix) for n in floats)  # the rest really is b's
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["averaged_layers"] == {prefix: [0.7, 0.3]}
    capsys.readouterr()
    # a prefix that names no tensor is refused, not ignored
    assert average.main([str(tmp_path / "x.pt"), str(a), str(b), "--layer", "nothing_here=1,1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("average: ") and "nothing_here" in err and err.count("\n") == 1
    assert not (tmp_path / "x.pt").exists()
