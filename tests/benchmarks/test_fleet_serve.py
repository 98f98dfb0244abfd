"""benchmarks/bench_fleet_serve.py: a virtual fleet's arrivals, and a short run end to end."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The benchmark script, imported as ``python benchmarks/bench_fleet_serve.py`` runs it."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("bench_fleet_serve")


def fleet_file(tmp_path: Path) -> Path:
    """A requests.jsonl as rapid-fleet writes it: two robots, arrivals at t + first gap."""
    row = {"fleet_key": "k", "agent": "rapid", "timelines": [
        [[0.0, 0, [0.010, 0.020]], [1.0, 0, [0.010, 0.020]]],
        [[0.5, 5, [0.200, 0.010, 0.020]]],
    ]}
    path = tmp_path / "requests.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def test_fleet_arrivals_keep_the_order_and_scale_to_the_rate(
    bench: ModuleType, tmp_path: Path
) -> None:
    got = bench.fleet_arrivals(fleet_file(tmp_path), rate=10.0, split=3, requests=100)
    # cloud arrivals 0.01 (robot 0), 0.70 (robot 1), 1.01 (robot 0): 2 gaps in 1.0 s -> 10/s
    assert [a.robot for a in got] == [0, 1, 0] and {a.split for a in got} == {3}
    assert got[0].t == 0.0 and got[-1].t == pytest.approx(0.2)
    assert got[1].t == pytest.approx((0.70 - 0.01) * 0.2)  # the clock x 0.2 = 2 / 10 / 1.0


def test_a_short_run_prints_the_figure(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert bench.main(["--fleet", str(fleet_file(tmp_path)), "--rate", "40",
                       "--requests", "3", "--clients", "1", "--workers", "4"]) == 0
    out = capsys.readouterr().out
    assert "queue model: median |measured-modelled|/modelled = " in out
    assert "served 3, not served 0" in out
