"""The episode record: every field declared once, and the one function that assembles a record.

A record is the plain dict one episode leaves behind (a line of ``episodes.jsonl``, what
:func:`rapid_env.episode.run_episode` returns). Several parts of the harness know part of it: the
recorder counts what happened, the episode loop times the decider, the redundancy oracle scores
the ticks, the sweep knows the job's identity, the media writer the files it wrote. Each part
hands its fields to :func:`assemble`, which checks them against :data:`FIELDS` (an undeclared
field, a field from the wrong part, a missing one or a value of the wrong type is a
:class:`RecordError`) and returns the record. So the schema cannot drift from what is written,
and ``docs/records.md`` is generated from it (``python -m rapid_env.record --markdown``).

Fields that depend on a tolerance (the oracle's) are declared once as a *family* whose name holds
``<tol>``: ``redundant_share_<tol>`` stands for ``redundant_share_0.05``, ``redundant_share_0.1``
... (``<tol>`` is ``format(tol, "g")``).

Wall-clock fields (:data:`WALL_CLOCK_FIELDS`) are measured on the host, so they differ between two
runs of the same seed and configuration; every determinism check (the golden records, resume,
backends) leaves exactly these out.

This module imports only the standard library: command-line tools and the summary read the
schema without loading MuJoCo, numpy or torch.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "EPISODE_ERROR", "FAULT_KINDS", "FAULT_KINDS_NOTE", "FIELDS", "INFRA_REMOTE_CODES",
    "INFRA_REMOTE_ERRORS", "JOB_FIELDS", "NONFINITE_FIRST", "PRESENCE", "REQUIRED_FIELDS",
    "SOURCES", "TOL", "WALL_CLOCK_FIELDS", "Field", "RecordError", "assemble", "declare",
    "infrastructure_fault", "invalid_reason", "is_episode_error", "is_nonfinite", "lookup",
    "markdown", "observer_field", "validate",
]

Source = Literal["job", "recorder", "loop", "oracle", "fleet", "media", "store", "observer"]
Presence = Literal[
    "always", "ran", "oracle", "oracle_refill", "fleet", "media", "stored", "observer"
]

TOL = "<tol>"
"""The placeholder of a family's name: a tolerance as ``format(tol, "g")``."""

_TOL_RE = r"(?P<tol>\d[0-9.e+-]*)"  # 0.05, 0.1, 1e-05: starts with a digit, so never "beyond_..."

SOURCES: dict[str, str] = {
    "job": "the sweep's job (eval/execute.py): which cell, seed and model setup the episode ran",
    "recorder": "the episode's recorder (rapid_env/recorder.py): what happened, counted as it "
    "happened",
    "loop": "the episode loop (rapid_env/episode.py): the decider's cost and the episode's wall "
    "time",
    "oracle": "the redundancy oracle (rapid_env/oracle.py, `rapid-eval --oracle`)",
    "fleet": "the fleet loop (rapid_env/fleet/, `rapid-fleet`): what the robot met in the cloud "
    "it shares",
    "media": "the media writer (eval/media.py, `rapid-eval --videos N`)",
    "store": "the results store (eval/store.py), as it appends the line to `episodes.jsonl`",
    "observer": "an episode observer of your own (rapid_env/observer.py), which declares its "
    "fields with `rapid_env.record.declare`",
}
"""Who sets each field, in record order."""

PRESENCE: dict[str, str] = {
    "always": "in every record, also one whose episode could not run (the job's fields: in "
    "every `rapid-eval` record, not in what `run_episode` returns)",
    "ran": "in every record whose episode ran (not in an `episode_error` record)",
    "oracle": "only with the oracle; a `<tol>` family once per tolerance",
    "oracle_refill": "only with the oracle and the refill rule (`rapid-eval --oracle` has it)",
    "fleet": "only in a fleet's records (`rapid-fleet`)",
    "media": "only for recorded episodes: `media`, or `media_error` when writing failed",
    "stored": "in every line of `episodes.jsonl` (a store written before it existed: none); "
    "never in a record in memory",
    "observer": "only when the observer that declared it watched the episode",
}
"""When a field is in a record."""


@dataclass(frozen=True)
class Field:
    """One record field (or, with ``<tol>`` in its name, one field per oracle tolerance).

    Attributes:
        name: the key in the record; ``<tol>`` marks a family.
        type: the JSON-side type (``int``, ``float | None`` ...); an ``int`` is accepted where
            ``float`` is declared, as Python's typing does.
        unit: the unit, ``""`` for a flag, a name or a plain count.
        doc: one line for users.
        source: who sets it (:data:`SOURCES`).
        presence: when it is there (:data:`PRESENCE`).
        wall_clock: measured on the host's clock: differs between identical runs.
    """

    name: str
    type: str
    unit: str
    doc: str
    source: Source
    presence: Presence = "ran"
    wall_clock: bool = False

    @property
    def family(self) -> bool:
        """Whether the name stands for one field per tolerance."""
        return TOL in self.name

    @property
    def pattern(self) -> re.Pattern[str]:
        """The regular expression of the keys this field covers."""
        return re.compile(re.escape(self.name).replace(re.escape(TOL), _TOL_RE))

    def key(self, tol: str) -> str:
        """The family's key for tolerance name ``tol`` (``"0.05"``)."""
        return self.name.replace(TOL, tol)


def _f(name: str, type_: str, unit: str, doc: str, source: Source,
       presence: Presence = "ran", wall_clock: bool = False) -> Field:
    return Field(name, type_, unit, doc, source, presence, wall_clock)


FIELDS: tuple[Field, ...] = (
    # ------------------------------------------------------------------ job identity
    _f("task", "str", "", "the Meta-World task", "job", "always"),
    _f("agent", "str", "", "the decider, as its spec was given (`rapid`, `rapid(k=2)`)", "job",
       "always"),
    _f("noise", "str", "", "the visual noise scene", "job", "always"),
    _f("link", "str", "", "the network link spec", "job", "always"),
    _f("seed", "int", "", "the episode's seed (episode i of every cell uses seed + i)", "job",
       "always"),
    _f("policy", "str", "", "the policy that drives the robot", "job", "always"),
    _f("profile", "str", "", "the cost profile the latencies are modelled from", "job", "always"),
    _f("edge", "str", "", "the edge device", "job", "always"),
    _f("cloud", "str", "", "the cloud device", "job", "always"),
    _f("device", "str", "",
       "the torch device the policy's model ran on (`cpu`, `cuda`, `cuda:1`, `mps`; "
       "`rapid-eval --device`)", "job", "always"),
    _f("dtype", "str", "",
       "the precision of the policy's weights and activations (`float32`, `bfloat16`, "
       "`float16`; `rapid-eval --dtype`)", "job", "always"),
    _f("episode_key", "str", "", "16 hex digits identifying the job: resume and dedupe read it",
       "job", "always"),
    # ------------------------------------------------------------------ outcome
    _f("success", "bool", "", "the task was solved (the episode ends there)", "recorder",
       "always"),
    _f("steps", "int", "ticks", "control ticks run", "recorder"),
    _f("sim_time_s", "float", "s", "simulated seconds run", "recorder"),
    _f("time_to_success_s", "float | None", "s",
       "simulated time of the first success; null when never solved", "recorder"),
    # ------------------------------------------------------------------ requests
    _f("inferences", "int", "", "requests sent (edge-only or offloaded)", "recorder"),
    _f("offloads", "int", "", "requests with at least one block in the cloud", "recorder"),
    _f("preemptions", "int", "", "requests that preempted one in flight", "recorder"),
    _f("refused_requests", "int", "", "requests the in-flight limit refused", "recorder"),
    _f("lost_requests", "int", "",
       "requests given up at their deadline because a transfer was lost", "recorder"),
    _f("stale_chunks", "int", "",
       "chunks that arrived with nothing left to execute (the robot had moved past them)",
       "recorder"),
    _f("superseded_chunks", "int", "",
       "chunks dropped on arrival because a newer (or preempting) request was made after theirs",
       "recorder"),
    _f("suffix_requests", "int", "",
       "requests that ran the model's tail on the edge after the cloud's front (placement "
       "`edge-suffix`, or `best` when it chose that)", "recorder"),
    # ------------------------------------------------------------------ latency
    _f("latency_ms_mean", "float | None", "ms",
       "mean modelled latency of the delivered chunks (edge + uplink + cloud + downlink)",
       "recorder"),
    _f("latency_ms_p95", "float | None", "ms", "95th percentile of the same", "recorder"),
    _f("latency_ms_std", "float | None", "ms",
       "population std of the same (pools exactly over episodes with `latency_n`)", "recorder"),
    _f("latency_n", "int", "", "delivered chunks behind the latency fields", "recorder"),
    _f("edge_ms_mean", "float | None", "ms", "mean edge compute per delivered chunk", "recorder"),
    _f("cloud_ms_mean", "float | None", "ms", "mean cloud compute per delivered chunk",
       "recorder"),
    _f("network_ms_mean", "float | None", "ms", "mean uplink + downlink time per delivered chunk",
       "recorder"),
    _f("uplink_ms_mean", "float | None", "ms", "mean uplink time per delivered chunk",
       "recorder"),
    _f("downlink_ms_mean", "float | None", "ms", "mean downlink time per delivered chunk",
       "recorder"),
    # ------------------------------------------------------------------ partition and bytes
    _f("split", "int | None", "blocks",
       "split point most requests used (0: all cloud, the profile's block count: all edge); "
       "null without requests", "recorder"),
    _f("edge_memory_gb", "float | None", "GB",
       "edge memory the largest edge part used needs; null without requests", "recorder"),
    _f("exec_bytes_up", "int", "B",
       "bytes the executable model really serialised at the matching depth", "recorder"),
    _f("bytes_up", "int", "B",
       "uplink bytes of the full-size profile's boundary (what the simulated link carried)",
       "recorder"),
    _f("bytes_down", "int", "B", "downlink bytes (the action chunks)", "recorder"),
    _f("retransmissions", "int", "", "link-layer retransmissions over all transfers",
       "recorder"),
    _f("lost_transfers", "int", "", "transfers that never arrived", "recorder"),
    _f("stall_steps", "int", "ticks", "ticks the robot held because the chunk had run out",
       "recorder"),
    # ------------------------------------------------------------------ smoothness
    _f("rms_jerk", "float | None", "m/s^3", "RMS end-effector jerk; null when undefined",
       "recorder"),
    _f("ldlj", "float | None", "", "log dimensionless jerk (higher is smoother)", "recorder"),
    _f("sparc", "float | None", "", "spectral arc length (higher is smoother)", "recorder"),
    # ------------------------------------------------------------------ faults
    _f("faults", "int", "", "faults in the episode (see the fault kinds below)", "recorder",
       "always"),
    _f("early_exits", "int", "", "requests answered by an early exit on the edge", "recorder"),
    _f("fault", "str | None", "",
       "the episode's first fault (`<kind>: <detail>`, kinds below); null when none",
       "recorder", "always"),
    _f("invalid", "str | None", "",
       "why the episode is invalid (an infrastructure fault, see the fault kinds below: "
       "left out of success rates and latencies, and run again by the same command); "
       "null when valid", "recorder", "always"),
    _f("clipped_actions", "int", "ticks", "ticks whose action left [-1, 1] and was clipped",
       "recorder"),
    # ------------------------------------------------------------------ measured remotely
    _f("measured_edge_ms_mean", "float | None", "ms",
       "edge part as measured over a real network (`--links remote:`); null otherwise",
       "recorder", wall_clock=True),
    _f("measured_rtt_ms_mean", "float | None", "ms",
       "the remote call as the client saw it; null on a simulated link", "recorder",
       wall_clock=True),
    _f("server_ms_mean", "float | None", "ms",
       "the server's own time per remote call; null on a simulated link", "recorder",
       wall_clock=True),
    _f("latency_timing", "str", "",
       "how the latencies were timed: `profile` (the cost profile's stages in virtual time, "
       "deterministic; also for a policy served over openpi by default, whose wall-clock round "
       "trip is only reported in `measured_rtt_ms_mean`) or `measured` (virtual time follows the "
       "wall clock: the edge part and the call of `--links remote:`, or the round trip of an "
       "openpi policy under `--policy-timing measured`, whose latencies are then its measured "
       "round trips)", "recorder"),
    # ------------------------------------------------------------------ the decider's cost
    _f("decision_cpu_us_mean", "float", "us", "measured CPU time per `decide` call", "loop",
       wall_clock=True),
    _f("decision_model_ms", "float", "ms",
       "modelled edge time of model passes the decider ran for its own signal", "loop"),
    _f("decision_overhead_pct", "float | None", "%",
       "decider CPU time + `decision_model_ms`, as a share of the episode's total modelled "
       "inference latency; null without deliveries", "loop", wall_clock=True),
    # ------------------------------------------------------------------ the oracle
    _f("oracle_ticks", "int", "ticks", "ticks the oracle scored", "oracle", "oracle"),
    _f("oracle_requests", "int", "", "ticks on which the decider asked for a plan", "oracle",
       "oracle"),
    _f("oracle_empty_ticks", "int", "ticks",
       "ticks with an empty buffer (non-redundant by the rule)", "oracle", "oracle"),
    _f("oracle_shadow_faults", "int", "", "shadow passes that faulted", "oracle", "oracle"),
    _f("oracle_diff_median", "float | None", "action units",
       "median distance of the shadow plan's first action from the buffered one", "oracle",
       "oracle"),
    _f("oracle_refill_due_ticks", "int", "ticks", "ticks on which the refill rule was due",
       "oracle", "oracle_refill"),
    _f("oracle_beyond_refill_requests", "int", "",
       "requests on ticks where the refill rule was not due", "oracle", "oracle_refill"),
    _f("redundant_share_<tol>", "float | None", "", "redundant ticks / ticks", "oracle",
       "oracle"),
    _f("trigger_precision_<tol>", "float | None", "", "requests on non-redundant ticks / requests",
       "oracle", "oracle"),
    _f("trigger_recall_<tol>", "float | None", "",
       "non-redundant ticks with a request / non-redundant ticks", "oracle", "oracle"),
    _f("oracle_nonredundant_<tol>", "int", "ticks",
       "non-redundant ticks (pooled by the summaries)", "oracle", "oracle"),
    _f("oracle_hits_<tol>", "int", "", "requests on non-redundant ticks (pooled)", "oracle",
       "oracle"),
    _f("trigger_precision_beyond_refill_<tol>", "float | None", "",
       "precision over the ticks where the refill rule was not due", "oracle", "oracle_refill"),
    _f("trigger_recall_beyond_refill_<tol>", "float | None", "",
       "recall over the ticks where the refill rule was not due", "oracle", "oracle_refill"),
    _f("oracle_beyond_refill_nonredundant_<tol>", "int", "ticks",
       "non-redundant ticks where the refill rule was not due (pooled)", "oracle",
       "oracle_refill"),
    _f("oracle_beyond_refill_hits_<tol>", "int", "",
       "requests on those ticks that were non-redundant (pooled)", "oracle", "oracle_refill"),
    # the oracle, conditioned on what a trigger can act on (rapid_env/oracle.py, second table)
    _f("oracle_cached_ticks", "int", "ticks",
       "ticks with a cached action (the rest are `oracle_empty_ticks`, stalls)", "oracle",
       "oracle"),
    _f("oracle_eligible_ticks", "int", "ticks",
       "ticks with a cached action and no request in flight (a request could change the plan)",
       "oracle", "oracle"),
    _f("oracle_eligible_requests", "int", "", "requests on eligible ticks", "oracle", "oracle"),
    _f("oracle_noise_floor", "float | None", "action units",
       "median over cached ticks of the distance between two fresh plans at the same tick under "
       "different sampling seeds (0 for a deterministic policy)", "oracle", "oracle"),
    _f("oracle_noise_spreads", "list[float]", "action units",
       "the per-tick values behind `oracle_noise_floor` (pooled exactly by the summaries)",
       "oracle", "oracle"),
    _f("oracle_drift_median", "float | None", "action units",
       "median distance of a fresh plan from the previous tick's fresh plan for this tick (a "
       "plan against itself one tick later)", "oracle", "oracle"),
    _f("oracle_drifts", "list[float]", "action units",
       "the per-tick values behind `oracle_drift_median` (pooled exactly)", "oracle", "oracle"),
    _f("oracle_event_window", "int", "ticks",
       "a divergence event is caught by a request within this many ticks of its start",
       "oracle", "oracle"),
    _f("oracle_redundant_cached_<tol>", "int", "ticks", "redundant ticks with a cached action",
       "oracle", "oracle"),
    _f("redundant_share_of_cached_<tol>", "float | None", "",
       "redundant ticks / ticks with a cached action (stalls left out)", "oracle", "oracle"),
    _f("oracle_eligible_nonredundant_<tol>", "int", "ticks", "non-redundant eligible ticks",
       "oracle", "oracle"),
    _f("oracle_eligible_hits_<tol>", "int", "", "requests on non-redundant eligible ticks",
       "oracle", "oracle"),
    _f("trigger_precision_eligible_<tol>", "float | None", "",
       "requests on non-redundant eligible ticks / requests on eligible ticks", "oracle",
       "oracle"),
    _f("trigger_chance_eligible_<tol>", "float | None", "",
       "non-redundant eligible ticks / eligible ticks: the precision of random requests there",
       "oracle", "oracle"),
    _f("oracle_events_<tol>", "int", "",
       "divergence events: maximal runs of consecutive non-redundant eligible ticks", "oracle",
       "oracle"),
    _f("oracle_events_caught_<tol>", "int", "",
       "events with a request within `oracle_event_window` ticks of their start", "oracle",
       "oracle"),
    _f("oracle_event_lead_ticks_<tol>", "int", "ticks",
       "sum over caught events of the ticks from the event's start to its first request",
       "oracle", "oracle"),
    _f("trigger_event_recall_<tol>", "float | None", "", "caught events / events", "oracle",
       "oracle"),
    _f("trigger_event_lead_ticks_<tol>", "float | None", "ticks",
       "mean ticks from a caught event's start to the first request", "oracle", "oracle"),
    _f("oracle_events_caught_own_<tol>", "int", "",
       "events caught by an own request (one on a tick where the refill rule was not due)",
       "oracle", "oracle_refill"),
    _f("oracle_own_requests", "int", "",
       "the decider's own requests: on ticks where the refill rule was not due", "oracle",
       "oracle_refill"),
    _f("oracle_own_after_stall", "int", "",
       "own requests fired 1 to `stall_window` (default 2) ticks after the last stalled tick",
       "oracle", "oracle_refill"),
    _f("oracle_own_preempt_fresh", "int", "",
       "own preempting requests 1 to `fresh_window` (default 2) ticks after a chunk arrived "
       "(they drop a fresh chunk)", "oracle", "oracle_refill"),
    # ------------------------------------------------------------------ wall time, media
    _f("wall_time_s", "float", "s", "host seconds the episode took", "loop", wall_clock=True),
    # ------------------------------------------------------------------ fleet
    _f("fleet_key", "str", "", "16 hex digits naming the fleet (its settings and seeds)",
       "fleet", "fleet"),
    _f("fleet_robots", "int", "", "robots in the fleet that shared the cloud", "fleet", "fleet"),
    _f("fleet_robot", "int", "", "this robot's index in its fleet (0 ..)", "fleet", "fleet"),
    _f("fleet_gpus", "int | None", "", "GPUs of the shared cloud (None: one per request)",
       "fleet", "fleet"),
    _f("fleet_max_batch", "int", "", "the cloud's largest batch (B)", "fleet", "fleet"),
    _f("fleet_max_wait_ms", "float", "ms", "how long a batch's head waits for it to fill (W)",
       "fleet", "fleet"),
    _f("fleet_cell", "str | None", "Mbit/s",
       "the shared wireless cell's capacity, up:down (None: every robot's link unshared)",
       "fleet", "fleet"),
    _f("queue_ms_mean", "float | None", "ms",
       "mean seconds a request waited for a GPU, over the robot's timed requests", "fleet",
       "fleet"),
    _f("queue_ms_p95", "float | None", "ms", "95th percentile of the same", "fleet", "fleet"),
    _f("batch_size_mean", "float | None", "",
       "mean size of the batches the robot's cloud stages ran in", "fleet", "fleet"),
    _f("airtime_share", "float | None", "",
       "mean share of the wireless cell the robot's transfers got (1.0: unshared)", "fleet",
       "fleet"),
    _f("media", "dict[str, str]", "",
       "the episode's `video`, `series` and `still`, relative to the sweep's folder", "media",
       "media"),
    _f("media_error", "str", "", "why the media could not be written", "media", "media"),
    # ------------------------------------------------------------------ the stored line
    _f("record_digest", "str", "", "SHA-256 (64 hex digits) of the line's canonical JSON without "
       "this field and the wall-clock fields: a line edited by hand is reported, not summarised",
       "store", "stored"),
)
"""Every record field, in record order."""

WALL_CLOCK_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.wall_clock)
"""Fields measured on the wall clock: the only ones that differ between identical runs (the
``measured_*`` and ``server_ms_mean`` ones are null except over a real network)."""

JOB_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.source == "job")
"""The job's identity, which opens every ``rapid-eval`` record."""

REQUIRED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in FIELDS if f.presence in ("always", "ran")
)
"""Fields of every ``rapid-eval`` record whose episode ran (the evaluation contract)."""

EPISODE_ERROR = "episode_error"
"""Prefix of the ``fault`` of a record whose episode could not run (a harness-side fault)."""

REMOTE_ERROR = "remote_error"
"""Prefix of the ``fault`` of a request to ``rapid-serve`` or an openpi server that failed
(``remote_error: <Error>: <CODE>: <message>``, :mod:`rapid_env.serve.transport`,
:class:`rapid_env.policy.RemotePolicyError`)."""

NONFINITE = "policy_nonfinite_action"
"""The ``fault`` of a chunk that held NaN or inf."""

NONFINITE_FIRST = "nonfinite_first_call"
"""The ``invalid`` reason of a policy whose very first chunk was non-finite (a broken
checkpoint: NaN weights), prefixed to the fault: ``nonfinite_first_call: <fault>``."""

INFRA_REMOTE_ERRORS: dict[str, str] = {
    "ServerUnavailable": "`UNAVAILABLE`: no server at the address (connection refused, the "
    "server stopped or died mid-sweep)",
    "Unauthenticated": "`UNAUTHENTICATED`: the server refused the harness's token",
    "DeadlineExceeded": "`DEADLINE_EXCEEDED`: the harness's wall-clock deadline ran out; on a "
    "real network that is the load of the machines and the path, not reproducible from the "
    "seed (a simulated link's losses stay data: they are drawn from it)",
    "TimeoutError": "the edge part on this host took the whole request deadline (the host's "
    "load)",
}
"""The errors of a ``remote_error`` fault that are the infrastructure's, not the policy's.

The other remote errors are data about the policy: ``RequestRejected`` with ``INTERNAL`` (the
cloud half's forward failed or gave non-finite actions) or ``INVALID_ARGUMENT`` (the edge half
sent a boundary the server rejects), and ``CorruptReply`` (the reply is not a valid chunk)."""

INFRA_REMOTE_CODES: tuple[str, ...] = (
    "UNAVAILABLE", "UNAUTHENTICATED", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED",
    "RESOURCE_EXHAUSTED", "UNIMPLEMENTED",
)
"""gRPC status codes of a ``remote_error`` that are the infrastructure's, whatever the error's
class: the call was cancelled or aborted, the server is at capacity or serves another API."""

FAULT_KINDS: dict[str, str] = {
    "policy_error": "the policy raised (also `sys.exit` in a user's model); the robot holds, "
    "the episode goes on. A policy fault",
    "policy_bad_shape": "the policy's chunk had the wrong shape; the robot holds. A policy fault",
    NONFINITE: "the policy's chunk held NaN or inf; the robot holds. A policy fault when "
    "the policy gave a finite chunk before in the episode; before any finite chunk (from its "
    "very first call) it is an infrastructure fault (`invalid` is `nonfinite_first_call: "
    "...`): a checkpoint whose weights are NaN, which says nothing about a decider",
    REMOTE_ERROR: "a request to `rapid-serve` failed (`--links remote:`), counted once per "
    "request when it is sent; the request is lost; or a call to an openpi server failed "
    "(`--policy openpi:`), counted when its modelled arrival comes, as a policy error is "
    "(under `--policy-timing measured`, once when sent, the request lost, as for `remote:`). An "
    "infrastructure fault when the server is "
    "unreachable or gone, refused the token or ran past the harness's deadline (errors "
    f"{', '.join(f'`{e}`' for e in INFRA_REMOTE_ERRORS)}, or status "
    f"{', '.join(f'`{c}`' for c in INFRA_REMOTE_CODES)}); a policy fault when the served model "
    "failed (`INTERNAL`, `INVALID_ARGUMENT`, `CorruptReply`), except non-finite actions before "
    "any finite chunk, as for `policy_nonfinite_action`",
    "sim_diverged": "the simulator diverged (a non-finite state); the episode ends. A policy "
    "fault (the actions drove it there)",
    EPISODE_ERROR: "the episode could not run at all (a checkpoint that cannot be read, a "
    "simulator that cannot start, a worker process that died): the record then has only the "
    "job's identity, `success` false, `faults` 1, this `fault` and the same `invalid`. An "
    "infrastructure fault",
}
"""What ``fault`` starts with (:data:`FAULT_KINDS_NOTE` says which are data)."""

FAULT_KINDS_NOTE = (
    "Two kinds of fault are kept apart, so a failure of the infrastructure never passes as a "
    "result. A **policy fault** is data about the policy: the episode ran and is valid, it is "
    "counted like any other, its first fault is kept in `fault` and all of them in `faults`. "
    "An **infrastructure fault** (the harness, the server or the checkpoint failed, not the "
    "decider) makes the episode **invalid**: `invalid` holds the reason (the first such fault). "
    "An invalid episode is left out of success rates, latencies and paired comparisons "
    "(summaries count it in `invalid`, beside `valid` and `episodes` = all), `rapid-eval` exits "
    "3, and rerunning the same command runs it again: a valid record for the same key then "
    "replaces it. Records written before `invalid` existed are read as valid unless their "
    "`fault` is an `episode_error`."
)


def infrastructure_fault(fault: str) -> bool:
    """Whether a ``remote_error`` or ``episode_error`` fault is the infrastructure's.

    An ``episode_error`` always is; a ``remote_error`` is when its error is one of
    :data:`INFRA_REMOTE_ERRORS` or its gRPC status one of :data:`INFRA_REMOTE_CODES` (the
    transport writes ``remote_error: <Error>: <CODE>: <message>``). Every other fault is the
    policy's (a non-finite first chunk is decided by the controller, which knows it was first).
    """
    kind, _, rest = fault.partition(": ")
    if kind == EPISODE_ERROR:
        return True
    if kind != REMOTE_ERROR:
        return False
    error, _, message = rest.partition(": ")
    code = message.partition(":")[0].strip()
    return error in INFRA_REMOTE_ERRORS or code in INFRA_REMOTE_CODES


def is_nonfinite(fault: str) -> bool:
    """Whether a fault is a non-finite chunk: the local policy's, or the served model's."""
    return fault.startswith(NONFINITE) or (
        fault.startswith(REMOTE_ERROR) and "non-finite actions" in fault
    )


def invalid_reason(record: Mapping[str, Any]) -> str | None:
    """Why the record's episode is invalid; None when it is valid.

    Its ``invalid`` field; for a record written before that field existed, its ``fault`` when it
    is an ``episode_error`` (the only infrastructure fault such records could tell apart).
    """
    reason = record.get("invalid")
    if isinstance(reason, str) and reason:
        return reason
    if "invalid" not in record and is_episode_error(record):
        return str(record["fault"])
    return None


class RecordError(ValueError):
    """A record that does not match the schema (a bug in whoever wrote the field)."""


_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS if not f.family}
_FAMILIES: tuple[Field, ...] = tuple(f for f in FIELDS if f.family)
_PATTERNS: tuple[tuple[Field, re.Pattern[str]], ...] = tuple((f, f.pattern) for f in _FAMILIES)


def declare(*fields: Field) -> None:
    """Declare the fields an observer of your own adds to a record (source ``observer``).

    The harness's fields are :data:`FIELDS`; an :class:`~rapid_env.observer.EpisodeObserver`
    written outside this package adds its own through its ``on_end`` and declares them here once,
    at import, so a record still holds declared fields only. Declaring the same field again is a
    no-op; a name the schema already uses for something else is refused.

    Raises:
        RecordError: a field whose source or presence is not ``observer``, or whose name is taken.
    """
    for field in fields:
        if field.source != "observer" or field.presence != "observer" or field.family:
            raise RecordError(f"declare {field.name!r} with source and presence 'observer' "
                              "(and no <tol> family)")
        known = _BY_NAME.get(field.name) or (lookup(field.name) or (None,))[0]
        if known is not None and known != field:
            raise RecordError(f"record field {field.name!r} is already declared")
        _BY_NAME[field.name] = field


def observer_field(name: str, type_: str, unit: str, doc: str) -> Field:
    """A :class:`Field` for :func:`declare`: set by an observer, present when it watched."""
    return Field(name, type_, unit, doc, "observer", "observer")


def lookup(key: str) -> tuple[Field, str | None] | None:
    """The field declaring ``key`` and, for a family, the tolerance's name; None if undeclared."""
    plain = _BY_NAME.get(key)
    if plain is not None:
        return plain, None
    for field, pattern in _PATTERNS:
        match = pattern.fullmatch(key)
        if match is not None:
            return field, match.group("tol")
    return None


def is_episode_error(record: Mapping[str, Any]) -> bool:
    """Whether the record's episode could not run at all (``rapid-eval`` exit code 3)."""
    fault = record.get("fault")
    return isinstance(fault, str) and fault.startswith(EPISODE_ERROR)


def assemble(
    *,
    job: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    loop: Mapping[str, Any] | None = None,
    oracle: Mapping[str, Any] | None = None,
    observers: Mapping[str, Any] | None = None,
    wall_time_s: float | None = None,
    episode: Mapping[str, Any] | None = None,
    error: str | None = None,
    media: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record from its parts, checked against :data:`FIELDS`, in record order.

    The episode loop assembles an episode's record from the recorder's ``metrics``, its own
    ``loop`` fields, the ``oracle``'s and ``wall_time_s``; the sweep then assembles that
    ``episode`` record with the ``job``'s identity and the ``media`` fields. A job whose episode
    could not run gets ``error`` (the exception, as text) instead of an episode.

    Args:
        job: the job's identity (``task`` ... ``episode_key``).
        metrics: the recorder's fields.
        loop: the episode loop's fields (the decider's cost), without ``wall_time_s``.
        oracle: the redundancy oracle's fields.
        observers: the fields the episode's observers add: the oracle's, and those of observers
            of your own (each declared with :func:`declare`).
        wall_time_s: the episode's host seconds (set last: it times the whole episode).
        episode: a whole episode record (what :func:`rapid_env.episode.run_episode` returns);
            instead of ``metrics``, ``loop``, ``oracle`` and ``wall_time_s``.
        error: why the episode could not run: the record's ``fault`` and ``invalid`` are
            ``"episode_error: <error>"``. Instead of an episode.
        media: ``{"media": ...}`` or ``{"media_error": ...}``.

    Raises:
        RecordError: a field that is not declared, that the part may not set or that two parts
            set, a missing field, or a value of the wrong type.
    """
    parts: list[tuple[str, Mapping[str, Any] | None, tuple[str, ...]]] = [("job", job, ("job",))]
    if error is not None:
        if any(p is not None for p in (metrics, loop, oracle, observers, wall_time_s, episode)):
            raise RecordError("a record has an episode or an error, not both")
        fault = f"{EPISODE_ERROR}: {error}"
        parts.append(("error", {"success": False, "faults": 1, "fault": fault,
                                "invalid": fault}, ("recorder",)))
    else:
        parts += [
            ("episode", episode, ("recorder", "loop", "oracle", "fleet", "observer")),
            ("metrics", metrics, ("recorder",)),
            ("loop", loop, ("loop",)),
            ("oracle", oracle, ("oracle",)),
            # the oracle is an observer, and so is the fleet loop's account of the cloud
            ("observer", observers, ("oracle", "fleet", "observer")),
            ("wall_time_s", None if wall_time_s is None else {"wall_time_s": wall_time_s},
             ("loop",)),
        ]
    parts.append(("media", media, ("media",)))
    record: dict[str, Any] = {}
    for part, values, sources in parts:
        for key, value in (values or {}).items():
            found = lookup(key)
            if found is None:
                raise RecordError(
                    f"{part}: undeclared record field {key!r}; declare it in rapid_env/record.py"
                )
            if found[0].source not in sources:
                raise RecordError(
                    f"{part}: field {key!r} is set by the {found[0].source}, not by the {part}"
                )
            if key in record:
                raise RecordError(f"{part}: field {key!r} is already set")
            record[key] = value
    validate(record)
    return record


def validate(record: Mapping[str, Any]) -> None:
    """Check ``record`` against the schema: declared keys, complete parts, declared types.

    What must be there follows from what is: a job's field brings every job field; a field of an
    episode that ran brings every ``ran`` field; an oracle field brings every ``oracle`` field,
    each ``<tol>`` family once for every tolerance any family names (the refill families with
    ``oracle_refill_due_ticks``); ``media`` and ``media_error`` exclude each other.

    Raises:
        RecordError: naming the first field that is wrong.
    """
    present: dict[Field, set[str | None]] = {}
    for key, value in record.items():
        found = lookup(key)
        if found is None:
            raise RecordError(f"undeclared record field {key!r}; declare it in rapid_env/record.py")
        field, tol = found
        if not _type_ok(field.type, value):
            raise RecordError(f"field {key!r} must be {field.type}, got {value!r}")
        present.setdefault(field, set()).add(tol)
    sources = {f.source for f in present}
    presences = {f.presence for f in present}
    need: set[Field] = {f for f in FIELDS if f.presence == "always" and f.source != "job"}
    if "job" in sources:
        need |= {f for f in FIELDS if f.source == "job"}
    if "ran" in presences:
        need |= {f for f in FIELDS if f.presence == "ran"}
    if "oracle_refill" in presences:
        presences.add("oracle")
    tols = {t for f, ts in present.items() if f.family for t in ts if t is not None}
    for group in ("oracle", "oracle_refill", "fleet"):
        if group in presences:
            need |= {f for f in FIELDS if f.presence == group}
    missing: list[str] = []
    for f in FIELDS:
        if f in need and f.family:
            missing += [f.key(t) for t in sorted(tols) if t not in present.get(f, set())]
        elif f in need and f not in present:
            missing.append(f.name)
    if missing:
        raise RecordError(f"record lacks {missing}")
    if "media" in record and "media_error" in record:
        raise RecordError("a record has media or media_error, not both")


_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "int": (int,), "float": (float, int), "str": (str,), "None": (type(None),),
    "dict[str, str]": (dict,), "list[float]": (list,),
}


def _type_ok(declared: str, value: object) -> bool:
    """Whether ``value`` is of the declared type (bool is no int here: it is a flag)."""
    for name in declared.split(" | "):
        if isinstance(value, bool) and name != "bool":
            continue
        if isinstance(value, _TYPES[name]):
            return True
    return False


def markdown() -> str:
    """``docs/records.md``: every field, when it is there, and the fault kinds."""
    from rapid_env.record_metrics import DERIVED

    out = [
        "# Episode records",
        "",
        "<!-- generated by `python -m rapid_env.record --markdown > docs/records.md`; edit "
        "rapid_env/record.py, not this file -->",
        "",
        "One record per episode: a line of `OUT/episodes.jsonl`, what "
        "`rapid_env.episode.run_episode` returns. Every field is declared once in "
        "`rapid_env/record.py`, and every record is checked against it when it is assembled.",
        "",
        "**Wall-clock** fields are measured on the host: they differ between two runs of the "
        "same seed and configuration, and every other field repeats bit for bit. Fields whose name "
        "holds `<tol>` come once per oracle tolerance, `<tol>` written as `format(tol, \"g\")` "
        "(`redundant_share_0.05`). Null (`None`) marks a value that is undefined for the episode.",
        "",
        "When a field is there:",
        "",
        *[f"- `{name}`: {text}" for name, text in PRESENCE.items()],
        "",
    ]
    for source, text in SOURCES.items():
        out += [f"## Set by {text}", "",
                "| field | type | unit | wall-clock | when | meaning |",
                "| --- | --- | --- | --- | --- | --- |"]
        for f in FIELDS:
            if f.source == source:
                out.append(f"| `{f.name}` | {f.type.replace(' | ', ' or ')} | {f.unit or '–'} | "
                           f"{'yes' if f.wall_clock else ''} | {f.presence} | {f.doc} |")
        out.append("")
    out += ["## Fault kinds", "", "`fault` starts with one of these:", "",
            "| kind | meaning |", "| --- | --- |",
            *[f"| `{kind}` | {text} |" for kind, text in FAULT_KINDS.items()], "",
            FAULT_KINDS_NOTE, "",
            "A `remote_error` is the infrastructure's when its error is one of these (or its "
            "gRPC status one of "
            f"{', '.join(f'`{c}`' for c in INFRA_REMOTE_CODES)}):", "",
            "| error | why it is not the policy's |", "| --- | --- |",
            *[f"| `{name}` | {text} |" for name, text in INFRA_REMOTE_ERRORS.items()], "",
            "## Derived metrics", "",
            "Computed from records (never stored in them), the same way everywhere "
            "(`rapid_env/record_metrics.py`):", "",
            "| metric | unit | definition |", "| --- | --- | --- |",
            *[f"| {d.name} | {d.unit} | {d.doc} |" for d in DERIVED], ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rapid_env.record --markdown``: print docs/records.md."""
    p = argparse.ArgumentParser(description="The episode record's schema.")
    p.add_argument("--markdown", action="store_true", help="print docs/records.md")
    args = p.parse_args(argv)
    if not args.markdown:
        p.error("nothing to do: pass --markdown")
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
