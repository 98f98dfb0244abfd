"""Chart definitions from summary rows, and their PNG rendering."""

from __future__ import annotations

import math
from itertools import product
from typing import Any

import pytest

from rapid_env.eval import chart_render
from rapid_env.eval.charts import (
    GROUP_HATCHES,
    GROUP_MARKERS,
    Chart,
    Series,
    agent_colors,
    chart_size,
    render_png,
    sweep_charts,
)
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
        "success_by_agent", "success_heatmap", "latency_breakdown_by_agent",
        "latency_p95_by_agent",
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
    assert [c.name for c in sweep_charts(summarize(bare))] == ["success_by_agent",
                                                               "success_heatmap"]
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
    one_task = summarize([r for r in sweep_records() if r["task"] == "reach"])
    scatter = by_name(sweep_charts(one_task))["success_vs_latency"]
    assert chart_size(scatter)[0] == 7.0  # one task: one panel
    small, wide = render_png(scatter), render_png(many)
    assert_png(wide)
    assert int.from_bytes(wide[16:20], "big") > int.from_bytes(small[16:20], "big")  # px wide


def test_one_colour_per_agent_in_every_chart(rows: list[dict]) -> None:
    colors = agent_colors(AGENTS)
    assert len(set(colors.values())) == len(AGENTS)
    for chart in sweep_charts(rows, AGENTS):
        assert chart.palette == colors, chart.name
        for s in chart.series:
            if chart.kind == "bar":  # x: the agents, in their colours; the group: a hatch
                assert s.colors == [colors[str(a)] for a in s.x]
            elif chart.kind == "stacked_bar":
                assert s.colors == [colors[str(x).split(" · ")[0]] for x in s.x]
            else:  # lines, points and heatmap columns are agents
                assert s.color == colors[s.label], chart.name


def test_noise_and_link_are_never_a_colour(rows: list[dict]) -> None:
    charts = by_name(sweep_charts(rows))
    bars = charts["success_by_agent"].series
    assert len({tuple(s.colors or ()) for s in bars}) == 1  # every group: the same colours
    assert [s.hatch for s in bars] == list(GROUP_HATCHES[:4])
    points = charts["success_vs_latency"].series
    by_group = {s.group: s.marker for s in points}
    assert list(by_group.values()) == list(GROUP_MARKERS[:4])
    assert {s.color for s in points if s.label == "rapid"} == {agent_colors(AGENTS)["rapid"]}


def test_the_sweep_order_fixes_the_colours_of_a_subset(rows: list[dict]) -> None:
    third = AGENTS[2]
    subset = [r for r in rows if r["agent"] != "cloud-only"]
    bars = by_name(sweep_charts(subset, AGENTS))["success_by_agent"].series[0]
    assert bars.x == ["rapid", third]
    assert bars.colors == [agent_colors(AGENTS)["rapid"], agent_colors(AGENTS)[third]]
    # without the sweep's order, the first-seen order decides (the third agent moves up)
    assert by_name(sweep_charts(subset))["success_by_agent"].series[0].colors == [
        agent_colors(AGENTS)["rapid"], agent_colors(AGENTS)["cloud-only"]]


def test_the_success_heatmap_is_a_task_by_agent_grid(rows: list[dict]) -> None:
    heat = by_name(sweep_charts(rows))["success_heatmap"]
    assert heat.kind == "heatmap"
    assert [s.label for s in heat.series] == list(AGENTS)
    recs = sweep_records()
    for s in heat.series:
        assert s.x == list(TASKS)
        for task, rate, text in zip(s.x, s.y, s.texts or [], strict=True):
            cell = [r for r in recs if r["agent"] == s.label and r["task"] == task]
            k, n = sum(r["success"] for r in cell), len(cell)
            assert rate == pytest.approx(k / n)
            assert text == f"{k / n:.2f}\n{k}/{n}"
    assert "pooled over 4 noise × link settings" in heat.title
    assert_png(render_png(heat))


def test_success_vs_latency_has_a_panel_per_task_and_latency_whiskers(rows: list[dict]) -> None:
    scatter = by_name(sweep_charts(rows))["success_vs_latency"]
    assert [s.facet for s in scatter.series][:: len(scatter.series) // 2] == list(TASKS)
    first = scatter.series[0]
    row = next(r for r in rows if (r["task"], r["agent"], r["noise"], r["link"]) == (
        "reach", "rapid", "clean", "wifi"))
    assert first.x == [row["latency_ms_mean"]]
    assert first.x_low == [row["latency_ms_mean"] - row["latency_ms_mean_ci95"]]
    one_panel = chart_size(Chart("s", "t", "scatter", "x", "success rate", [
        Series("a", [1.0], [0.5], facet=None)]), 5.0, 3.0)
    assert chart_size(scatter, 5.0, 3.0)[0] > one_panel[0]  # two panels side by side


def test_coinciding_points_are_spread_apart() -> None:
    offsets = chart_render._spread([(173.0, 1.0), (173.0, 1.0), (173.0, 0.5), (180.0, 1.0)])
    assert offsets[0] < 0 < offsets[1] and offsets[0] == -offsets[1]  # two at one spot
    assert offsets[2] == 0.0 and offsets[3] == 0.0  # alone where they are
    assert chart_render._spread([(5.0, 1.0)] * 3)[1] == 0.0  # odd clusters keep the middle


def test_a_zero_bar_is_drawn_with_its_label() -> None:
    from matplotlib.figure import Figure

    chart = Chart("z", "zeros", "bar", "agent", "stall ticks", [
        Series("clean", ["rapid", "cloud-only"], [0.0, 2.0], colors=["#4477AA", "#EE6677"])])
    ax = Figure().add_subplot()
    chart_render._draw_bars(ax, chart, {"rapid": 0, "cloud-only": 1})
    assert [t.get_text() for t in ax.texts] == ["0"]  # the zero bar, not the other
    (line,) = ax.collections  # the short line at 0, in the agent's colour
    assert tuple(line.get_colors()[0][:3]) == pytest.approx((0x44 / 255, 0x77 / 255, 0xAA / 255))
    assert_png(render_png(chart))
