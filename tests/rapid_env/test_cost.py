from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

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
from rapid_env.cost.model import SplitCost, split_table
from rapid_env.cost.profiles import PROFILES_JSON
from rapid_env.cost.table import markdown_table
from rapid_env.registry import UnknownNameError

ALL_PROFILES = ("openvla-7b", "openvla-oft-7b", "pi0", "smolvla", "octo-base")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cost_model.md"


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
        "m = build_cost_model(); m.plan(0); assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'rapid_env.profiler' not in sys.modules, 'the offline profiler imported'"
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


# ------------------------------------------------------------------------- all five profiles


def test_all_profiles_registered() -> None:
    assert set(ALL_PROFILES) <= set(PROFILES.names())
    cached = json.loads(PROFILES_JSON.read_text())["profiles"]
    assert set(ALL_PROFILES) <= set(cached)


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_profile_loads_with_positive_costs(name: str) -> None:
    prof = load_profile(name)
    assert prof.name == name
    assert prof.source
    assert prof.total_flops > 0
    assert prof.weight_bytes > 0
    assert prof.input_bytes > 0 and prof.output_bytes > 0
    for block in prof.blocks:
        assert block.weight_bytes > 0, block.name
        assert block.activation_bytes > 0, block.name
        # Only lookups may be free of arithmetic.
        assert block.flops > 0 or block.name.endswith("embed_tokens"), block.name
    assert ArchProfile.from_dict(prof.to_dict()) == prof


@pytest.mark.parametrize(
    ("name", "params", "loop", "passes"),
    [
        ("openvla-7b", 7.54e9, "autoregressive", 7),
        ("openvla-oft-7b", 7.71e9, "none", 1),
        ("pi0", 3.24e9, "flow", 10),  # pi0 paper: 3.3 B
        ("smolvla", 0.450e9, "flow", 10),  # SmolVLA paper: ~450 M
        ("octo-base", 0.091e9, "diffusion", 20),  # Octo paper: 93 M (T5 not counted)
    ],
)
def test_profile_size_and_loop(name: str, params: float, loop: str, passes: int) -> None:
    prof = load_profile(name)
    assert prof.weight_bytes / 2 == pytest.approx(params, rel=0.01)
    assert prof.loop == loop
    assert prof.loop_passes == passes


def test_oft_is_one_parallel_pass() -> None:
    oft = load_profile("openvla-oft-7b")
    vla = load_profile("openvla-7b")
    assert oft.decode_steps == 0
    assert not any(b.per_token for b in oft.blocks)
    assert oft.output_bytes == 8 * 7 * 4  # a chunk of 8 float32 7-d actions
    # 590 tokens (2 images, proprio, 56 action slots) vs 276: roughly twice the prefill.
    layer = next(b for b in oft.blocks if b.name == "llm.layer.00")
    vla_layer = next(b for b in vla.blocks if b.name == "llm.layer.00")
    assert 2.0 < layer.flops / vla_layer.prefill_flops(vla.decode_steps) < 2.3


@pytest.mark.parametrize("name", ["pi0", "smolvla"])
def test_flow_expert_runs_every_step(name: str) -> None:
    prof = load_profile(name)
    assert prof.decode_steps == 9  # 10 flow steps: the first belongs to the prefill
    loop = prof.blocks[prof.loop_start :]
    assert [b.name for b in loop][0] == "expert.in"
    assert loop[-1].name == "expert.out"
    for block in loop:
        assert block.flops == pytest.approx(prof.loop_passes * block.decode_flops, rel=1e-9)
    # The VLM prefix runs once; each expert layer re-reads its VLM layer's prefix KV cache.
    vlm = [b for b in prof.blocks if b.name.startswith("llm.layer.")]
    experts = [b for b in loop if b.name.startswith("expert.layer.")]
    assert len(vlm) == len(experts) == (18 if name == "pi0" else 16)
    assert not any(b.per_token for b in vlm)
    assert all(b.kv_cache_bytes > 0 for b in experts)
    assert prof.kv_cache_bytes == pytest.approx(sum(b.kv_cache_bytes for b in experts))


@pytest.mark.parametrize("name", ["pi0", "smolvla", "octo-base"])
def test_loop_time_scales_with_steps(name: str) -> None:
    edge, cloud = DEVICES.create("jetson-agx-orin"), DEVICES.create("a100")
    prof = load_profile(name)
    start = prof.loop_start
    one_step = dataclasses.replace(
        prof,
        decode_steps=0,
        blocks=prof.blocks[:start]
        + tuple(
            dataclasses.replace(b, flops=b.decode_flops, decode_flops=0.0, per_token=True)
            for b in prof.blocks[start:]
        ),
    )
    full, single = CostModel(prof, edge, cloud), CostModel(one_step, edge, cloud)
    loop_s = full.compute_seconds(full.n_blocks)[0] - full.compute_seconds(start)[0]
    step_s = single.compute_seconds(single.n_blocks)[0] - single.compute_seconds(start)[0]
    assert loop_s == pytest.approx(prof.loop_passes * step_s, rel=1e-9)
    # The prefix does not depend on the step count.
    assert full.compute_seconds(start)[0] == pytest.approx(single.compute_seconds(start)[0])


def test_split_inside_flow_loop_round_trips_per_step() -> None:
    model = build_cost_model("pi0", edge="jetson-agx-orin", cloud="a100")
    prof = model.profile
    k = prof.loop_start + 1  # expert.in on the edge, expert layers in the cloud
    assert model.splits_decoder(k)
    plan = model.plan(k)
    assert plan.kinds == ("edge", "up", "cloud", "down") * 10
    ups = [s.nbytes for s in plan if s.kind == "up"]
    downs = [s.nbytes for s in plan if s.kind == "down"]
    suffix = 51 * 1024 * 2  # state token + 50 action tokens, bf16
    assert ups[1:] == [suffix] * 9
    assert ups[0] == suffix + prof.kv_cache_bytes  # the cloud's expert needs all prefix KV
    assert downs == [50 * 32 * 4] * 9 + [prof.output_bytes]  # velocities, then the chunk
    # Between prefix and expert: one round trip carrying the prefix KV cache.
    between = model.plan(prof.loop_start)
    assert between.kinds == ("edge", "up", "cloud", "down")
    assert between.up_bytes > prof.kv_cache_bytes


def test_profile_loop_validation() -> None:
    tail = BlockCost("t", 1.0, 1.0, 1.0, per_token=True)
    with pytest.raises(ValueError, match="loop"):
        ArchProfile("bad", (tail,), 1, 1, 0, "test", loop="none")
    with pytest.raises(ValueError, match="allowed"):
        ArchProfile("bad", (tail,), 1, 1, 0, "test", loop="beam")  # type: ignore[arg-type]


def test_old_cache_without_loop_field_loads() -> None:
    data = load_profile("openvla-7b").to_dict()
    del data["loop"]
    assert ArchProfile.from_dict(data).loop == "autoregressive"


@pytest.mark.parametrize("name", ALL_PROFILES)
def test_devices_rank_as_expected(name: str) -> None:
    def edge_only(edge: str) -> float:
        m = build_cost_model(name, edge=edge)
        return m.compute_seconds(m.n_blocks)[0]

    def cloud_only(cloud: str) -> float:
        return build_cost_model(name, cloud=cloud).compute_seconds(0)[1]

    assert edge_only("jetson-orin-nano") > edge_only("jetson-agx-orin") > cloud_only("a100")
    assert cloud_only("a100") > cloud_only("h100")


# -------------------------------------------------------------------------------- planner


def test_split_table_rows(model: CostModel) -> None:
    table = model.split_table(bandwidth_bps=20e6, rtt_s=0.04)
    assert len(table) == model.n_blocks + 1
    for k, row in enumerate(table):
        assert isinstance(row, SplitCost)
        assert row.split == k
        assert row.latency_s == pytest.approx(model.latency_s(k, 20e6, 0.04))
        assert row.edge_memory_bytes == model.edge_memory_bytes(k)
        assert row.fits == model.fits_edge(k)
        assert row.transfer_s >= 0
    assert table[0].edge_memory_bytes == 0.0 and table[0].edge_s == 0.0
    assert table[-1].n_transfers == 0 and table[-1].cloud_s == 0.0


def test_split_table_by_names() -> None:
    rows = split_table("smolvla", "jetson-orin-nano", "h100", bandwidth_bps=20e6, rtt_s=0.04)
    direct = build_cost_model("smolvla", "jetson-orin-nano", "h100").split_table(20e6, 0.04)
    assert rows == direct


def test_best_split_is_argmin_of_fitting_rows() -> None:
    for name in ALL_PROFILES:
        m = build_cost_model(name, edge="jetson-orin-nano", cloud="a100")
        for bw, rtt in [(1e5, 1.0), (20e6, 0.04), (1e9, 0.002)]:
            fitting = [r for r in m.split_table(bw, rtt) if r.fits]
            best = min(r.latency_s for r in fitting)
            k = m.best_split(bw, rtt)
            assert m.fits_edge(k)
            assert m.latency_s(k, bw, rtt) == pytest.approx(best)


def test_best_split_memory_budget() -> None:
    orin = build_cost_model("openvla-7b", edge="jetson-agx-orin")
    slow = {"bandwidth_bps": 1e5, "rtt_s": 1.0}
    assert orin.best_split(**slow) == orin.n_blocks  # 64 GB: edge-only wins on a slow link
    # The same device with an 8 GB budget must not hold the whole 7B model.
    budget = 8 * 2**30
    k = orin.best_split(**slow, memory_budget_bytes=budget)
    assert k < orin.n_blocks
    assert orin.edge_memory_bytes(k) <= budget
    assert orin.fits_edge(k, memory_budget_bytes=budget)
    assert not orin.fits_edge(orin.n_blocks, memory_budget_bytes=budget)
    # No memory at all: only cloud-only is left.
    assert orin.best_split(**slow, memory_budget_bytes=0.0) == 0
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        orin.best_split(**slow, memory_budget_bytes=-1.0)


def test_nano_never_holds_a_7b_model() -> None:
    for name in ("openvla-7b", "openvla-oft-7b"):
        nano = build_cost_model(name, edge="jetson-orin-nano")
        for bw, rtt in [(1e4, 2.0), (1e5, 1.0), (20e6, 0.04)]:
            assert nano.best_split(bw, rtt) < nano.n_blocks


def test_instant_cost_passes_the_budget() -> None:
    from rapid_env.cost.instant import InstantCost

    orin = build_cost_model("openvla-7b", edge="jetson-agx-orin")
    instant = InstantCost(orin)
    assert instant.best_split(1e5, 1.0) == orin.n_blocks
    assert instant.best_split(1e5, 1.0, 8 * 2**30) == orin.best_split(1e5, 1.0, 8 * 2**30)


# ----------------------------------------------------------------------------------- docs


def test_documented_table_matches_the_code() -> None:
    # docs/cost_model.md quotes `python benchmarks/cost_table.py`; regenerate it if this fails.
    assert markdown_table() in DOCS.read_text()


def test_cost_table_script_prints_the_table() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "cost_table.py"
    out = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == markdown_table()
