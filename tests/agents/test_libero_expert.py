"""The scripted LIBERO expert: reads the BDDL goal, plans chunks by look-ahead, solves a task."""

from __future__ import annotations

from collections.abc import Iterator

import mujoco
import numpy as np
import pytest

from rapid_env.agents.libero_expert import (
    OPEN,
    LiberoExpert,
    LiberoScriptedController,
    collision_box,
    parse_goal,
)
from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.episode import run_episode
from rapid_env.policy import PolicyInput
from rapid_env.tasks.libero_suite import suite_ticks
from rapid_env.tasks.libero_task import LiberoTask


@pytest.fixture(scope="module")
def task() -> Iterator[LiberoTask]:
    t = LiberoTask("libero_object/0", image_size=16, settle_ticks=2)
    yield t
    t.close()


def _inp(task: LiberoTask) -> PolicyInput:
    return PolicyInput(None, task.proprio_vector(), task.instruction, task)


def test_goal_is_read_from_the_bddl(task: LiberoTask) -> None:
    task.reset(seed=0)
    goal = parse_goal(task.env)
    assert (goal.predicate, goal.subject, goal.target) == (
        "in", "alphabet_soup_1", "basket_1_contain_region")
    box, _ = collision_box(task.env, "alphabet_soup_1")
    assert np.all(box.hi > box.lo) and 0.05 < box.hi[2] - box.lo[2] < 0.1  # a soup can


def test_act_leaves_the_state_exactly_as_it_was(task: LiberoTask) -> None:
    task.reset(seed=1)
    for _ in range(3):  # off the settled state, gripper moving
        task.simulate_tick(np.array([0.3, -0.2, -0.5, 0, 0, 0.1, -1.0]))
    before = task.get_state()
    mujoco.mj_forward(task.model, task.data)  # derived poses for this state (act recomputes them)
    task.set_state(before)  # (mj_forward touches the solver's warm start)
    qpos, xpos, ncon = task.data.qpos.copy(), task.data.xpos.copy(), task.data.ncon
    expert = LiberoExpert(chunk_size=6)
    expert.reset(np.random.default_rng(0))
    chunk = expert.act(_inp(task))
    after = task.get_state()
    assert chunk.shape == (6, 7) and chunk.dtype == np.float32
    assert np.all(np.abs(chunk) <= 1.0) and np.all(np.isfinite(chunk))
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2] == before[2]
    np.testing.assert_array_equal(task.data.qpos, qpos)
    np.testing.assert_array_equal(task.data.xpos, xpos)  # derived poses too (cameras read them)
    assert task.data.ncon == ncon
    # The chunk is the controller run closed-loop: its first action is the one for this state,
    # and planning again from the restored state gives the same chunk.
    np.testing.assert_allclose(chunk[0], LiberoScriptedController().action(task.env), atol=1e-6)
    np.testing.assert_array_equal(expert.act(_inp(task)), chunk)


def test_bad_inputs_are_refused_with_the_allowed_values(task: LiberoTask) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        LiberoExpert(chunk_size=0)
    with pytest.raises(ValueError, match="sim"):
        LiberoExpert().act(PolicyInput(None, np.zeros(8), "x", None))
    with pytest.raises(ValueError, match="allowed: LiberoTask"):
        LiberoExpert().act(PolicyInput(None, np.zeros(8), "x", object()))  # type: ignore[arg-type]


def test_unknown_goal_predicate_is_refused(task: LiberoTask) -> None:
    task.reset(seed=0)
    saved = task.env.parsed_problem["goal_state"]
    task.env.parsed_problem["goal_state"] = [["stack", "alphabet_soup_1", "basket_1"]]
    try:
        with pytest.raises(ValueError, match="allowed"):
            LiberoScriptedController().action(task.env)
    finally:
        task.env.parsed_problem["goal_state"] = saved


def test_chunked_expert_puts_the_soup_in_the_basket(task: LiberoTask) -> None:
    """A full episode from initial state 0, executing the look-ahead chunks open-loop."""
    task.reset(seed=0)
    expert = LiberoExpert(chunk_size=8)
    for _ in range(200 // 8):
        for a in expert.act(_inp(task)):
            task.simulate_tick(a)
        if task.env._check_success():
            break
    assert task.env._check_success()


def test_knob_expert_turns_the_stove_on() -> None:
    """libero_goal/7 ("turn on the stove") from initial state 0, closed-loop."""
    stove = LiberoTask("libero_goal/7", image_size=16, settle_ticks=2)
    try:
        stove.reset(seed=0)
        ctrl = LiberoScriptedController()
        for _ in range(300):
            stove.simulate_tick(ctrl.action(stove.env))
            if stove.env._check_success():
                break
        assert stove.env._check_success()
    finally:
        stove.close()


def test_expert_holds_still_when_the_object_is_out_of_reach(task: LiberoTask) -> None:
    """An object knocked off the table is not chased: chasing it contorts the arm at its limits."""
    task.reset(seed=0)
    ctrl = LiberoScriptedController()
    assert np.any(ctrl.action(task.env)[:6] != 0) and ctrl.phase != "out-of-reach"
    m, d = task.model, task.data
    joint = m.joint(task.env.get_object("alphabet_soup_1").joints[0])
    adr = m.jnt_qposadr[joint.id]
    base = d.xpos[m.body("robot0_base").id]
    d.qpos[adr:adr + 3] = base + np.array([-0.4, 0.9, -0.5])  # behind the robot, on the floor
    mujoco.mj_forward(m, d)
    a = ctrl.action(task.env)
    assert ctrl.phase == "out-of-reach"
    np.testing.assert_array_equal(a, np.r_[np.zeros(6), OPEN])


def test_chunked_delayed_expert_places_the_bowl_through_rapid_eval_path() -> None:
    """libero_spatial/0 the way ``rapid-eval --agents cloud-only --links ideal`` runs it.

    The chunks arrive ~2 ticks late (72 ms on the ideal link) and run open-loop; the expert must
    still pick the bowl and put it on the plate within the suite's step limit.
    """
    name = "libero_spatial/0"
    cfg = EnvConfig(task=name, policy="expert", link="ideal", image_size=16,
                    max_episode_s=suite_ticks(name, 20) / 20)
    controller = build_controller(cfg)
    try:
        record = run_episode(controller, build_decider("cloud-only"), seed=1001)
    finally:
        controller.task.close()
    assert record["success"], record["steps"]
    assert record["latency_ms_mean"] > 50  # the chunks really were late
