"""benchmarks/plan_consistency.py on one task, one seed, a few ticks: its JSON and what it measures.

The benchmark's defaults take minutes; this runs the same code on the smallest real case (the
expert and the pinned ``chunk-regress@v1`` on push).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The benchmark script, imported as ``python benchmarks/plan_consistency.py`` runs it."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("plan_consistency")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import sys

    sys.path.insert(0, str(BENCH))
    try:
        mod = importlib.import_module("plan_consistency")
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path_factory.mktemp("pc") / "pc.json"
    assert mod.main(["--policies", "expert,chunk-regress@v1", "--tasks", "push", "--seeds", "1",
                     "--max-ticks", "24", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_json_shape(result: dict) -> None:
    assert result["config"]["tasks"] == ["push"] and result["config"]["seeds"] == [2000]
    rows = {r["policy"]: r for r in result["rows"]}
    assert list(rows) == ["expert", "chunk-regress@v1"]  # one task: no pooled "all" row
    for r in rows.values():
        assert r["task"] == "push" and r["episodes"] == 1 and 0 < r["ticks"] <= 24
        for key in ("seed_spread", "frame_spread"):
            assert r[key]["n"] == r["ticks"] and 0 <= r[key]["median"] <= r[key]["p90"] <= 2
        ages = [int(k) for k in r["gap_by_age"]]
        assert ages == sorted(ages) and set(ages) <= set(range(1, 8)) and 1 in ages
        for st in r["gap_by_age"].values():
            assert st["n"] >= 1 and 0 <= st["median"] <= st["p90"] <= 2
    # deterministic policies: two draws of the policy's randomness agree exactly
    assert rows["expert"]["seed_spread"]["p90"] == 0.0
    assert rows["chunk-regress@v1"]["seed_spread"]["p90"] == 0.0
    # the expert reads no image, so two noisy frames cannot move it; the VLA's pixels do
    assert not rows["expert"]["reads_image"] and rows["expert"]["frame_spread"]["p90"] == 0.0
    assert rows["chunk-regress@v1"]["frame_spread"]["p90"] > 0.0


def test_expert_gap_is_smallest_one_tick_after_planning(result: dict) -> None:
    """Measured: the expert's cached action drifts from a fresh plan after the first tick.

    Not monotone in age: the expert plans by rolling the simulator forward, so its chunk stays
    within a few thousandths of a fresh plan at every age on most ticks; what holds is that one
    tick after planning the gap is the smallest, and that it stays far below the 0.1 tolerance.
    """
    gaps = result["rows"][0]["gap_by_age"]
    first = gaps["1"]["median"]
    later = [gaps[k]["median"] for k in gaps if k != "1"]
    assert later and first <= min(later)
    assert max(st["median"] for st in gaps.values()) < 0.05


def test_bad_frame_noise_names_the_allowed_ones(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"--frame-noise 'fog'; allowed: .*gaussian_noise"):
        bench.parse_frame_noise("fog")


def test_noisy_input_draws_every_camera_from_the_given_stream(bench: ModuleType) -> None:
    from rapid_env.policy import PolicyInput

    img = np.full((8, 8, 3), 128, np.uint8)
    inp = PolicyInput(img, np.zeros(4), "x", None, {"wrist": img})
    a = bench.noisy_input(inp, ("gaussian_noise", 1), np.random.default_rng(1))
    b = bench.noisy_input(inp, ("gaussian_noise", 1), np.random.default_rng(1))
    c = bench.noisy_input(inp, ("gaussian_noise", 1), np.random.default_rng(2))
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image) and not np.array_equal(a.image, a.images["wrist"])
