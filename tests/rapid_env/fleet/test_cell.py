"""The shared wireless cell: equal airtime among concurrent transfers, nothing added alone."""

from __future__ import annotations

import pytest

from rapid_env.fleet.cell import CellSpec, WirelessCell, parse_cell


def drain(cell: WirelessCell) -> None:
    while cell.next_event() < float("inf"):
        cell.step()


def test_alone_a_transfer_gets_nothing_added() -> None:
    cell = WirelessCell(CellSpec(8e6, 8e6))
    got: list[tuple[float, float]] = []
    cell.join("up", 0.3, 1_000_000, lambda extra, work: got.append((extra, work)))
    drain(cell)
    assert got == [(0.0, 1.0)]


def test_two_at_once_share_the_airtime() -> None:
    # 1 s of work each, both from t=0: processor sharing ends both at 2 s (1 s added each)
    cell = WirelessCell(CellSpec(8e6, 8e6))
    got: dict[str, float] = {}
    for name in ("a", "b"):
        cell.join("up", 0.0, 1_000_000, lambda extra, work, n=name: got.__setitem__(n, extra))
    drain(cell)
    assert got == pytest.approx({"a": 1.0, "b": 1.0})


def test_a_late_joiner_slows_the_first_only_while_they_overlap() -> None:
    # a: 1 s of work from 0; b: 0.5 s from 0.5. Alone until 0.5 (a has 0.5 left), then shared:
    # both need 0.5 at half rate -> both end at 1.5: a +0.5, b +0.5
    cell = WirelessCell(CellSpec(8e6, 8e6))
    got: dict[str, float] = {}
    cell.join("up", 0.0, 1_000_000, lambda e, w: got.__setitem__("a", e))
    cell.join("up", 0.5, 500_000, lambda e, w: got.__setitem__("b", e))
    drain(cell)
    assert got == pytest.approx({"a": 0.5, "b": 0.5})


def test_directions_do_not_share() -> None:
    cell = WirelessCell(CellSpec(8e6, 8e6))
    got: list[float] = []
    cell.join("up", 0.0, 1_000_000, lambda e, w: got.append(e))
    cell.join("down", 0.0, 1_000_000, lambda e, w: got.append(e))
    drain(cell)
    assert got == [0.0, 0.0]


def test_parse_cell_forms_and_errors() -> None:
    assert parse_cell("300").name == "300:300"
    assert parse_cell("100:300") == CellSpec(100e6, 300e6)
    assert parse_cell("link", 50e6) == CellSpec(50e6, 50e6)
    with pytest.raises(ValueError, match="'fast'; allowed"):
        parse_cell("fast")
    with pytest.raises(ValueError, match="up_bps"):
        parse_cell("0:10")
