"""``OUT/report.html``: one self-contained page a researcher opens after a sweep.

Built from the results store alone (``manifest.json`` and ``episodes.jsonl``, re-summarised with
:func:`~rapid_env.eval.summary.summarize` after :func:`~rapid_env.eval.summary.dedupe`), so
``rapid-report OUT`` rebuilds the same page from the records at any time, also for a sweep that
is still running or was interrupted. The page holds the sweep's exact command, its configuration,
the summary table (one row per task x agent x noise x link cell), the charts of
:mod:`rapid_env.eval.charts` as embedded PNGs and, when the sweep left any, a few videos
(``OUT/videos/**/*.mp4|*.gif``) and stills (PNGs under ``OUT/videos/`` and ``OUT/frames/``).
Nothing is fetched from anywhere: no external scripts, style sheets or fonts; media are data
URIs (a file over 5 MB is linked relative to the report instead). The page holds no wall-clock
time of its own, so rebuilding it from the same records gives the same bytes.

``rapid-report OUT`` exits 0 and prints the report's path, or exits 2 with one line when ``OUT``
holds no ``episodes.jsonl`` or its records cannot be summarised.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rapid_env.eval.charts import Chart, render_png, sweep_charts
from rapid_env.eval.pooling import as_float
from rapid_env.eval.summary import CELL_KEYS, dedupe, parse_records, summarize
from rapid_env.record_metrics import offload_rate_of_rows

__all__ = ["REPORT", "ReportError", "main", "write_report"]

REPORT = "report.html"
MAX_EMBED_BYTES = 5 * 1024 * 1024
"""Media up to this size are embedded as data URIs; larger ones are linked."""
MAX_MEDIA = 6
"""How many videos, and how many frames, the page shows at most (the first by name)."""

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
    "success_vs_latency": "One point per cell: does a faster chunk pay off in success?",
}


class ReportError(ValueError):
    """The folder is not a results store (no ``episodes.jsonl``) or its records are unusable."""


# ---------------------------------------------------------------------------------- reading
def _read_store(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The manifest ({} when absent), the records in file order, and unreadable lines skipped."""
    episodes = out / "episodes.jsonl"
    if not episodes.is_file():
        raise ReportError(f"{out} holds no episodes.jsonl: not a rapid-eval results store")
    manifest: dict[str, Any] = {}
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ReportError(f"{manifest_path} is unreadable ({exc})") from None
        manifest = loaded if isinstance(loaded, dict) else {}
    records, skipped = parse_records(episodes.read_text(encoding="utf-8"))
    return manifest, records, skipped


def _sweep_order(rows: list[dict[str, Any]], sweep: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows in the sweep's order (tasks, agents, noises, links as listed), not completion order."""
    lists = {"task": sweep.get("tasks"), "agent": sweep.get("agents"),
             "noise": sweep.get("noises"), "link": sweep.get("links")}

    def key(row: Mapping[str, Any]) -> tuple[int, ...]:
        out = []
        for field in ("task", "agent", "noise", "link"):
            values = [str(v) for v in lists[field] or []]
            value = str(row.get(field))
            out.append(values.index(value) if value in values else len(values))
        return tuple(out)

    return sorted(rows, key=key)  # stable: cells the manifest does not list keep their order


# --------------------------------------------------------------------------- the command line
_ENV_FLAGS: tuple[tuple[str, str], ...] = (
    ("policy", "--policy"), ("profile", "--profile"), ("edge", "--edge"), ("cloud", "--cloud"),
    ("image_size", "--image-size"), ("control_hz", "--control-hz"),
    ("chunk_size", "--chunk-size"), ("max_episode_s", "--max-episode-s"),
    ("control.hold_policy", "--hold-policy"), ("control.align", "--align"),
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
    from rapid_env.eval.cli import build_parser  # lazily: the CLI imports this module

    defaults = build_parser().parse_args([])
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
        default = getattr(defaults, flag.lstrip("-").replace("-", "_"))
        if value is not None and value != default:
            words += [flag, _plain(value)]
    if env.get("trust_checkpoint_code"):
        words.append("--trust-checkpoint-code")
    words += ["--out", str(out)]
    return shlex.join(words)


def _plain(value: Any) -> str:
    """``2.0`` as ``2``: the form a person types."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ------------------------------------------------------------------------------- formatting
def _fmt(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, trailing zeros kept; an en dash for NaN/None.

    ``4.00``, ``27.5``, ``143``, ``1234``: no decimals from ``10**(digits-1)`` up.
    """
    x = as_float(value)
    if not math.isfinite(x):
        return "–"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:.0f}"
    x = float(f"{x:.{digits}g}")  # round first: 9.996 is 10.0, not 10.00
    if x == 0:
        return f"{0:.{digits - 1}f}"
    magnitude = math.floor(math.log10(abs(x)))
    return f"{x:.{max(0, digits - 1 - magnitude)}f}"


def _pm(row: Mapping[str, Any], key: str) -> str:
    mean, half = as_float(row.get(key)), as_float(row.get(f"{key}_ci95"))
    if not math.isfinite(mean):
        return "–"
    text = _fmt(mean)
    if math.isfinite(half):
        text += f" <span class=ci>± {_fmt(half, 2)}</span>"
    return text


def _success(row: Mapping[str, Any]) -> str:
    rate = as_float(row.get("success_rate"))
    if not math.isfinite(rate):
        return "–"
    low, high = as_float(row.get("success_ci_low")), as_float(row.get("success_ci_high"))
    return (f"{rate:.2f} <span class=ci>[{low:.2f}, {high:.2f}]</span>"
            if math.isfinite(low) and math.isfinite(high) else f"{rate:.2f}")


def _offload_rate(row: Mapping[str, Any]) -> float:
    return as_float(offload_rate_of_rows([row]))


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ("<tr><th>task</th><th>agent</th><th>noise</th><th>link</th><th>n</th>"
            "<th>success [95 % CI]</th><th>latency ms<br><small>mean ± 95 % CI</small></th>"
            "<th>latency ms<br><small>p95</small></th><th>offloads / s</th>"
            "<th>stall ticks</th><th>RMS jerk</th><th>faults</th></tr>")
    body = []
    for row in rows:
        fault_count = as_float(row.get("faults"))
        faults = int(fault_count) if math.isfinite(fault_count) else 0
        body.append(
            "<tr>" + "".join(f"<td>{_esc(row.get(k))}</td>" for k in CELL_KEYS)
            + f"<td class=n>{_esc(row.get('episodes'))}</td>"
            + f"<td class=n>{_success(row)}</td>"
            + f"<td class=n>{_pm(row, 'latency_ms_mean')}</td>"
            + f"<td class=n>{_fmt(row.get('latency_ms_p95'))}</td>"
            + f"<td class=n>{_fmt(_offload_rate(row))}</td>"
            + f"<td class=n>{_pm(row, 'stall_steps')}</td>"
            + f"<td class=n>{_pm(row, 'rms_jerk')}</td>"
            + f"<td class=n{' bad' if faults else ''}>{faults}</td></tr>"
        )
    return f"<table class=summary><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _config_table(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    sweep = manifest.get("sweep") or {}
    env = sweep.get("env") or {}

    def listed(field: str, record_key: str) -> str:
        values = sweep.get(field)
        if not values:  # no manifest: what the records hold
            values = list(dict.fromkeys(str(r.get(record_key)) for r in records))
        return ", ".join(f"<code>{_esc(v)}</code>" for v in values)

    seeds = "–"
    if isinstance(sweep.get("seed"), int) and isinstance(sweep.get("episodes"), int):
        first, n = sweep["seed"], sweep["episodes"]
        seeds = f"{first}–{first + n - 1} ({n} paired seed{'s' if n != 1 else ''} per cell)"
    elif records:
        distinct = sorted({int(r["seed"]) for r in records if isinstance(r.get("seed"), int)})
        if distinct:
            seeds = f"{distinct[0]}–{distinct[-1]} ({len(distinct)} distinct)"
    control = env.get("control") or {}
    first = records[0] if records else {}
    items = [
        ("tasks", listed("tasks", "task")),
        ("agents", listed("agents", "agent")),
        ("noises", listed("noises", "noise")),
        ("links", listed("links", "link")),
        ("seeds", _esc(seeds)),
        ("policy", f"<code>{_esc(env.get('policy', first.get('policy', '–')))}</code>"),
        ("cost profile", f"<code>{_esc(env.get('profile', first.get('profile', '–')))}</code>"),
        ("devices", f"edge <code>{_esc(env.get('edge', first.get('edge', '–')))}</code>, "
                    f"cloud <code>{_esc(env.get('cloud', first.get('cloud', '–')))}</code>"),
    ]
    if env:
        items.append(("control", _esc(
            f"{_plain(env.get('control_hz'))} Hz, chunks of {env.get('chunk_size')}, episodes "
            f"of at most {_plain(env.get('max_episode_s'))} s, image {env.get('image_size')} px, "
            f"hold policy {control.get('hold_policy')}, align {control.get('align')}")))
    versions = manifest.get("versions") or {}
    if versions:
        items.append(("versions", _esc(", ".join(f"{k} {v}" for k, v in versions.items()))))
    for label, key in (("git commit", "git_commit"), ("started", "created"),
                       ("W&B run", "wandb_run_id")):
        if manifest.get(key):
            items.append((label, f"<code>{_esc(manifest[key])}</code>"))
    rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in items)
    return f"<table class=config>{rows}</table>"


def _caption(chart: Chart) -> str:
    for name, text in _CAPTIONS.items():
        if chart.name == name or chart.name.startswith(f"{name}__"):
            return text
    return ""


def _charts_html(rows: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    figures = []
    for chart in sweep_charts(rows):
        png = render_png(chart, CHART_WIDTH_IN, CHART_HEIGHT_IN)
        data = base64.b64encode(png).decode("ascii")
        figures.append(
            f'<figure id="{_esc(chart.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_esc(chart.title)}"><figcaption><code>{_esc(chart.name)}</code> '
            f"{_esc(_caption(chart))}</figcaption></figure>"
        )
    return "\n".join(figures), len(figures)


_MIME = {".gif": "image/gif", ".png": "image/png", ".mp4": "video/mp4"}


def _media_files(out: Path) -> list[Path]:
    """Up to :data:`MAX_MEDIA` videos and as many stills, the first seed of every cell first.

    Videos are ``OUT/videos/**/*.mp4|*.gif``; stills are the PNGs under ``OUT/videos/`` (one
    composited frame per recorded episode, :mod:`rapid_env.eval.media`) and ``OUT/frames/``.
    """
    def spread(paths: list[Path]) -> list[Path]:
        # rank within its folder (cell) first, so that six files come from six cells
        rank: dict[Path, int] = {}
        for path in sorted(paths):
            rank[path] = sum(1 for other in rank if other.parent == path.parent)
        return sorted(paths, key=lambda p: (rank[p], p))[:MAX_MEDIA]

    def found(folder: str, suffixes: tuple[str, ...]) -> list[Path]:
        root = out / folder
        if not root.is_dir():
            return []
        return [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes]

    videos = spread(found("videos", (".mp4", ".gif")))
    stills = spread(found("videos", (".png",)) + found("frames", (".png",)))
    return videos + stills


def _media_html(out: Path, files: Sequence[Path]) -> str:
    items = []
    for path in files:
        rel = path.relative_to(out).as_posix()
        size = path.stat().st_size
        mime = _MIME[path.suffix.lower()]
        src = (f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
               if size <= MAX_EMBED_BYTES else rel)
        if mime == "video/mp4":
            tag = (f'<video controls muted loop preload="metadata" src="{_esc(src)}"></video>'
                   if size <= MAX_EMBED_BYTES
                   else f'<a href="{_esc(rel)}">{_esc(rel)}</a> ({size / 2**20:.0f} MB, linked)')
        else:
            tag = f'<img src="{_esc(src)}" alt="{_esc(rel)}">'
        items.append(f"<figure class=media>{tag}<figcaption><code>{_esc(rel)}</code>"
                     "</figcaption></figure>")
    return "<div class=gallery>" + "".join(items) + "</div>"


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
td.bad{color:#b00;font-weight:600}
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
footer{color:#666;margin-top:32px;font-size:12.5px}
"""


def render_report(out: Path) -> str:
    """The report page of the store in ``out``, as HTML text (see the module docstring)."""
    out = Path(out)
    manifest, raw, skipped = _read_store(out)
    records, dropped = dedupe(raw)
    try:
        rows = summarize(records)
    except ValueError as exc:
        raise ReportError(f"{out / 'episodes.jsonl'}: {exc}") from None
    sweep = manifest.get("sweep") or {}
    rows = _sweep_order(rows, sweep)

    command = manifest.get("command")
    if isinstance(command, str) and command:
        command_note = "as it was typed (from <code>manifest.json</code>)"
    elif manifest:
        command = reconstruct_command(manifest, out)
        command_note = ("reconstructed from <code>manifest.json</code> (it plans the same "
                        "episodes; backend, workers and W&amp;B flags are not recorded)")
    else:
        command, command_note = "", "unknown: this folder has no <code>manifest.json</code>"

    expected = manifest.get("n_episodes")
    meta = [f"{len(records)} episode{'s' if len(records) != 1 else ''} in {len(rows)} "
            f"cell{'s' if len(rows) != 1 else ''}"]
    if isinstance(expected, int) and expected != len(records):
        meta.append(f"<span class=warn>{len(records)} of the {expected} planned: the sweep "
                    "has not finished (rerun its command to resume)</span>")
    errors = sum(1 for r in records if str(r.get("fault") or "").startswith("episode_error"))
    if errors:
        meta.append(f"<span class=warn>{errors} episode(s) could not run "
                    "(<code>episode_error</code>)</span>")
    if dropped:
        meta.append(f"<span class=warn>{dropped} duplicated record(s) counted once</span>")
    if skipped:
        meta.append(f"<span class=warn>{skipped} unreadable line(s) of episodes.jsonl "
                    "skipped</span>")

    charts, n_charts = _charts_html(rows)
    media = _media_files(out)
    title = f"rapid-eval report: {out.resolve().name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class=meta>{' · '.join(meta)}</p>",
        "<h2>Command</h2>",
        f"<pre>{_esc(command)}</pre>" if command else "",
        f"<p class=meta>{command_note}.</p>",
        "<h2>Configuration</h2>",
        _config_table(manifest, records),
        "<h2>Summary</h2>",
        "<p class=meta>One row per task × agent × noise × link cell. Success: rate and Wilson "
        "95 % interval. Latency, stall ticks and RMS jerk: mean per episode ± the 95 % "
        "t-interval half-width. Offloads / s: the cell's total offloads over its total "
        "simulated seconds. Faults: episodes with a recorded fault. Every column, with its "
        "interval, is in <code>summary.csv</code>.</p>",
        f"<div class=scroll>{_summary_table(rows)}</div>" if rows
        else "<p>No episodes finished yet.</p>",
        "<h2>Charts</h2>",
        f"<div class=charts>{charts}</div>" if n_charts
        else "<p>No charts: the records lack the fields they need.</p>",
    ]
    if media:
        parts += ["<h2>Videos and frames</h2>",
                  f"<p class=meta>Files up to {MAX_EMBED_BYTES // 2**20} MB are embedded; larger "
                  "ones are linked (they stay next to this report).</p>" if any(
                      p.stat().st_size > MAX_EMBED_BYTES for p in media) else "",
                  _media_html(out, media)]
    parts += [
        f"<footer>Built from <code>manifest.json</code> and <code>episodes.jsonl</code> alone; "
        f"<code>rapid-report {_esc(shlex.quote(str(out)))}</code> rebuilds it.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def write_report(out: Path) -> Path:
    """Build ``out/report.html`` from the store in ``out`` (atomically); return its path.

    Raises:
        ReportError: ``out`` holds no ``episodes.jsonl``, or its records cannot be summarised.
    """
    out = Path(out)
    text = render_report(out)
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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, exit code 2 (through :func:`main`)."""
        raise ReportError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rapid-report OUT``: rebuild ``OUT/report.html`` and print its path."""
    parser = _Parser(prog="rapid-report",
                     description="Rebuild OUT/report.html from a rapid-eval results store.")
    parser.add_argument("out", type=Path, help="the sweep's output folder (rapid-eval --out)")
    try:
        args = parser.parse_args(argv)
        path = write_report(args.out)
    except ReportError as exc:
        print(f"rapid-report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rapid-report: error: cannot write {args.out / REPORT} ({exc.strerror})",
              file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
