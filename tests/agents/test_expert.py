"""The scripted expert, emitting chunks by look-ahead, solves MT10 at zero latency."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.agents.expert import ScriptedExpert
from rapid_env.agents.fixed_split import FixedSplitDecider
from rapid_env.controller import PartitionedController
from rapid_env.episode import run_episode
from rapid_env.link import IdealLink
from rapid_env.noise import Clean
from rapid_env.tasks.metaworld_task import MetaWorldTask
from rapid_env.tasks.suite import MT10
from tests.conftest import FakeCost

SEEDS = range(500, 505)  # held out from anything tuned


def test_lookahead_restores_the_state(reach_task):
    reach_task.reset(seed=3)
    qpos = reach_task.data.qpos.copy()
    chunk = ScriptedExpert("reach-v3", 8).act(
        __import__("rapid_env.policy", fromlist=["PolicyInput"]).PolicyInput(
            None, reach_task.proprio_vector(), reach_task.instruction, reach_task
        )
    )
    assert chunk.shape == (8, 4) and np.all(np.abs(chunk) <= 1)
    np.testing.assert_array_equal(reach_task.data.qpos, qpos)


@pytest.mark.slow
def test_expert_zero_latency_mt10_success_at_least_90_percent():
    successes = 0
    for spec in MT10:
        task = MetaWorldTask(spec.name, image_size=16)
        ctrl = PartitionedController(
            task, ScriptedExpert(spec.env_key, 8), FakeCost(0.0), IdealLink(), Clean()
        )
        for seed in SEEDS:
            successes += run_episode(ctrl, FixedSplitDecider("edge"), seed)["success"]
        task.close()
    rate = successes / (len(MT10) * len(SEEDS))
    assert rate >= 0.9, rate
