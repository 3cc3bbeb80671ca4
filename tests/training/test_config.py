"""rt-train's options: the original command lines still parse, old bool forms work, TOML layers under flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from rt_enhance.training import cli
from rt_enhance.training.config import ConfigError, TrainConfig, make_config, parse_bool, parse_flags, read_toml


def _cfg(argv: list[str], toml: Path | None = None) -> TrainConfig:
    flags, path = parse_flags(argv + (["--config", str(toml)] if toml else []))
    return make_config(read_toml(path) if path else {}, flags)


def test_the_original_command_line_still_parses() -> None:
    argv = [
        "-c",
        "100",
        "-o",
        "50",
        "-e",
        "3",
        "-b",
        "16",
        "-w",
        "4096",
        "-s",
        "2048",
        "-d",
        "5",
        "-n",
        "piano",
        "--dropout",
        "0.2",
        "--train_n",
        "20",
        "--test_n",
        "2",
        "--load",
        "False",
        "--continue",
        "False",
        "--dataset",
        "maestro",
        "--dataset_args",
        "2017",
        "--data_root",
        "/data/maestro",
        "--rate",
        "16000",
        "--preprocessing",
        "sample 5000 16000,whitenoise 0 0.002",
        "--gan",
        "0.001",
        "--ae",
        "0.01",
        "--collab",
        "False",
        "--lr_g",
        "2e-4",
        "--lr_d",
        "3e-4",
        "--lr_ae",
        "5e-4",
        "--scheduler",
        "True",
    ]
    cfg = _cfg(argv)
    got = (cfg.count, cfg.out, cfg.epochs, cfg.batch, cfg.window, cfg.stride, cfg.depth)
    assert got == (100, 50, 3, 16, 4096, 2048, 5)
    assert (cfg.name, cfg.dropout, cfg.train_n, cfg.test_n) == ("piano", 0.2, 20, 2)
    assert cfg.load is False and cfg.resume is False and cfg.collab is False and cfg.scheduler is True
    assert cfg.dataset == "maestro" and cfg.dataset_args == {"year": "2017"}
    assert (cfg.rate, cfg.gan, cfg.ae, cfg.lr_g, cfg.lr_d, cfg.lr_ae) == (16000, 0.001, 0.01, 2e-4, 3e-4, 5e-4)
    assert cfg.preprocessing == "sample 5000 16000,whitenoise 0 0.002"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--continue"], True),
        (["--continue", "True"], True),
        (["--continue", "yes"], True),
        (["--continue", "false"], False),
        (["--continue", "0"], False),
        ([], False),
    ],
)
def test_bool_options_take_the_old_and_the_bare_forms(argv: list[str], expected: bool) -> None:
    assert _cfg(["-n", "x", *argv, "-e", "2"]).resume is expected


def test_a_bare_switch_before_another_flag_does_not_swallow_it() -> None:
    cfg = _cfg(["-n", "x", "--scheduler", "--load", "-e", "4"])
    assert cfg.scheduler and cfg.load and cfg.epochs == 4


def test_parse_bool_refuses_other_words() -> None:
    with pytest.raises(Exception, match="true or false"):
        parse_bool("maybe")


def test_toml_gives_every_option_and_flags_override_it(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        'name = "fromfile"\nepochs = 7\nlr_g = 3e-4\ncontinue = false\nscheduler = true\n'
        'model_args = { prelu = true }\ndataset_args = { val = 0.2 }\nloss = "l1"\n'
    )
    cfg = _cfg(["-e", "2"], toml)
    assert cfg.name == "fromfile" and cfg.epochs == 2 and cfg.lr_g == 3e-4 and cfg.scheduler is True
    assert cfg.model_args == {"prelu": True} and cfg.dataset_args == {"val": "0.2"} and cfg.loss == "L1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs = 2\nbogus = 1\n", "unknown option 'bogus'"),
        ("epochs = true\n", "must be a number"),
        ("epochs = 2.5\n", "whole number"),
        ('scheduler = "sometimes"\n', "true or false"),
        ("epochs = [\n", "not valid TOML"),
    ],
)
def test_bad_toml_is_named(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        _cfg(["-n", "x"], toml)


# fmt: off
@pytest.mark.parametrize("argv, message", [
    (["--loss", "L3"], "--loss"), (["--arch", "rnn"], "--arch"), (["-b", "0"], "--batch"),
    (["--dropout", "1.5"], "--dropout"), (["--continue", "--load"], "not both"), (["--lr_g", "0"], "--lr_g"),
])
# fmt: on
def test_bad_values_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(["-n", "x", *argv])


def test_config_round_trips_through_plain_types() -> None:
    cfg = _cfg(["-n", "x", "--model_args", '{"width": 0.25}', "--dataset_args", "val=0.3,test=0.1"])
    assert make_config(cfg.to_dict()) == cfg


def test_cli_reports_user_mistakes_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["-n", "x", "--runs", str(tmp_path), "--data_root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rt-train: --rate is required") and "\n" not in err
    assert cli.main(["-n", "x", "--runs", str(tmp_path), "--continue"]) == 2
    assert "holds no trained run" in capsys.readouterr().err
    assert cli.main(["-n", "x", "--runs", str(tmp_path), "--rate", "16000", "--data_root", str(tmp_path / "no")]) == 2
    assert "does not exist" in capsys.readouterr().err
