"""The fleet tables in the docs are what benchmarks/fleet_tables.py makes of the shipped runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results" / "fleet"


@pytest.fixture()
def tables(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script, imported as ``python benchmarks/fleet_tables.py`` runs it."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("fleet_tables")


def test_table1_under_load_in_paper_md(tables: ModuleType) -> None:
    table = tables.table1(RESULTS / "table1", RESULTS / "table1-gpu-only")
    assert table.count("\n") >= 10
    assert table in (ROOT / "docs" / "paper.md").read_text()


def test_replay_check_in_fleet_md(tables: ModuleType) -> None:
    table = tables.replay(RESULTS / "replay-check")
    assert table.count("\n") == 7  # header, rule, 3 sizes x 2 deciders
    assert table in (ROOT / "docs" / "fleet.md").read_text()
