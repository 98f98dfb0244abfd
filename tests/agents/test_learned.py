"""The learned decider: the shipped folder, its loader's checks, the compact actions, training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rapid_env.agents.learned import SHIPPED_DECIDER, LearnedDecider, load_decider_net
from rapid_env.agents.registry import DECIDERS
from rapid_env.compose import make_rapid_env
from rapid_env.decision import DeciderObservation, Decision
from rapid_env.features import feature_vector
from rapid_env.tasks.proprio import ProprioWindow
from rapid_env.wrapper import COMPACT_ACTIONS, CompactActions, SafetyRefill, compact_decision

SPT = 20
N_SPLITS = 38


def observation(seed: int, remaining: int = 4, in_flight: int = 0) -> DeciderObservation:
    """A synthetic tick: random joint stream, a given buffer state, a 20 Mbit/s link estimate."""
    rng = np.random.default_rng(seed)
    n = 200
    t = np.arange(n) * 0.0025
    qd = rng.normal(0, 0.3, (n, 7))
    qdd = rng.normal(0, 2.0, (n, 7))
    tau = 5 + rng.normal(0, 0.1, (n, 7)).cumsum(axis=0)
    return DeciderObservation(
        tick=20, t=1.0, tick_dt=0.05, proprio=ProprioWindow(t, np.zeros((n, 7)), qd, qdd, tau),
        samples_per_tick=SPT, chunk_remaining=remaining, chunk_size=8, in_flight=in_flight,
        since_request_s=float(rng.uniform(0, 1)), last_latency_s=0.17,
        link_bandwidth_bps=2e7, link_rtt_s=0.04, n_splits=N_SPLITS,
    )


def valid(decision: Decision) -> bool:
    if decision.kind == "keep":
        return decision.split is None and not decision.preempt
    return decision.split is None or 0 <= decision.split < N_SPLITS


def test_shipped_decider_decides_validly_and_deterministically():
    a, b = LearnedDecider(), LearnedDecider()
    a.reset(np.random.default_rng(0))
    b.reset(np.random.default_rng(1))
    decisions = []
    for seed in range(40):
        o = observation(seed, remaining=seed % 9, in_flight=seed % 2)
        d = a.decide(o)
        assert valid(d)
        assert d == a.decide(o) == b.decide(o)
        decisions.append(d)
    # A trained policy that sees a refill-worthy and a comfortable buffer should not answer one
    # constant; if it did, the training collapsed.
    assert len({(d.kind, d.preempt, d.split) for d in decisions}) > 1


def test_starved_robot_always_gets_a_request():
    decider = LearnedDecider()
    assert decider.net.safety_refill
    for seed in range(10):
        assert decider.decide(observation(seed, remaining=0, in_flight=0)).kind == "infer"


def test_numpy_actor_matches_the_sb3_policy():
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO.load(SHIPPED_DECIDER / "policy.zip", device="cpu")
    net = load_decider_net(SHIPPED_DECIDER)
    for seed in range(10):
        f = feature_vector(observation(seed, remaining=seed % 9))
        x = np.clip((f - net.obs_mean) / np.sqrt(net.obs_var + net.obs_eps), -10, 10)
        with torch.no_grad():
            t = torch.as_tensor(x, dtype=torch.float32)[None]
            ref = model.policy.action_net(model.policy.mlp_extractor.forward_actor(t))[0].numpy()
        np.testing.assert_allclose(net.logits(f), ref, rtol=1e-4, atol=1e-4)
        action, _ = model.predict(x.astype(np.float32), deterministic=True)
        assert int(np.argmax(ref)) == int(action)


def test_registry_builds_shipped_and_folder_deciders():
    assert isinstance(DECIDERS.create("learned"), LearnedDecider)
    d = DECIDERS.create(f"sb3:{SHIPPED_DECIDER}")
    assert isinstance(d, LearnedDecider) and d.name.startswith("sb3:")


def test_loader_rejects_other_features_and_missing_files(tmp_path: Path):
    folder = tmp_path / "d"
    shutil.copytree(SHIPPED_DECIDER, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["feature_names"] = [*cfg["feature_names"][:-1], "rtt_ms"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="rtt_ms"):
        LearnedDecider(folder)
    with pytest.raises(ValueError, match=r"lacks config\.json"):
        LearnedDecider(tmp_path / "nowhere")


def test_compact_decision_mapping():
    assert compact_decision(0, N_SPLITS).kind == "keep"
    assert compact_decision(1, N_SPLITS) == Decision("infer")
    assert compact_decision(2, N_SPLITS) == Decision("infer", preempt=True)
    assert compact_decision(3, N_SPLITS).split == N_SPLITS - 1
    assert compact_decision(4, N_SPLITS).split == 0
    with pytest.raises(ValueError, match="compact action 5"):
        compact_decision(len(COMPACT_ACTIONS), N_SPLITS)


def test_compact_actions_safety_refill_feeds_the_robot():
    compact = CompactActions(make_rapid_env(task="reach", max_episode_s=1.0))
    env = SafetyRefill(compact)
    try:
        env.reset(seed=3)
        _, _, _, _, info = env.step(np.int64(0))  # keep with an empty buffer: forced request
        assert info["safety_refill"] and any(e.startswith("request") for e in info["events"])
        _, _, _, _, info = env.step(np.int64(0))  # now in flight: a keep stays a keep
        assert not info["safety_refill"] and info["in_flight"] == 1
        compact.reset(seed=3)  # the mapping alone, without the refill
        _, _, _, _, info = compact.step(np.int64(0))
        assert "safety_refill" not in info and info["in_flight"] == 0 and info["stalled"]
        _, _, _, _, info = compact.step(np.int64(4))  # infer-cloud: split 0
        assert "request:split=0" in info["events"]
    finally:
        env.close()


def test_safety_refill_needs_the_compact_action_space():
    with pytest.raises(ValueError, match="SafetyRefill wraps a Discrete"):
        SafetyRefill(make_rapid_env(task="reach", policy="expert", max_episode_s=1.0))


def test_tiny_training_run_writes_a_loadable_decider(tmp_path: Path):
    from rapid_env.cli.train_decider import main

    out = tmp_path / "decider"
    rc = main([
        "--tasks", "reach", "--timesteps", "128", "--n-steps", "64", "--batch-size", "64",
        "--n-epochs", "1", "--max-episode-s", "1", "--eval-episodes", "1", "--baselines", "",
        "--out", str(out), "--quiet", "--wandb", "disabled",
    ])
    assert rc == 0
    d = LearnedDecider(out)
    assert valid(d.decide(observation(0)))
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["timesteps"] >= 128
    assert [r["agent"] for r in card["evaluation"]["rows"]] == ["learned"]
    assert card["evaluation"]["seeds"] == "1000-1000"


def test_cli_rejects_evaluation_on_training_seeds():
    from rapid_env.cli.train_decider import main

    with pytest.raises(ValueError, match="--eval-seed 999"):
        main(["--eval-seed", "999"])
