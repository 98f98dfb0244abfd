"""Chart definitions from summary rows, and their PNG rendering."""

from __future__ import annotations

import math
from itertools import product
from typing import Any

import pytest

from rapid_env.eval.charts import Chart, Series, chart_size, render_png, sweep_charts
from rapid_env.eval.summary import summarize, wilson_interval

PNG = b"\x89PNG\r\n\x1a\n"
TASKS = ("reach", "push")
AGENTS = ("rapid", "cloud-only", "rapid(high_threshold=6,cooldown_s=0.1)")
NOISES = ("clean", "gaussian_noise:3")
LINKS = ("wifi", "5g-driving")


def record(task: str, agent: str, noise: str, link: str, seed: int, **extra: Any) -> dict:
    k = AGENTS.index(agent) + 2 * NOISES.index(noise) + seed
    rec: dict[str, Any] = {
        "task": task, "agent": agent, "noise": noise, "link": link, "seed": seed,
        "success": (seed + k) % 3 != 0, "sim_time_s": 2.0 + seed % 2, "offloads": 3 + k % 4,
        "latency_ms_mean": 140.0 + 10 * k, "latency_ms_p95": 160.0 + 10 * k,
        "edge_ms_mean": 5.0 * (k % 2), "uplink_ms_mean": 50.0 + k, "cloud_ms_mean": 72.0,
        "downlink_ms_mean": 16.0, "stall_steps": k % 5, "rms_jerk": 100.0 + 7 * k,
        "fault": None,
    }
    rec.update(extra)
    return rec


def sweep_records(**extra: Any) -> list[dict]:
    return [record(*cell, seed, **extra)
            for cell in product(TASKS, AGENTS, NOISES, LINKS) for seed in (1000, 1001, 1002)]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return summarize(sweep_records())


def by_name(charts: list[Chart]) -> dict[str, Chart]:
    return {c.name: c for c in charts}


def assert_png(data: bytes) -> None:
    assert data.startswith(PNG)
    assert len(data) > 1024


def test_the_sweep_charts_and_their_shapes(rows: list[dict]) -> None:
    charts = by_name(sweep_charts(rows))
    assert set(charts) == {
        "success_by_agent", "latency_breakdown_by_agent", "latency_p95_by_agent",
        "offload_rate_by_noise__wifi", "offload_rate_by_noise__5g-driving",
        "rms_jerk_by_agent", "stalls_by_agent", "success_vs_latency",
    }
    success = charts["success_by_agent"]
    assert success.kind == "bar"
    assert [s.label for s in success.series] == [
        f"{n} · {link}" for link, n in product(LINKS, NOISES)]
    assert all(s.x == list(AGENTS) for s in success.series)  # sweep order kept
    stacked = charts["latency_breakdown_by_agent"]
    assert stacked.kind == "stacked_bar"
    assert [s.label for s in stacked.series] == ["edge compute", "uplink", "cloud compute",
                                                 "downlink"]
    assert stacked.series[0].x[:2] == ["rapid · wifi", "rapid · 5g-driving"]
    offload = charts["offload_rate_by_noise__wifi"]
    assert offload.kind == "line"
    assert [s.label for s in offload.series] == list(AGENTS)
    assert offload.series[0].x == list(NOISES)
    scatter = charts["success_vs_latency"]
    assert scatter.kind == "scatter"
    assert sum(len(s.x) for s in scatter.series) == len(rows)  # one point per cell
    for chart in charts.values():
        assert chart.title and chart.x_label and chart.y_label
        for s in chart.series:
            assert len(s.x) == len(s.y)
            if s.low is not None:
                assert s.high is not None and len(s.low) == len(s.high) == len(s.y)


def test_success_is_pooled_over_tasks_with_its_wilson_interval(rows: list[dict]) -> None:
    series = by_name(sweep_charts(rows))["success_by_agent"].series[0]  # clean · wifi
    cells = [r for r in rows if r["agent"] == "rapid" and r["noise"] == "clean"
             and r["link"] == "wifi"]
    k, n = sum(r["successes"] for r in cells), sum(r["episodes"] for r in cells)
    assert series.y[0] == pytest.approx(k / n)
    assert series.low is not None and series.high is not None
    assert (series.low[0], series.high[0]) == pytest.approx(wilson_interval(k, n))


def test_metric_bars_are_the_mean_of_cell_means_with_combined_interval(rows: list[dict]) -> None:
    series = by_name(sweep_charts(rows))["rms_jerk_by_agent"].series[0]
    cells = [r for r in rows if r["agent"] == "rapid" and r["noise"] == "clean"
             and r["link"] == "wifi"]
    mean = sum(r["rms_jerk"] for r in cells) / len(cells)
    half = math.sqrt(sum(r["rms_jerk_ci95"] ** 2 for r in cells)) / len(cells)
    assert series.y[0] == pytest.approx(mean)
    assert series.low is not None and series.high is not None
    assert (series.low[0], series.high[0]) == pytest.approx((mean - half, mean + half))


def test_offload_rate_is_total_offloads_over_total_simulated_seconds(rows: list[dict]) -> None:
    series = by_name(sweep_charts(rows))["offload_rate_by_noise__wifi"].series[0]
    recs = [r for r in sweep_records() if r["agent"] == "rapid" and r["noise"] == "clean"
            and r["link"] == "wifi"]
    expected = sum(r["offloads"] for r in recs) / sum(r["sim_time_s"] for r in recs)
    assert series.y[0] == pytest.approx(expected)
    assert series.low is None


def test_every_chart_renders_to_a_png(rows: list[dict]) -> None:
    for chart in sweep_charts(rows):
        assert_png(render_png(chart))


@pytest.mark.parametrize("kind", ["bar", "stacked_bar", "scatter", "line"])
def test_every_kind_renders_by_hand(kind: str) -> None:
    numeric = kind == "scatter"
    x: list[str | float] = [1.0, 2.5, 4.0] if numeric else ["a", "rapid(high_threshold=6)", "c"]
    chart = Chart(name=f"t_{kind}", title=f"A {kind}", kind=kind,  # type: ignore[arg-type]
                  x_label="x (unit)", y_label="y (unit)", series=[
                      Series("one", x, [1.0, 2.0, 3.0], [0.5, 1.5, 2.5], [1.5, 2.5, 3.5]),
                      Series("two", x, [2.0, math.nan, 1.0]),
                  ])
    assert_png(render_png(chart))


def test_a_line_over_numbers_renders() -> None:
    chart = Chart("n", "numbers", "line", "severity", "rate (1/s)",
                  [Series("a", [3.0, 1.0, 2.0], [1.0, 2.0, 3.0])])
    assert_png(render_png(chart))


def test_charts_are_skipped_when_the_rows_lack_their_fields() -> None:
    bare = [{k: v for k, v in r.items()
             if k in ("task", "agent", "noise", "link", "seed", "success", "fault")}
            for r in sweep_records()]
    assert [c.name for c in sweep_charts(summarize(bare))] == ["success_by_agent"]
    no_stages = [{k: v for k, v in r.items() if not k.endswith("link_ms_mean")}
                 for r in sweep_records()]
    stacked = by_name(sweep_charts(summarize(no_stages)))["latency_breakdown_by_agent"]
    assert [s.label for s in stacked.series] == ["edge compute", "cloud compute"]
    assert sweep_charts([]) == []
    assert sweep_charts([{"agent": "rapid"}]) == []  # not a cell row


def test_nan_and_none_do_not_crash(rows: list[dict]) -> None:
    # summary.json holds None where summarize had NaN; records may hold None latency
    recs = sweep_records()
    for i, rec in enumerate(recs):
        if i % 3 == 0:
            rec.update(latency_ms_mean=None, latency_ms_p95=math.nan, rms_jerk=None,
                       sim_time_s=None)
    nan_rows = summarize(recs[:1] + recs[12:])  # one cell with a single episode: NaN CIs
    json_like = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in r.items()} for r in nan_rows]
    for variant in (nan_rows, json_like):
        charts = sweep_charts(variant)
        assert "success_by_agent" in by_name(charts)
        for chart in charts:
            assert_png(render_png(chart))
    all_none = [{**r, "rms_jerk": None, "rms_jerk_ci95": None} for r in rows]
    assert "rms_jerk_by_agent" not in by_name(sweep_charts(all_none))


def test_single_task_and_link_titles_say_so() -> None:
    recs = [r for r in sweep_records() if r["task"] == "reach" and r["link"] == "wifi"]
    charts = by_name(sweep_charts(summarize(recs)))
    assert "offload_rate_by_noise" in charts  # one link: no suffix
    assert "task reach" in charts["rms_jerk_by_agent"].title
    assert [s.label for s in charts["success_by_agent"].series] == list(NOISES)
    assert "over 2 tasks" in by_name(sweep_charts(summarize(sweep_records())))[
        "rms_jerk_by_agent"].title


def test_figures_grow_for_many_bars_and_long_labels(rows: list[dict]) -> None:
    cats: list[str | float] = [f"rapid(high_threshold={i}) · 5g-driving" for i in range(20)]
    many = Chart("many", "many bars", "stacked_bar", "agent · link", "ms",
                 [Series("edge", cats, [1.0] * 20), Series("cloud", cats, [2.0] * 20)])
    width, height = chart_size(many)
    assert width > 7.0 and height > 4.0  # 20 slanted two-line labels
    scatter = by_name(sweep_charts(rows))["success_vs_latency"]
    assert chart_size(scatter) == (7.0, 4.0)
    small, wide = render_png(scatter), render_png(many)
    assert_png(wide)
    assert int.from_bytes(wide[16:20], "big") > int.from_bytes(small[16:20], "big")  # px wide
