"""The capacity search: doubling then bisection on the fleet size, every probe kept."""

from __future__ import annotations

from typing import Any

from rapid_env.eval.capacity import find_capacity, markdown_table


def fleet(limit: int, calls: list[int]) -> Any:
    """A fake fleet whose p95 is 100 ms up to ``limit`` robots and 1 s beyond."""
    def probe(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"latency_ms_p95": 100.0 if n <= limit else 1000.0, "success": 1.0,
                "gpu_util": min(1.0, n / 10), "requests_per_s": 3.0 * n}
    return probe


def test_bisection_finds_the_largest_size_within_the_slo() -> None:
    for limit in (1, 2, 5, 13, 40):
        calls: list[int] = []
        cap = find_capacity("rapid", "wifi", fleet(limit, calls), 200.0, None, 64)
        assert cap.robots == limit and not cap.bounded
        assert len(calls) == len(set(calls))  # no size probed twice
        assert set(cap.probes) == set(calls)


def test_not_even_one_robot_and_the_bound() -> None:
    calls: list[int] = []
    assert find_capacity("a", "l", fleet(0, calls), 200.0).robots == 0 and calls == [1]
    cap = find_capacity("a", "l", fleet(100, []), 200.0, None, max_robots=12)
    assert cap.robots == 12 and cap.bounded


def test_success_floor_counts() -> None:
    def probe(n: int) -> dict[str, Any]:
        return {"latency_ms_p95": 50.0, "success": 1.0 if n <= 3 else 0.5, "gpu_util": 0.1,
                "requests_per_s": 1.0}
    assert find_capacity("a", "l", probe, 200.0, min_success=0.8).robots == 3


def test_markdown_table_names_robots_per_gpu() -> None:
    cap = find_capacity("rapid", "wifi", fleet(5, []), 200.0, None, 64)
    text = markdown_table([cap.row(200.0, None, gpus=2)])
    assert "| rapid | wifi | 2 | 200 | 5 | 2.5 |" in text
