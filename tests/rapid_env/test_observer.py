"""The episode-observer seam: watchers see every tick, add record fields, change nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rapid_env.compose import build_controller, build_decider
from rapid_env.config import EnvConfig
from rapid_env.decision import KEEP, Decider, DeciderBase, DeciderContext, Decision
from rapid_env.episode import WALL_CLOCK_FIELDS, run_episode
from rapid_env.observer import EpisodeObserver, ObserverBase
from rapid_env.oracle import RedundancyOracle
from rapid_env.record import RecordError, declare, observer_field
from rapid_env.trace import EpisodeTrace

CFG = EnvConfig(task="reach", policy="expert", link="wifi", image_size=32, max_episode_s=2.0)


@pytest.fixture(scope="module")
def controller() -> Any:
    c = build_controller(CFG)
    yield c
    c.task.close()


declare(observer_field("observed_ticks", "int", "ticks", "ticks the test observer saw"),
        observer_field("observer_saw", "str", "", "the decider the test observer saw"))


class Counter(ObserverBase):
    """Counts the calls, checks their order, and adds two (declared) fields."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_reset(self, controller, decider) -> None:
        self.calls = ["reset"]
        self.decider_name = decider.name

    def on_decision(self, obs, decision) -> None:
        self.calls.append("decision")

    def on_tick(self, obs, decision, outcome) -> None:
        assert self.calls[-1] == "decision"
        self.calls.append("tick")
        self.last_terminal = outcome.terminated or outcome.truncated

    def on_end(self, controller) -> dict[str, Any]:
        return {"observed_ticks": self.calls.count("tick"), "observer_saw": self.decider_name}


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in WALL_CLOCK_FIELDS}


def test_observers_see_every_tick_and_add_only_their_fields(controller) -> None:
    plain = run_episode(controller, build_decider("rapid"), 1000)
    counter = Counter()
    watched = run_episode(controller, build_decider("rapid"), 1000, observers=[counter])
    assert counter.calls[0] == "reset" and counter.last_terminal
    assert watched["observed_ticks"] == counter.calls.count("decision") > 0
    assert watched["observer_saw"] == "rapid"
    extra = {"observed_ticks", "observer_saw"}
    assert {k: v for k, v in _plain(watched).items() if k not in extra} == _plain(plain)


def test_an_undeclared_observer_field_is_refused(controller) -> None:
    class Sloppy(ObserverBase):
        def on_end(self, controller) -> dict[str, Any]:
            return {"not_declared_anywhere": 1}

    with pytest.raises(RecordError, match="not_declared_anywhere"):
        run_episode(controller, build_decider("rapid"), 1000, observers=[Sloppy()])
    with pytest.raises(RecordError, match="already declared"):
        declare(observer_field("success", "bool", "", "a harness field's name"))


def test_trace_and_oracle_are_observers_and_the_old_keywords_still_work(controller) -> None:
    assert isinstance(EpisodeTrace(), EpisodeObserver)
    assert isinstance(RedundancyOracle(), EpisodeObserver)
    by_kw_trace, by_kw_oracle = EpisodeTrace(), RedundancyOracle((0.1,))
    old = run_episode(controller, build_decider("rapid"), 1001, trace=by_kw_trace,
                      oracle=by_kw_oracle)
    trace, oracle = EpisodeTrace(), RedundancyOracle((0.1,))
    new = run_episode(controller, build_decider("rapid"), 1001, observers=[trace, oracle])
    assert _plain(old) == _plain(new)
    assert "redundant_share_0.1" in new
    assert trace.rows == by_kw_trace.rows and len(trace.rows) == new["oracle_ticks"]


def test_a_decider_base_gives_every_hook_a_default(controller) -> None:
    class Bound(DeciderBase):
        name = "bound"

        def bind(self, context: DeciderContext) -> None:
            self.context = context
            self.model_overhead_s = 0.5  # pretends to run a model pass of its own

        def decide(self, obs) -> Decision:
            return Decision("infer") if obs.chunk_remaining == 0 and not obs.in_flight else KEEP

    plain = DeciderBase()
    assert isinstance(plain, Decider)
    assert (plain.needs_image, plain.model_overhead_s) == (False, 0.0)
    plain.reset(np.random.default_rng(0))
    with pytest.raises(NotImplementedError):
        plain.decide(None)  # type: ignore[arg-type]
    d = Bound()
    record = run_episode(controller, d, 1000)
    assert d.context.policy is controller.policy  # bind ran with the episode's context
    assert record["decision_model_ms"] == pytest.approx(500.0)  # its own overhead is charged
