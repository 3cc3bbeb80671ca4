"""``--continue`` really resumes: 2 epochs in one go equal 1 epoch + --continue + 1 epoch, bit for bit
(model, discriminator, optimizers, scheduler, RNG-driven dropout); run folders are never reused silently."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import train_argv

from rt_enhance.training import cli
from rt_enhance.training.state import Progress, capture_rng, restore_rng


def _argv(runs: Path, corpus: Path, name: str, *extra: str) -> list[str]:
    flags = "-s 512 --size tiny -b 4 -c 3 --val_count 2 --workers 0 --deterministic --eval false --tensorboard false"
    return train_argv(runs, corpus, name, flags, "--preprocessing", "whitenoise 0 0.02", *extra)


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same(a, b, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("disc", [("--disc", "unet"), ("--disc", "mpd-mrd", "--fm", "0.5")], ids=["unet", "mpd-mrd"])
def test_two_epochs_equal_one_epoch_continue_one_epoch(tmp_path: Path, tiny_corpus: Path, disc: tuple[str, ...]) -> None:
    gan = ("--gan", "0.05", "--scheduler", "True", "--dropout", "0.5", *disc)
    assert cli.main(_argv(tmp_path, tiny_corpus, "whole", "-e", "2", *gan)) == 0
    assert cli.main(_argv(tmp_path, tiny_corpus, "split", "-e", "1", *gan)) == 0
    assert cli.main(["-n", "split", "--runs", str(tmp_path), "--continue", "True", "-e", "2"]) == 0
    whole, split = _state(tmp_path / "whole" / "last.pt"), _state(tmp_path / "split" / "last.pt")
    _assert_same(whole["state"], split["state"], "generator")
    for key in ("opt_g", "sched_g", "discriminator", "opt_d", "sched_d", "rng"):
        _assert_same(whole["resume"][key], split["resume"][key], key)
    progress = Progress.from_plain(split["resume"]["progress"])
    assert (progress.epoch, progress.step, len(progress.history)) == (2, 6, 2)
    _assert_same(whole["resume"]["progress"], split["resume"]["progress"], "progress")
    _assert_same(_state(tmp_path / "whole" / "best.pt")["state"], _state(tmp_path / "split" / "best.pt")["state"])


def test_a_learning_rate_given_on_continue_replaces_the_one_the_schedule_left(tmp_path: Path, tiny_corpus: Path) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "r", "-e", "1", "--lr_g", "1e-3", "--scheduler", "True")) == 0
    record = _state(tmp_path / "r" / "last.pt")
    record["resume"]["opt_g"]["param_groups"][0]["lr"] = 3e-7  # as a long plateau schedule leaves it
    record["resume"]["sched_g"]["_last_lr"] = [3e-7]
    record["resume"]["sched_g"]["best"] = 1e9  # a best no later validation reaches: the next epoch halves the rate
    torch.save(record, tmp_path / "r" / "last.pt")
    assert cli.main(["-n", "r", "--runs", str(tmp_path), "--continue", "--lr_g", "2e-4", "-e", "2"]) == 0
    resumed = _state(tmp_path / "r" / "last.pt")["resume"]
    assert resumed["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4)  # taken, and a fresh schedule kept it
    assert resumed["sched_g"]["best"] != 1e9
    record = _state(tmp_path / "r" / "last.pt")
    record["resume"]["sched_g"].update(patience=2, min_lrs=[0.0])  # as runs before session 21 stored their schedule
    torch.save(record, tmp_path / "r" / "last.pt")
    assert cli.main(["-n", "r", "--runs", str(tmp_path), "--continue", "-e", "3"]) == 0  # no flag: restored as it was
    resumed = _state(tmp_path / "r" / "last.pt")["resume"]
    assert resumed["opt_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    assert resumed["sched_g"]["patience"] == 8 and resumed["sched_g"]["min_lrs"][0] > 0  # this run's patience and floor


def test_the_plateau_schedule_waits_its_patience_and_stops_at_a_floor() -> None:
    from rt_enhance.training.trainer import PLATEAU_FLOOR, make_scheduler

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    assert make_scheduler(opt, False, 3) is None
    sched = make_scheduler(opt, True, 3)
    assert sched is not None
    sched.step(1.0)  # the best score, which no later epoch reaches
    rates = []
    for _ in range(60):
        sched.step(0.0)
        rates.append(opt.param_groups[0]["lr"])
    assert rates[:3] == [1e-3] * 3 and rates[3] == pytest.approx(5e-4)  # halved once three epochs more passed
    assert min(rates) == pytest.approx(1e-3 * PLATEAU_FLOOR) and rates[-1] == min(rates)  # and never below the floor
    from rt_enhance.training.config import ConfigError, check_config, make_config, parse_flags

    assert make_config(parse_flags(["--patience", "5"])[0]).patience == 5
    with pytest.raises(ConfigError, match="--patience must be >= 0"):
        check_config(make_config(parse_flags(["--patience", "-1"])[0]))


def test_run_folders_are_never_reused_without_asking(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(_argv(tmp_path, tiny_corpus, "r", "-e", "1", "-c", "1")) == 0
    before = (tmp_path / "r" / "last.pt").read_bytes()
    assert cli.main(_argv(tmp_path, tiny_corpus, "r", "-e", "1", "-c", "1")) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "r" / "last.pt").read_bytes() == before
    assert cli.main(["-n", "r", "--runs", str(tmp_path), "--continue"]) == 2  # nothing left to train
    assert "already trained 1 epoch" in capsys.readouterr().err
    assert cli.main(["-n", "r", "--runs", str(tmp_path), "--continue", "-e", "2", "--size", "small"]) == 2
    assert "cannot change" in capsys.readouterr().err
    assert cli.main(_argv(tmp_path, tiny_corpus, "r", "-e", "1", "-c", "1", "--overwrite", "--seed", "5")) == 0
    assert (tmp_path / "r" / "last.pt").read_bytes() != before


def test_a_runs_folder_that_cannot_be_made_is_one_line(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    assert cli.main(_argv(tmp_path / "runs", tiny_corpus, "r", "-e", "1", "-c", "1")) == 2
    err = capsys.readouterr().err
    assert "a file stands in its path" in err and err.count("\n") == 1 and "Traceback" not in err


def test_rng_state_round_trips() -> None:
    state = capture_rng()
    first = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    restore_rng(state)
    again = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all() and first[2] == again[2]
