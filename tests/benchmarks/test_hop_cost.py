"""The per-hop cost measurement: its variants parse, a bad one is refused in one line, and a tiny variant's
figures come out of a real export and a real onnxruntime session."""

from __future__ import annotations

import pytest

from rt_enhance.benchmarks import hop_cost


def test_variants_parse_as_python_literals() -> None:
    assert hop_cost.parse_vary("channels=[4,4,4,4] gru_hidden=8") == {"channels": [4, 4, 4, 4], "gru_hidden": 8}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        hop_cost.parse_vary("gru_hidden")


def test_a_bad_variant_is_one_line_and_exit_2(capsys) -> None:
    assert hop_cost.main(["--vary", "gru_hidden"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_smaller_network_has_fewer_multiply_adds_and_its_hop_is_measured(capsys) -> None:
    assert hop_cost.main(["--vary", "channels=[4,4,4,4] gru_hidden=0", "--calls", "20", "--repeat", "1"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "kMAC" not in line]
    (named, macs, ops, us), (tiny, tiny_macs, tiny_ops, tiny_us) = rows
    assert float(tiny_macs) < float(macs) / 5 and 0 < int(tiny_ops) < int(ops) and float(us) > 0 and float(tiny_us) > 0
