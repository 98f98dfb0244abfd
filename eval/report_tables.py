"""The report's tables as HTML: configuration, summary per cell, paired comparison.

Every number with an interval is rounded to what the interval supports
(:func:`~rapid_env.eval.rounding.ci_parts`): ``173`` rather than ``173 ± 0.00000000000056``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rapid_env.eval.pooling import as_float
from rapid_env.eval.rounding import ci_parts, fmt, signed
from rapid_env.eval.store import POLICY_DIGEST_FIELD
from rapid_env.eval.summary import CELL_KEYS
from rapid_env.eval.table import episodes_cell
from rapid_env.record import invalid_reason
from rapid_env.record_metrics import offload_rate_of_rows

__all__ = ["config_table", "paired_table", "plain", "summary_table", "validity_line"]


def esc(value: Any) -> str:
    """``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def plain(value: Any) -> str:
    """``2.0`` as ``2``: the form a person types."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pm(row: Mapping[str, Any], key: str, sign: bool = False) -> str:
    """The row's ``key`` ± its ``key_ci95``, rounded to the interval (signed for differences)."""
    text, half = ci_parts(row.get(key), row.get(f"{key}_ci95"))
    text = signed(text) if sign else text
    return text if half is None else f"{text} <span class=ci>± {half}</span>"


def _success(row: Mapping[str, Any]) -> str:
    rate = as_float(row.get("success_rate"))
    if not math.isfinite(rate):
        return "–"
    low, high = as_float(row.get("success_ci_low")), as_float(row.get("success_ci_high"))
    return (f"{rate:.2f} <span class=ci>[{low:.2f}, {high:.2f}]</span>"
            if math.isfinite(low) and math.isfinite(high) else f"{rate:.2f}")


def _time_to_success(row: Mapping[str, Any]) -> str:
    """Mean time to success ± its interval, and over how many successes (``n=``)."""
    n = row.get("time_to_success_n")
    if not isinstance(n, int):
        return "–"
    return f"{_pm(row, 'time_to_success_s')} <small>(n={n})</small>" if n else "– (n=0)"


def offload_rate(row: Mapping[str, Any]) -> float:
    """A summary row's offloads per simulated second; NaN if none.

    The one definition is :func:`rapid_env.record_metrics.offload_rate_of_rows`.
    """
    rate = offload_rate_of_rows([row])
    return math.nan if rate is None else rate


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One row per cell: n, success [Wilson CI], latency, time to success, stalls, jerk, faults.

    Time to success is the mean over the cell's successful episodes (how many is shown beside
    it) and stall share the cell's stall ticks over its ticks, beside per-chunk latency: a
    decider can cut latency per chunk and still keep the robot waiting longer.
    """
    head = ("<tr><th>task</th><th>agent</th><th>noise</th><th>link</th><th>n</th>"
            "<th>success [95 % CI]</th><th>latency ms<br><small>mean ± 95 % CI</small></th>"
            "<th>latency ms<br><small>p95</small></th>"
            "<th>time to success s<br><small>mean over n successes</small></th>"
            "<th>stall share<br><small>stall ticks / ticks</small></th><th>offloads / s</th>"
            "<th>stall ticks</th><th>RMS jerk</th><th>faults</th></tr>")
    body = []
    for row in rows:
        fault_count = as_float(row.get("faults"))
        faults = int(fault_count) if math.isfinite(fault_count) else 0
        body.append(
            "<tr>" + "".join(f"<td>{esc(row.get(k))}</td>" for k in CELL_KEYS)
            + f"<td class=n>{esc(episodes_cell(row))}</td>"
            + f"<td class=n>{_success(row)}</td>"
            + f"<td class=n>{_pm(row, 'latency_ms_mean')}</td>"
            + f"<td class=n>{fmt(row.get('latency_ms_p95'))}</td>"
            + f"<td class=n>{_time_to_success(row)}</td>"
            + f"<td class=n>{fmt(row.get('stall_share'))}</td>"
            + f"<td class=n>{fmt(offload_rate(row))}</td>"
            + f"<td class=n>{_pm(row, 'stall_steps')}</td>"
            + f"<td class=n>{_pm(row, 'rms_jerk')}</td>"
            + f"<td class=n{' bad' if faults else ''}>{faults}</td></tr>"
        )
    return f"<table class=summary><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def validity_line(records: Sequence[Mapping[str, Any]]) -> str:
    """``"n valid of N episodes"`` (HTML) and, with invalid ones, their reasons' kinds.

    Invalid episodes (infrastructure faults, :func:`~rapid_env.record.invalid_reason`) are left
    out of every number of the report; the line says how many the numbers rest on. Empty when
    every episode is valid.
    """
    reasons = [why for r in records if (why := invalid_reason(r)) is not None]
    if not reasons:
        return ""
    kinds = dict.fromkeys(why.split(":", 1)[0] for why in reasons)
    return (f"<span class=warn>{len(records) - len(reasons)} valid of {len(records)} episodes: "
            f"{len(reasons)} invalid (infrastructure: "
            f"{', '.join(f'<code>{esc(k)}</code>' for k in kinds)}), left out of every number "
            "below; rerun the sweep's command to run them again</span>")


def _d_success(row: Mapping[str, Any]) -> tuple[str, bool]:
    """Δ success with its Newcombe interval, and whether the interval excludes 0."""
    d = as_float(row.get("d_success"))
    lo, hi = as_float(row.get("d_success_lo")), as_float(row.get("d_success_hi"))
    if not math.isfinite(d):
        return ("–", False)
    text = signed(f"{d:.2f}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (text, False)
    return (f"{text} <span class=ci>[{signed(f'{lo:.2f}')}, {signed(f'{hi:.2f}')}]</span>",
            lo > 0 or hi < 0)


def paired_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One row per cell and agent: its paired differences from the baseline (``paired.csv``)."""
    head = ("<tr><th>task</th><th>noise</th><th>link</th><th>agent</th><th>n pairs</th>"
            "<th>success<br><small>agent / baseline</small></th>"
            "<th>Δ success<br><small>[95 % CI]</small></th>"
            "<th>Δ latency ms<br><small>± 95 % CI</small></th><th>Δ RMS jerk</th>"
            "<th>Δ offloads<br><small>per episode</small></th><th>Δ offloads / s</th></tr>")
    body = []
    for row in rows:
        d_success, clear = _d_success(row)
        count = as_float(row.get("unpaired"))
        unpaired = int(count) if math.isfinite(count) else 0
        n = esc(row.get("n_pairs")) + (f" <span class=ci>({unpaired} unpaired)</span>"
                                       if unpaired else "")
        rates = " / ".join(f"{v:.2f}" if math.isfinite(v) else "–" for v in (
            as_float(row.get("agent_success")), as_float(row.get("baseline_success"))))
        body.append(
            "<tr>" + "".join(f"<td>{esc(row.get(k))}</td>"
                             for k in ("task", "noise", "link", "agent"))
            + f"<td class=n>{n}</td><td class=n>{rates}</td>"
            + f"<td class=n{' clear' if clear else ''}>{d_success}</td>"
            + f"<td class=n>{_pm(row, 'd_latency_ms', sign=True)}</td>"
            + f"<td class=n>{_pm(row, 'd_jerk', sign=True)}</td>"
            + f"<td class=n>{_pm(row, 'd_offloads', sign=True)}</td>"
            + f"<td class=n>{signed(fmt(row.get('d_offload_rate')))}</td></tr>"
        )
    return (f"<table class=\"summary paired\"><thead>{head}</thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _listed(sweep: Mapping[str, Any], records: Sequence[Mapping[str, Any]], field: str,
            record_key: str) -> str:
    values = sweep.get(field)
    if not values:  # no manifest: what the records hold
        values = list(dict.fromkeys(str(r.get(record_key)) for r in records))
    return ", ".join(f"<code>{esc(v)}</code>" for v in values)


def _seeds(sweep: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    if isinstance(sweep.get("seed"), int) and isinstance(sweep.get("episodes"), int):
        first, n = sweep["seed"], sweep["episodes"]
        return f"{first}–{first + n - 1} ({n} paired seed{'s' if n != 1 else ''} per cell)"
    distinct = sorted({int(r["seed"]) for r in records if isinstance(r.get("seed"), int)})
    return f"{distinct[0]}–{distinct[-1]} ({len(distinct)} distinct)" if distinct else "–"


def _placement(env: Mapping[str, Any], first: Mapping[str, Any]) -> str:
    """`` on <device> in <dtype>`` where the policy ran off the defaults (cpu, float32)."""
    device = env.get("device", first.get("device", "cpu"))
    dtype = env.get("dtype", first.get("dtype", "float32"))
    if (device, dtype) == ("cpu", "float32"):
        return ""
    return f" on <code>{esc(device)}</code> in <code>{esc(dtype)}</code>"


def _weights(manifest: Mapping[str, Any]) -> str:
    """``, weights <digest>`` when the manifest records the policy's weights (a checkpoint).

    The name alone does not say which weights ran (``chunk-regress`` is always the newest
    version), so a reader comparing two reports can tell them apart by this.
    """
    digest = manifest.get(POLICY_DIGEST_FIELD)
    return f", weights <code>{esc(digest)}</code>" if isinstance(digest, str) else ""


def config_table(manifest: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """What the sweep ran: its lists, seeds, models, control settings, versions and run ids."""
    sweep = manifest.get("sweep") or {}
    env = sweep.get("env") or {}
    control = env.get("control") or {}
    first = records[0] if records else {}
    items = [(label, _listed(sweep, records, field, key)) for label, field, key in (
        ("tasks", "tasks", "task"), ("agents", "agents", "agent"),
        ("noises", "noises", "noise"), ("links", "links", "link"))]
    items += [
        ("seeds", esc(_seeds(sweep, records))),
        ("policy", f"<code>{esc(env.get('policy', first.get('policy', '–')))}</code>"
                   + _weights(manifest) + _placement(env, first)),
        ("cost profile", f"<code>{esc(env.get('profile', first.get('profile', '–')))}</code>"),
        ("devices", f"edge <code>{esc(env.get('edge', first.get('edge', '–')))}</code>, "
                    f"cloud <code>{esc(env.get('cloud', first.get('cloud', '–')))}</code>"),
    ]
    if env:
        items.append(("control", esc(
            f"{plain(env.get('control_hz'))} Hz, chunks of {env.get('chunk_size')}, episodes "
            f"of at most {plain(env.get('max_episode_s'))} s, image {env.get('image_size')} px, "
            f"hold policy {control.get('hold_policy')}, align {control.get('align')}")))
    versions = manifest.get("versions") or {}
    if versions:
        items.append(("versions", esc(", ".join(f"{k} {v}" for k, v in versions.items()))))
    for label, key in (("git commit", "git_commit"), ("started", "created"),
                       ("W&B run", "wandb_run_id")):
        if manifest.get(key):
            items.append((label, f"<code>{esc(manifest[key])}</code>"))
    rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in items)
    return f"<table class=config>{rows}</table>"
