"""Golden records: the refactors of the core must not change one recorded number.

The scripted expert (no torch rounding) drives every registered decider over three links and two
scenes on a few seeds; every non-wall-clock field of every record must equal the one stored in
``golden_records.json``, which was written by ``python tests/golden/test_golden_records.py`` on the
code *before* the layering refactor (issue 11) and has not been regenerated since.

Only public names that every refactor keeps are used here: ``SweepSpec``/``iter_sweep`` of the
evaluation layer, ``EnvConfig`` of the core, the decider registry and the record schema's
``WALL_CLOCK_FIELDS`` (the fields measured on the host, left out of the comparison).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rapid_env.record import WALL_CLOCK_FIELDS as WALL_CLOCK

GOLDEN = Path(__file__).with_name("golden_records.json")
LINKS = ("ideal", "wifi", "5g-driving")
SCENES = ("clean", "interference")
SEEDS = 2
AGENTS = (
    "rapid", "rapid-acc-only", "rapid-torque-only", "rapid-fixed-weights",
    "rapid-single-threshold", "rapid-no-preempt", "rapid-no-cooldown", "rapid-link-aware",
    "edge-only", "cloud-only", "learned", "static-split", "chunk-threshold", "periodic",
    "vision-entropy", "bandwidth-adaptive",
)


def golden_records() -> list[dict[str, Any]]:
    """Run the golden sweep and return its records without wall-clock fields."""
    from rapid_env.config import EnvConfig
    from rapid_env.eval.runner import SweepSpec, iter_sweep

    spec = SweepSpec(
        tasks=("push",),
        agents=AGENTS,
        noises=SCENES,
        links=LINKS,
        episodes=SEEDS,
        seed=1000,
        base=EnvConfig(policy="expert", image_size=32, max_episode_s=3.0),
    )
    return [
        {k: v for k, v in r.items() if k not in WALL_CLOCK} for r in iter_sweep(spec)
    ]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.slow
def test_every_record_equals_the_golden_one():
    expected = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(golden_records()))  # the JSON round trip the store does
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        cell = (e["task"], e["agent"], e["noise"], e["link"], e["seed"])
        assert set(g) >= set(e), f"{cell}: fields missing: {sorted(set(e) - set(g))}"
        diff = {k: (g[k], e[k]) for k in e if not _same(g[k], e[k])}
        assert not diff, f"{cell}: {diff}"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(golden_records(), indent=0) + "\n")
    print(f"wrote {GOLDEN}")
