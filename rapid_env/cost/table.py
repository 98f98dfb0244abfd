"""The summary table of every cost profile, as printed by ``benchmarks/cost_table.py``.

One place computes the numbers ``docs/cost_model.md`` quotes, so the documentation can be checked
against the code (a test regenerates the table and looks for it in the document) instead of
drifting from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapid_env.cost.model import CostModel, build_cost_model
from rapid_env.cost.profiles import PROFILES

TABLE_PROFILES = ("openvla-7b", "openvla-oft-7b", "pi0", "smolvla", "octo-base")
"""Row order: the paper's model first, then by size."""
BANDWIDTH_BPS = 20e6
RTT_S = 0.040
"""The reference link of the table: 20 Mbit/s, 40 ms RTT (a decent uplink to a remote cloud)."""
PAPER_OPENVLA = (
    "| ↳ RAPID Table III (OpenVLA-7B, AGX Orin + A100) | | | | 14.2 GB | 782.5 ± 28.5 | — "
    "| 62.5–83.5 | — | — | — |"
)
"""The paper's figures, in the same columns, printed under OpenVLA's row."""
_GIB = float(2**30)


@dataclass(frozen=True)
class ProfileSummary:
    """Headline numbers of one profile (seconds and bytes; the markdown formats them).

    Attributes:
        profile: Registry name.
        params: Parameters (resident bf16 weight bytes / 2).
        flops: FLOPs of one inference.
        loop: ``"<loop kind> x <passes>"``, e.g. ``"flow x 10"``.
        edge_memory_bytes: Edge memory when everything runs on the edge.
        agx_orin_s: Edge-only compute on a Jetson AGX Orin.
        orin_nano_s: Edge-only compute on a Jetson Orin Nano 8GB.
        orin_nano_fits: Whether edge-only fits the Orin Nano's memory.
        a100_s: Cloud-only compute on an A100.
        h100_s: Cloud-only compute on an H100.
        cloud_only_s: Cloud-only latency on A100 over the reference link (up, compute, down).
        nano_best: The best split for Orin Nano + A100 on the reference link, as words.
    """

    profile: str
    params: float
    flops: float
    loop: str
    edge_memory_bytes: float
    agx_orin_s: float
    orin_nano_s: float
    orin_nano_fits: bool
    a100_s: float
    h100_s: float
    cloud_only_s: float
    nano_best: str


def _edge_only_s(model: CostModel) -> float:
    return model.compute_seconds(model.n_blocks)[0]


def _cloud_only_s(model: CostModel) -> float:
    return model.compute_seconds(0)[1]


def describe_split(model: CostModel, k: int) -> str:
    """A split point in words: ``cloud-only``, ``edge-only`` or ``after <block name>``."""
    if k == 0:
        return "cloud-only"
    if k == model.n_blocks:
        return "edge-only"
    return f"after {model.profile.blocks[k - 1].name}"


def summarize(
    profile: str, bandwidth_bps: float = BANDWIDTH_BPS, rtt_s: float = RTT_S
) -> ProfileSummary:
    """Compute one profile's headline numbers on the reference devices and link."""
    orin = build_cost_model(profile, "jetson-agx-orin", "a100")
    nano = build_cost_model(profile, "jetson-orin-nano", "a100")
    h100 = build_cost_model(profile, "jetson-agx-orin", "h100")
    prof = orin.profile
    n = orin.n_blocks
    return ProfileSummary(
        profile=profile,
        params=prof.weight_bytes / 2,
        flops=prof.total_flops,
        loop=f"{prof.loop} x {prof.loop_passes}" if prof.loop != "none" else "none",
        edge_memory_bytes=orin.edge_memory_bytes(n),
        agx_orin_s=_edge_only_s(orin),
        orin_nano_s=_edge_only_s(nano),
        orin_nano_fits=nano.fits_edge(n),
        a100_s=_cloud_only_s(orin),
        h100_s=_cloud_only_s(h100),
        cloud_only_s=orin.latency_s(0, bandwidth_bps, rtt_s),
        nano_best=describe_split(nano, nano.best_split(bandwidth_bps, rtt_s)),
    )


def _params(n: float) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def markdown_table(
    profiles: tuple[str, ...] = TABLE_PROFILES,
    bandwidth_bps: float = BANDWIDTH_BPS,
    rtt_s: float = RTT_S,
) -> str:
    """The summary table in markdown; times in ms, the paper's OpenVLA figures under its row."""
    link = f"{bandwidth_bps / 1e6:g} Mbit/s, {rtt_s * 1e3:g} ms RTT"
    lines = [
        "| profile | params | GFLOP / inference | loop | edge-only memory "
        "| AGX Orin edge-only (ms) | Orin Nano edge-only (ms) | A100 compute (ms) "
        f"| H100 compute (ms) | cloud-only A100, {link} (ms) "
        f"| best split Orin Nano → A100, {link} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in profiles:
        PROFILES.check(name)
        s = summarize(name, bandwidth_bps, rtt_s)
        nano = _ms(s.orin_nano_s) + ("" if s.orin_nano_fits else " (does not fit)")
        lines.append(
            f"| `{s.profile}` | {_params(s.params)} | {s.flops / 1e9:,.0f} | {s.loop} "
            f"| {s.edge_memory_bytes / _GIB:.2f} GiB | {_ms(s.agx_orin_s)} | {nano} "
            f"| {_ms(s.a100_s)} | {_ms(s.h100_s)} | {_ms(s.cloud_only_s)} | {s.nano_best} |"
        )
        if name == "openvla-7b":
            lines.append(PAPER_OPENVLA)
    return "\n".join(lines)
