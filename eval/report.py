"""``OUT/report.html``: one self-contained page a researcher opens after a sweep.

Built from the results store alone (``manifest.json`` and ``episodes.jsonl``, re-summarised with
:func:`~rapid_env.eval.summary.summarize` after :func:`~rapid_env.eval.summary.dedupe`), so
``rapid-report OUT`` rebuilds the same page from the records at any time, also for a sweep that
is still running or was interrupted. The page holds the sweep's exact command, its configuration,
the summary table (one row per task x agent x noise x link cell, :mod:`.report_tables`), the
paired comparison with a baseline agent (:mod:`rapid_env.eval.paired`, the same rows as
``paired.csv``), the charts of :mod:`rapid_env.eval.charts` as embedded PNGs (one colour per agent
in all of them, from the sweep's agent order) and every video and still the sweep left
(:mod:`.report_media`: embedded within a size budget, the rest linked).
Nothing is fetched from anywhere: no external scripts, style sheets or fonts. The page holds no
wall-clock time of its own, so rebuilding it from the same records gives the same bytes.

``rapid-report OUT`` (:mod:`rapid_env.cli.report`) exits 0 and prints the report's path, or exits
2 with one line when ``OUT`` holds no ``episodes.jsonl``, its records cannot be summarised, or
``--baseline`` names no agent of the sweep.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rapid_env.config import EnvConfig
from rapid_env.eval import report_media
from rapid_env.eval.charts import Chart, render_png, sweep_charts
from rapid_env.eval.paired import paired_rows, resolve_baseline
from rapid_env.eval.report_tables import (
    config_table,
    esc,
    paired_table,
    plain,
    summary_table,
    validity_line,
)
from rapid_env.eval.store import read_records
from rapid_env.eval.summary import dedupe, summarize

__all__ = ["REPORT", "ReportError", "read_store", "sweep_agents", "write_report"]

REPORT = "report.html"

CHART_WIDTH_IN, CHART_HEIGHT_IN = 6.0, 3.8
"""The charts' smallest size: two 600 px charts side by side on a 1280 px wide screen."""

_CAPTIONS: dict[str, str] = {
    "success_by_agent": "Fraction of episodes that succeeded; the whiskers are the Wilson 95 % "
    "interval of the pooled episodes. Overlapping whiskers: no difference at this many seeds.",
    "latency_breakdown_by_agent": "Where a request's time goes: edge compute, uplink, cloud "
    "compute and downlink, mean per request.",
    "latency_p95_by_agent": "The slow tail: the 95th percentile of chunk latency per episode, "
    "averaged over episodes.",
    "offload_rate_by_noise": "Requests sent to the cloud per simulated second as the noise "
    "changes. A decider that reads only proprioception (RAPID) should stay flat; a vision "
    "trigger follows the noise.",
    "rms_jerk_by_agent": "Smoothness of the executed motion (lower is smoother).",
    "stalls_by_agent": "Control ticks per episode on which the robot held because no action "
    "was left (lower is better).",
    "success_heatmap": "Where each agent succeeds: one cell per task and agent, with the "
    "successes over the episodes behind the rate.",
    "success_vs_latency": "A point per agent and cell, a panel per task: does a faster chunk "
    "pay off in success? Whiskers: Wilson 95 % (success) and t 95 % (latency).",
}


class ReportError(ValueError):
    """The folder is not a results store (no ``episodes.jsonl``) or its records are unusable."""


# ---------------------------------------------------------------------------------- reading
def read_store(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The manifest ({} when absent), the trusted records in file order, and lines skipped.

    Skipped: lines that are damaged, torn or not to be trusted
    (:func:`rapid_env.eval.store.read_records` names each).
    """
    episodes = out / "episodes.jsonl"
    if not episodes.is_file():
        raise ReportError(f"{out} holds no episodes.jsonl: not a rapid-eval results store")
    manifest: dict[str, Any] = {}
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"{manifest_path} is unreadable ({exc})") from None
        manifest = loaded if isinstance(loaded, dict) else {}
    records, problems = read_records(out, manifest)
    return manifest, records, len(problems)


def sweep_agents(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sweep's agents in its order: the manifest's list, else first seen in the records.

    This order fixes each agent's colour in every chart and the default paired baseline.
    """
    listed = [str(a) for a in (manifest.get("sweep") or {}).get("agents") or []]
    seen = [str(r.get("agent")) for r in records]
    return list(dict.fromkeys([*listed, *(a for a in seen if a not in listed)]))


def _rank(sweep: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], tuple[int, ...]]:
    """A row's (or record's) position in the sweep: tasks, agents, noises, links as listed."""
    lists = {field: [str(v) for v in sweep.get(plural) or []] for field, plural in (
        ("task", "tasks"), ("agent", "agents"), ("noise", "noises"), ("link", "links"))}

    def key(row: Mapping[str, Any]) -> tuple[int, ...]:
        ranks = []
        for field, values in lists.items():
            value = str(row.get(field))
            ranks.append(values.index(value) if value in values else len(values))
        return tuple(ranks)

    return key


# --------------------------------------------------------------------------- the command line
_ENV_FLAGS: tuple[tuple[str, str], ...] = (
    ("policy", "--policy"), ("profile", "--profile"), ("edge", "--edge"), ("cloud", "--cloud"),
    ("image_size", "--image-size"), ("control_hz", "--control-hz"),
    ("chunk_size", "--chunk-size"), ("max_episode_s", "--max-episode-s"),
    ("control.hold_policy", "--hold-policy"), ("control.align", "--align"),
    ("edge_budget_gib", "--edge-budget-gib"), ("placement", "--placement"),
    ("loop_cost", "--loop-cost"), ("action_contract", "--action-contract"),
    ("device", "--device"), ("dtype", "--dtype"), ("policy_timing", "--policy-timing"),
)


def _get(tree: Mapping[str, Any], dotted: str) -> Any:
    value: Any = tree
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def reconstruct_command(manifest: Mapping[str, Any], out: Path) -> str:
    """A ``rapid-eval`` command that plans the same sweep, from the manifest's sweep and env.

    Flags at their defaults are left out. Where the sweep ran (backend, workers) and how it
    reported (W&B, progress) are not in the manifest and so not in the command.
    """
    defaults = EnvConfig()  # rapid-eval's flags default to these fields
    sweep = manifest.get("sweep") or {}
    env = sweep.get("env") or {}
    words = ["rapid-eval"]
    for flag, field in (("--tasks", "tasks"), ("--agents", "agents"), ("--noise", "noises"),
                        ("--links", "links")):
        if sweep.get(field):
            words += [flag, ",".join(str(v) for v in sweep[field])]
    for flag, field in (("--episodes", "episodes"), ("--seed", "seed")):
        if sweep.get(field) is not None:
            words += [flag, str(sweep[field])]
    for field, flag in _ENV_FLAGS:
        value = _get(env, field)
        default = _get(dataclasses.asdict(defaults), field)
        if value is not None and value != default:
            words += [flag, plain(value)]
    if env.get("trust_checkpoint_code"):
        words.append("--trust-checkpoint-code")
    words += ["--out", str(out)]
    return shlex.join(words)


def _caption(chart: Chart) -> str:
    for name, text in _CAPTIONS.items():
        if chart.name == name or chart.name.startswith(f"{name}__"):
            return text
    return ""


def _charts_html(rows: Sequence[Mapping[str, Any]], agents: Sequence[str]) -> tuple[str, int]:
    figures = []
    for chart in sweep_charts(rows, agents):
        png = render_png(chart, CHART_WIDTH_IN, CHART_HEIGHT_IN)
        data = base64.b64encode(png).decode("ascii")
        figures.append(
            f'<figure id="{esc(chart.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{esc(chart.title)}"><figcaption><code>{esc(chart.name)}</code> '
            f"{esc(_caption(chart))}</figcaption></figure>"
        )
    return "\n".join(figures), len(figures)


def _paired_html(rows: Sequence[Mapping[str, Any]], baseline: str, agents: Sequence[str]) -> str:
    if len(agents) < 2:
        return "<p>One agent in this sweep: nothing to compare.</p>"
    if not rows:
        return f"<p>No cell holds episodes of <code>{esc(baseline)}</code> and another agent.</p>"
    return (
        f"<p class=meta>Every other agent against <b>{esc(baseline)}</b>, seed by seed: episode "
        "<i>i</i> of every cell runs on the same seed (same layout, noise and link draws), so "
        "each agent's episode is paired with the baseline's and Δ is the mean of the paired "
        "differences, agent − baseline. Δ success: Newcombe's 95 % interval for paired "
        "proportions, in bold where it excludes 0. Other Δ: ± the Student-t 95 % half-width of "
        "the differences. With few pairs the intervals are wide: read <i>n pairs</i> first. "
        "Episodes that could not run are left out of the pairs. <code>paired.csv</code> has "
        "every column; <code>rapid-report OUT --baseline NAME</code> compares with another "
        f"agent.</p><div class=scroll>{paired_table(rows)}</div>")


def _media_section(out: Path, records: Sequence[Mapping[str, Any]],
                   rank: Callable[[Mapping[str, Any]], tuple[int, ...]]) -> list[str]:
    items = report_media.media_items(out, records, rank)
    if not items:
        return []
    gallery, linked = report_media.media_html(out, items)
    note = (f"{len(items)} item(s): the recorded episodes in sweep order, then by seed, then "
            "files no record names, by path. Files up to "
            f"{report_media.MAX_EMBED_BYTES // 2**20} MB are embedded while the page holds "
            f"under {report_media.MAX_EMBED_TOTAL // 2**20} MB of them")
    note += (f"; {linked} are linked (they stay next to this report)." if linked else ".")
    return ["<h2>Videos and frames</h2>", f"<p class=meta>{note}</p>", gallery]


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1a1a1a;margin:0;background:#fafafa}
main{max-width:1290px;margin:0 auto;padding:20px 24px 40px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 8px}.warn{color:#a30}
pre{background:#f3f3f3;padding:8px 10px;white-space:pre-wrap;word-break:break-all;
 font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;border-radius:4px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table{border-collapse:collapse;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
table.config th{color:#555;font-weight:600;white-space:nowrap}
table.summary th{background:#f0f0f0;position:sticky;top:0;font-weight:600}
table.summary td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.summary tbody tr:nth-child(even){background:#fafafa}
td.bad{color:#b00;font-weight:600}td.clear{font-weight:700}
.ci{color:#777;font-size:12px}
.scroll{overflow-x:auto}
figure{margin:0}figure img{max-width:100%;height:auto;border:1px solid #eee}
.charts{display:flex;flex-wrap:wrap;gap:20px 24px}
.charts figure{flex:0 1 auto;max-width:100%}
.charts figcaption{max-width:600px}
figcaption{color:#444;font-size:13px;margin-top:4px}
.gallery{display:flex;flex-wrap:wrap;gap:14px}
.gallery figure{margin:0;width:280px}.gallery img,.gallery video{width:280px;height:auto}
.gallery figcaption{overflow-wrap:anywhere}
a.linked{display:block;padding:40px 8px;text-align:center;background:#f3f3f3;width:264px}
footer{color:#666;margin-top:32px;font-size:12.5px}
"""


def _command(manifest: Mapping[str, Any], out: Path) -> tuple[str, str]:
    """The sweep's command and where it comes from."""
    command = manifest.get("command")
    if isinstance(command, str) and command:
        return command, "as it was typed (from <code>manifest.json</code>)"
    if manifest:
        return (reconstruct_command(manifest, out),
                "reconstructed from <code>manifest.json</code> (it plans the same episodes; "
                "backend, workers and W&amp;B flags are not recorded)")
    return "", "unknown: this folder has no <code>manifest.json</code>"


def _meta(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]], cells: int,
          dropped: int, skipped: int) -> str:
    """One line: episodes and cells, then a warning for each thing a reader must know."""
    expected = manifest.get("n_episodes")
    meta = [f"{len(records)} episode{'s' if len(records) != 1 else ''} in {cells} "
            f"cell{'s' if cells != 1 else ''}"]
    if isinstance(expected, int) and expected != len(records):
        meta.append(f"<span class=warn>{len(records)} of the {expected} planned: the sweep "
                    "has not finished (rerun its command to resume)</span>")
    validity = validity_line(records)
    if validity:
        meta.append(validity)
    if dropped:
        meta.append(f"<span class=warn>{dropped} duplicated record(s) counted once</span>")
    if skipped:
        meta.append(f"<span class=warn>{skipped} unreadable line(s) of episodes.jsonl "
                    "skipped</span>")
    return " · ".join(meta)


def _summary_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        "<h2>Summary</h2>",
        "<p class=meta>One row per task × agent × noise × link cell. Success: rate and Wilson "
        "95 % interval. Latency, stall ticks and RMS jerk: mean per episode ± the 95 % "
        "t-interval half-width, rounded to that interval (no ± where every episode gave the "
        "same value). Offloads / s: the cell's mean offloads over its mean simulated seconds. "
        "Faults: episodes with a recorded fault. Every column, with its interval, is in "
        "<code>summary.csv</code>.</p>",
        f"<div class=scroll>{summary_table(rows)}</div>" if rows
        else "<p>No episodes finished yet.</p>",
    ]


def render_report(out: Path, baseline: str | None = None) -> str:
    """The report page of the store in ``out``, as HTML text (see the module docstring).

    Args:
        out: the results folder.
        baseline: the agent of the paired comparison; None: the sweep's first agent.

    Raises:
        ReportError: no ``episodes.jsonl``, records that cannot be summarised, or a
            ``baseline`` that is not an agent of the sweep.
    """
    out = Path(out)
    manifest, raw, skipped = read_store(out)
    records, dropped = dedupe(raw)
    try:
        rows = summarize(records)
    except ValueError as exc:
        raise ReportError(f"{out / 'episodes.jsonl'}: {exc}") from None
    sweep = manifest.get("sweep") or {}
    rank = _rank(sweep)
    rows = sorted(rows, key=rank)  # stable: cells the manifest does not list keep their order
    agents = sweep_agents(manifest, records)
    try:
        base = resolve_baseline(baseline, agents) if agents else ""
        paired = sorted(paired_rows(records, base, agents), key=rank) if base else []
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    command, command_note = _command(manifest, out)
    charts, n_charts = _charts_html(rows, agents)
    title = f"rapid-eval report: {out.resolve().name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f"<p class=meta>{_meta(manifest, records, len(rows), dropped, skipped)}</p>",
        "<h2>Command</h2>",
        f"<pre>{esc(command)}</pre>" if command else "",
        f"<p class=meta>{command_note}.</p>",
        "<h2>Configuration</h2>",
        config_table(manifest, records),
        *_summary_section(rows),
        f"<h2>Paired comparison{f' with {esc(base)}' if base else ''}</h2>",
        _paired_html(paired, base, agents),
        "<h2>Charts</h2>",
        f"<div class=charts>{charts}</div>" if n_charts
        else "<p>No charts: the records lack the fields they need.</p>",
        *_media_section(out, records, rank),
        f"<footer>Built from <code>manifest.json</code> and <code>episodes.jsonl</code> alone; "
        f"<code>rapid-report {esc(shlex.quote(str(out)))}</code> rebuilds it.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(out: Path, baseline: str | None = None) -> Path:
    """Build ``out/report.html`` from the store in ``out`` (atomically); return its path.

    Args:
        out: the results folder.
        baseline: the agent of the paired comparison; None: the sweep's first agent.

    Raises:
        ReportError: ``out`` holds no ``episodes.jsonl``, its records cannot be summarised, or
            ``baseline`` is not an agent of the sweep.
    """
    out = Path(out)
    text = render_report(out, baseline)
    path = out / REPORT
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{REPORT}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
