"""The error family: one base for every error the project raises, one line per error, one helper for it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from rt_enhance.realtime.errors import GeometryError, RtEnhanceError, UsageError, error_line, first_line, report

# Signals, not errors: Ctrl-C before a run is under way must still end as a KeyboardInterrupt.
NOT_ERRORS = {"rt_enhance.realtime.cli.Interrupted"}
PACKAGES = ("rt_enhance.realtime", "rt_enhance.model", "rt_enhance.export", "rt_enhance.training", "rt_enhance.benchmarks")


def _project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        path = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.walk_packages(path, f"{package}.") if not m.name.endswith("__main__")]
    return names


def test_every_project_exception_derives_from_the_base() -> None:
    pytest.importorskip("torch")
    strays = []
    for name in _project_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            where = f"{cls.__module__}.{cls.__qualname__}"
            if (
                cls.__module__ == name
                and issubclass(cls, BaseException)
                and where not in NOT_ERRORS
                and not issubclass(cls, RtEnhanceError)
            ):
                strays.append(where)
    assert strays == []


def test_one_usage_error_and_one_geometry_error() -> None:
    pytest.importorskip("torch")
    from rt_enhance.benchmarks import cli as bench_cli
    from rt_enhance.export import cli as export_cli
    from rt_enhance.model import base
    from rt_enhance.realtime import cli, geometry

    assert cli.UsageError is export_cli.UsageError is bench_cli.UsageError is UsageError
    assert base.GeometryError is geometry.GeometryError is GeometryError
    assert issubclass(GeometryError, ValueError)  # callers that catch ValueError still do


def test_first_line() -> None:
    assert first_line(RuntimeError("  [ONNXRuntimeError] bad shape\n  at node 3\n")) == "[ONNXRuntimeError] bad shape"
    assert first_line(OSError("x" * 500), 200) == "x" * 200
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("   \n ")) == "ValueError"


def test_error_line_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    exc = UsageError("--hop 7: not a multiple of 8; use 8")
    assert error_line("rt-enhance", exc) == "rt-enhance: error: --hop 7: not a multiple of 8; use 8"
    assert error_line("rt-export", exc, label="") == "rt-export: --hop 7: not a multiple of 8; use 8"
    assert report("rt-bench", exc, 2, label="latency failed") == 2
    assert capsys.readouterr().err == "rt-bench: latency failed: --hop 7: not a multiple of 8; use 8\n"
