from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from rapid_env.cost import (
    DEVICES,
    PROFILES,
    ArchProfile,
    BlockCost,
    CostModel,
    DeviceProfile,
    Stage,
    build_cost_model,
    load_profile,
)
from rapid_env.cost.profiles import PROFILES_JSON, build_profiles
from rapid_env.registry import UnknownNameError


@pytest.fixture(scope="module")
def model() -> CostModel:
    return build_cost_model("openvla-7b", edge="jetson-agx-orin", cloud="a100")


# ------------------------------------------------------------------------------------ devices


def test_datasheet_devices_registered() -> None:
    names = DEVICES.names()
    for name in ("jetson-orin-nano", "jetson-agx-orin", "rtx-4090", "a100", "h100"):
        assert name in names
        dev = DEVICES.create(name)
        assert dev.name == name
        assert dev.source


def test_device_validation() -> None:
    good = DEVICES.create("a100")
    with pytest.raises(ValueError, match="peak_flops"):
        dataclasses.replace(good, peak_flops=0.0)
    with pytest.raises(ValueError, match="mem_bandwidth"):
        dataclasses.replace(good, mem_bandwidth=-1.0)
    with pytest.raises(ValueError, match="memory_efficiency"):
        dataclasses.replace(good, memory_efficiency=1.5)
    with pytest.raises(ValueError, match="compute_efficiency"):
        dataclasses.replace(good, compute_efficiency=0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        good.peak_flops = 1.0  # type: ignore[misc]


def test_roofline_time() -> None:
    dev = DeviceProfile("toy", 100.0, 10.0, 1e9, 0.5, 1.0, "test")
    assert dev.time_s(100.0, 1.0) == pytest.approx(2.0)  # compute-bound: 100 / (100 * 0.5)
    assert dev.time_s(1.0, 50.0) == pytest.approx(5.0)  # memory-bound: 50 / 10
    with pytest.raises(ValueError):
        dev.time_s(-1.0, 0.0)


def test_unknown_device_lists_allowed() -> None:
    with pytest.raises(UnknownNameError) as err:
        build_cost_model(edge="jetson-tx1")
    assert "jetson-tx1" in str(err.value)
    for name in DEVICES.names():
        assert name in str(err.value)


# ----------------------------------------------------------------------------------- profiles


def test_unknown_profile_lists_allowed() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_profile("gpt-17")
    assert "openvla-7b" in str(err.value)
    with pytest.raises(UnknownNameError, match="openvla-7b"):
        build_cost_model(profile="gpt-17")


def test_load_profile_does_not_import_torch() -> None:
    code = (
        "import sys; from rapid_env.cost import build_cost_model; "
        "m = build_cost_model(); m.plan(0); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_openvla_profile_shape() -> None:
    prof = PROFILES.create("openvla-7b")
    names = [b.name for b in prof.blocks]
    assert names[:4] == ["vision.dinov2", "vision.siglip", "projector", "llm.embed_tokens"]
    assert names[-1] == "llm.lm_head"
    assert sum(n.startswith("llm.layer.") for n in names) == 32
    assert prof.decode_steps == 6  # 7 action tokens: prefill yields the first
    # OpenVLA-7B has 7,541,237,184 parameters (model card); HF Dinov2 adds a 1024-d mask token.
    assert prof.weight_bytes / 2 == pytest.approx(7.541e9, rel=1e-3)
    # Prefill ~ 2 x 6.5 B x 276 tokens + vision ~ 4 TFLOP.
    assert 3.5e12 < prof.total_flops < 4.5e12
    assert prof.input_bytes == 224 * 224 * 3 + 20 * 8
    assert prof.output_bytes == 7 * 4
    assert ArchProfile.from_dict(prof.to_dict()) == prof


def test_block_validation() -> None:
    with pytest.raises(ValueError, match="flops"):
        BlockCost("x", -1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="per_token"):
        BlockCost("x", 1.0, 0.0, 0.0, decode_flops=1.0)
    tail = BlockCost("t", 1.0, 1.0, 1.0, per_token=True)
    head = BlockCost("h", 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="contiguous"):
        ArchProfile("bad", (tail, head), 1, 1, 1, "test")


@pytest.mark.slow
def test_profile_regenerates_to_cached_json() -> None:
    cached = json.loads(PROFILES_JSON.read_text())["profiles"]
    rebuilt = build_profiles(["openvla-7b"])["openvla-7b"].to_dict()
    _assert_close(rebuilt, cached["openvla-7b"])


def _assert_close(a: object, b: object, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for key in a:
            _assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, (int, float)), path
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0), (path, a, b)
    else:
        assert a == b, (path, a, b)


# ------------------------------------------------------------------------------ calibration


def test_calibration_edge_only_agx_orin(model: CostModel) -> None:
    edge_s, cloud_s = model.compute_seconds(model.n_blocks)
    assert 0.750 <= edge_s <= 0.800  # RAPID Table III: 782.5 ms
    assert cloud_s == 0.0


def test_calibration_cloud_a100(model: CostModel) -> None:
    edge_s, cloud_s = model.compute_seconds(0)
    assert edge_s == 0.0
    assert 0.055 <= cloud_s <= 0.085  # RAPID Table III cloud side: 62.5-83.5 ms


def test_edge_only_memory_matches_paper(model: CostModel) -> None:
    # RAPID Table III: 14.2 GB on the edge for edge-only OpenVLA-7B (reads as GiB).
    assert model.edge_memory_bytes(model.n_blocks) / 2**30 == pytest.approx(14.2, abs=0.3)


# ------------------------------------------------------------------------------------- plans


def test_plan_edge_only(model: CostModel) -> None:
    plan = model.plan(model.n_blocks)
    assert plan.kinds == ("edge",)
    assert plan.n_transfers == 0
    assert plan[0].seconds == pytest.approx(model.compute_seconds(model.n_blocks)[0])


def test_plan_cloud_only(model: CostModel) -> None:
    plan = model.plan(0)
    assert plan.kinds == ("up", "cloud", "down")
    assert plan[0].nbytes == model.profile.input_bytes
    assert plan[2].nbytes == model.profile.output_bytes
    assert plan[1].seconds == pytest.approx(model.compute_seconds(0)[1])


def test_plan_mid_vision(model: CostModel) -> None:
    plan = model.plan(1)  # DINOv2 on the edge, SigLIP onwards in the cloud
    assert plan.kinds == ("edge", "up", "cloud", "down")
    assert not model.splits_decoder(1)
    # The cloud still needs the raw image for SigLIP, plus the DINOv2 patch features.
    assert plan[1].nbytes > model.profile.input_bytes
    assert plan[1].nbytes == 256 * 1024 * 2 + model.profile.input_bytes
    assert plan[3].nbytes == model.profile.output_bytes


def test_plan_split_inside_decoder(model: CostModel) -> None:
    k = 4 + 16  # embeddings + 16 decoder layers on the edge
    assert model.profile.blocks[k - 1].name == "llm.layer.15"
    assert model.splits_decoder(k)
    plan = model.plan(k)
    steps = model.profile.decode_steps
    assert plan.kinds == ("edge", "up", "cloud", "down") * (steps + 1)
    ups = [s.nbytes for s in plan if s.kind == "up"]
    downs = [s.nbytes for s in plan if s.kind == "down"]
    assert ups[0] == 276 * 4096 * 2  # the whole prompt's hidden states, once
    assert ups[1:] == [4096 * 2] * steps  # then one token's hidden state per step
    assert downs == [8] * steps + [model.profile.output_bytes]
    # Prefill rounds are dearer than decode rounds on both sides.
    assert plan[0].seconds > plan[4].seconds > 0
    assert plan[2].seconds > plan[6].seconds > 0


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5, 20, 36, 37])
def test_plan_conserves_compute(model: CostModel, k: int) -> None:
    plan = model.plan(k)
    edge_s, cloud_s = model.compute_seconds(k)
    assert plan.edge_seconds == pytest.approx(edge_s, rel=1e-9)
    assert plan.cloud_seconds == pytest.approx(cloud_s, rel=1e-9)
    assert all(isinstance(s, Stage) for s in plan)


def test_invalid_split(model: CostModel) -> None:
    for bad in (-1, model.n_blocks + 1):
        with pytest.raises(ValueError, match="split point"):
            model.plan(bad)


def test_stage_validation() -> None:
    with pytest.raises(ValueError, match="allowed"):
        Stage("sideways", 0.0, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Stage("up", 1.0, 10)
    with pytest.raises(ValueError):
        Stage("edge", 1.0, 10)


# ------------------------------------------------------------------------------------ memory


def test_edge_memory_grows_with_k(model: CostModel) -> None:
    mems = [model.edge_memory_bytes(k) for k in model.splits]
    assert mems[0] == 0.0
    assert all(b > a for a, b in zip(mems, mems[1:], strict=False))


def test_fits_edge_on_small_jetson() -> None:
    nano = build_cost_model(edge="jetson-orin-nano")
    assert nano.fits_edge(0)
    assert not nano.fits_edge(nano.n_blocks)  # 15 GB of weights in 8 GB
    orin = build_cost_model(edge="jetson-agx-orin")
    assert orin.fits_edge(orin.n_blocks)


# -------------------------------------------------------------------------------- best split


def test_best_split_fast_link_is_cloud_heavy(model: CostModel) -> None:
    k = model.best_split(bandwidth_bps=1e9, rtt_s=0.002)
    assert k <= 3  # nothing past the vision/projector stays on the edge
    assert model.latency_s(k, 1e9, 0.002) < model.compute_seconds(model.n_blocks)[0]


def test_best_split_slow_link_is_edge_only(model: CostModel) -> None:
    assert model.best_split(bandwidth_bps=1e5, rtt_s=1.0) == model.n_blocks


def test_best_split_respects_edge_memory() -> None:
    nano = build_cost_model(edge="jetson-orin-nano")
    k = nano.best_split(bandwidth_bps=1e5, rtt_s=1.0)
    assert nano.fits_edge(k)
    assert k < nano.n_blocks


def test_closed_form_latency(model: CostModel) -> None:
    plan = model.plan(0)
    bw, rtt = 8e6, 0.01  # 1 MB/s
    expected = rtt / 2 + plan[0].nbytes / 1e6 + plan[1].seconds + rtt / 2 + plan[2].nbytes / 1e6
    assert plan.latency_s(bw, rtt) == pytest.approx(expected)
