"""The Task protocol: the loop runs a task it knows only through rapid_env.task, without MuJoCo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from rapid_env.controller import ControlConfig, PartitionedController
from rapid_env.decision import KEEP, DeciderBase, Decision
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode
from rapid_env.link import IdealLink, parse_link
from rapid_env.noise import Clean, parse_noise
from rapid_env.oracle import RedundancyOracle
from rapid_env.policy import PolicyInput
from rapid_env.task import SceneAccess, Task
from tests.conftest import FakeCost
from tests.rapid_env.fakes import GoToGoal, PointMass

if TYPE_CHECKING:
    from rapid_env.tasks.metaworld_task import MetaWorldTask

ROOT = Path(__file__).resolve().parents[2]

EPISODE_SCRIPT = """
import json, sys
from rapid_env.agents.rapid import RapidDecider
from rapid_env.controller import PartitionedController
from rapid_env.cost import build_cost_model
from rapid_env.episode import run_episode
from rapid_env.link import parse_link
from rapid_env.noise import parse_noise
from tests.rapid_env.fakes import GoToGoal, PointMass

task = PointMass(max_episode_s=6.0)
cost = build_cost_model(profile="openvla-7b", edge="jetson-agx-orin", cloud="a100")
c = PartitionedController(
    task, GoToGoal(), cost, parse_link("constant:20:40"), parse_noise("clean")
)
record = run_episode(c, RapidDecider(), seed=3)
heavy = sorted(m for m in ("mujoco", "metaworld") if m in sys.modules)
print(json.dumps({"record": record, "heavy": heavy}))
"""


class Always(DeciderBase):
    """A decider that asks for a fresh chunk at every tick (the oracle's requests are all ticks)."""

    name = "always"
    needs_image = False

    def reset(self, rng: np.random.Generator) -> None:
        """Nothing to draw."""

    def decide(self, obs: object) -> Decision:
        """Infer."""
        return Decision("infer")


class LookingGoToGoal(GoToGoal):
    """GoToGoal that also reads the camera, so the episode renders (with noise) at every request."""

    needs_image = True

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def act(self, inp: PolicyInput) -> np.ndarray:
        assert inp.image is not None
        self.shapes.append(inp.image.shape)
        return super().act(inp)


def controller(task: PointMass, policy=None, noise: str = "clean") -> PartitionedController:
    return PartitionedController(
        task, policy or GoToGoal(), FakeCost(0.06), parse_link("constant:20:40"),
        parse_noise(noise),
    )


def test_point_mass_and_its_scene_satisfy_the_protocol() -> None:
    task = PointMass()
    assert isinstance(task, Task)
    assert isinstance(task.scene, SceneAccess)


def test_an_object_missing_a_member_is_not_a_task() -> None:
    assert not isinstance(object(), Task)
    task = PointMass()
    del task.scene_hook  # an instance attribute: without it the protocol is not met
    assert not isinstance(task, Task)


def as_task(task: Task) -> Task:
    """Identity, typed: a call with a suite's task is mypy's structural check of that suite."""
    return task


def test_metaworld_task_satisfies_the_protocol(reach_task: MetaWorldTask) -> None:
    from rapid_env.tasks.metaworld_task import MW_STEP_HZ

    task = reach_task
    assert as_task(task) is task and as_task(PointMass()) is not None
    assert isinstance(task, Task) and isinstance(task.scene, SceneAccess)
    task.reset(seed=5)
    assert task.samples_per_tick == task.n_mw * task.frame_skip
    assert (task.ee_trace_hz, task.ee_samples_per_tick) == (MW_STEP_HZ, task.n_mw)
    assert task.action_space.shape == (4,) and task.proprio_space.shape == (4,)
    assert task.proprio_vector().shape == task.proprio_space.shape
    task.advance(np.array([0.3, 0.0, 0.0, 0.0]))
    assert len(task.ee_trace) == 1 + task.ee_samples_per_tick
    assert len(task.proprio) == 1 + task.samples_per_tick  # the reset's sample and the tick's
    points = task.scene.keep_out_points()
    assert points.ndim == 2 and points.shape[1] == 3 and len(points) >= 3
    assert np.array_equal(points[-1], task.end_effector_pos())
    assert task.scene.camera_position().shape == (3,)
    assert 0 in {int(task.model.geom_bodyid[i]) for i in task.scene.background_geoms()}


def test_metaworld_state_round_trip_replays_a_tick_exactly(reach_task: MetaWorldTask) -> None:
    task = reach_task
    task.reset(seed=2)
    action = np.array([0.5, -0.2, 0.1, 1.0])
    saved = task.get_state()
    task.advance(action)
    first = task.end_effector_pos()
    task.set_state(saved)
    task.tick -= 1
    task.advance(action)
    assert np.array_equal(task.end_effector_pos(), first)
    with pytest.raises(ValueError, match="get_state"):
        task.set_state(np.zeros(3))


def test_whole_episode_without_mujoco_in_a_fresh_interpreter() -> None:
    """The loop, RAPID's decider, a cost model and a link run the point mass: no MuJoCo loads."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", EPISODE_SCRIPT], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    rec = result["record"]
    assert rec["success"] is True and 0 < rec["time_to_success_s"] <= rec["sim_time_s"]
    assert rec["steps"] == round(rec["sim_time_s"] * 20)
    assert rec["inferences"] >= 1 and rec["latency_n"] >= 1
    assert rec["bytes_up"] > 0  # the request really crossed the simulated link
    assert rec["rms_jerk"] is not None and rec["rms_jerk"] > 0
    assert rec["fault"] is None


def test_episode_is_deterministic_and_renders_only_for_readers() -> None:
    records = []
    for _ in range(2):
        task, policy = PointMass(), LookingGoToGoal()
        records.append(run_episode(controller(task, policy, "gaussian_noise:2"), Always(), seed=4))
        assert policy.shapes and set(policy.shapes) == {(16, 16, 3)}
        assert task.renders == policy.calls  # one frame per request, none otherwise
    a, b = ({k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in records)
    assert a == b and a["success"]


def test_oracle_shadow_pass_leaves_the_point_mass_episode_unchanged() -> None:
    plain = run_episode(controller(PointMass()), Always(), seed=6)
    task = PointMass()
    oracle = RedundancyOracle()
    shadowed = run_episode(controller(task), Always(), seed=6, oracle=oracle)
    for key, value in plain.items():
        if key not in WALL_CLOCK_FIELDS:
            assert shadowed[key] == value, key
    assert shadowed["oracle_ticks"] == plain["steps"] and shadowed["oracle_shadow_faults"] == 0


def test_hold_stops_the_point() -> None:
    task = PointMass()
    c = PartitionedController(
        task, GoToGoal(), FakeCost(10.0), IdealLink(), Clean(), ControlConfig()
    )
    rng = np.random.default_rng
    c.reset(1, rng(1), rng(2), rng(3))
    c.step(Decision("infer"))  # the chunk arrives long after the test
    start = task.end_effector_pos()
    for _ in range(5):
        assert c.step(KEEP).info["stalled"]
    assert np.allclose(task.end_effector_pos(), start)
    assert c.episode_metrics()["stall_steps"] == 6
