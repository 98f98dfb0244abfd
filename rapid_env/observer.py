"""The episode observer seam: code that watches an episode without steering it.

:func:`~rapid_env.episode.run_episode` calls every observer at four points of the loop, and
nothing else: an observer reads the controller, the decider's decisions and each tick's outcome,
and may add fields to the episode's record at the end. The per-tick trace
(:class:`~rapid_env.trace.EpisodeTrace`, for videos and series) and the redundancy oracle
(:class:`~rapid_env.oracle.RedundancyOracle`, the shadow pass) are observers; so is anything a
user adds (a logger, a probe), without editing the loop.

An observer must not change what the episode does: the record's other fields are the same with or
without it (the oracle restores physics and the policy's random state after its shadow pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rapid_env.controller import PartitionedController, TickOutcome
    from rapid_env.decision import Decider, DeciderObservation, Decision


@runtime_checkable
class EpisodeObserver(Protocol):
    """Watches one episode at a time; :class:`ObserverBase` gives every method a no-op default."""

    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """A new episode: the controller is reset and the decider bound, no tick has run."""
        ...

    def on_decision(self, obs: DeciderObservation, decision: Decision) -> None:
        """``decision`` was taken on ``obs`` and is about to be applied (the tick has not run)."""
        ...

    def on_tick(self, obs: DeciderObservation, decision: Decision, outcome: TickOutcome) -> None:
        """The tick that ``decision`` (taken on ``obs``) started has run into ``outcome``."""
        ...

    def on_end(self, controller: PartitionedController) -> dict[str, Any]:
        """The episode is over: the fields this observer adds to its record (may be empty)."""
        ...


class ObserverBase:
    """No-op defaults for :class:`EpisodeObserver`; subclass it and override what you watch."""

    def on_reset(self, controller: PartitionedController, decider: Decider) -> None:
        """Nothing to prepare."""

    def on_decision(self, obs: DeciderObservation, decision: Decision) -> None:
        """Nothing to look at before the tick."""

    def on_tick(self, obs: DeciderObservation, decision: Decision, outcome: TickOutcome) -> None:
        """Nothing to look at after the tick."""

    def on_end(self, controller: PartitionedController) -> dict[str, Any]:
        """No record fields."""
        return {}
