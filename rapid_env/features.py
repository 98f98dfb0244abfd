"""Kinematic features computed from the proprioception window.

Shared by RAPID's trigger and by the RAPID env's observation vector, so a learned decider sees the
same signals the hand-written one uses.
"""

from __future__ import annotations

import math

import numpy as np

from rapid_env.decision import DeciderObservation
from rapid_env.proprio import ProprioWindow

EPS = 1e-6
FEATURE_NAMES = (
    "acc_now",
    "acc_z",
    "dtau_now",
    "dtau_z",
    "joint_speed",
    "chunk_fraction",
    "in_flight",
    "since_request_s",
    "last_latency_s",
    "log10_bandwidth",
    "rtt_s",
)


def acc_series(w: ProprioWindow) -> np.ndarray:
    """Joint-acceleration magnitude per sample (rad/s^2)."""
    return np.linalg.norm(w.qdd, axis=1)


def dtau_series(w: ProprioWindow) -> np.ndarray:
    """Joint-torque change magnitude per sample (N m per sample), first sample 0."""
    if len(w) < 2:
        return np.zeros(len(w))
    d = np.linalg.norm(np.diff(w.tau, axis=0), axis=1)
    return np.concatenate([[0.0], d])


def anomaly(series: np.ndarray, recent: int) -> tuple[float, float]:
    """Mean of the last ``recent`` samples, and its z-score against the samples before them.

    The z-score normalises by the sliding window's own mean and spread, so a signal is anomalous
    relative to what this robot was just doing, whatever the task's absolute scale.
    """
    if series.size == 0:
        return 0.0, 0.0
    recent = max(1, min(recent, series.size))
    now = float(series[-recent:].mean())
    past = series[:-recent]
    if past.size < 2:
        return now, 0.0
    z = (now - float(past.mean())) / (float(past.std()) + EPS + 0.05 * abs(float(past.mean())))
    return now, z


def feature_vector(obs: DeciderObservation) -> np.ndarray:
    """The RAPID env's observation: see :data:`FEATURE_NAMES`, float32."""
    w = obs.proprio
    acc_now, acc_z = anomaly(acc_series(w), obs.samples_per_tick)
    dtau_now, dtau_z = anomaly(dtau_series(w), obs.samples_per_tick)
    speed = float(np.linalg.norm(w.qd[-1])) if len(w) else 0.0
    v = np.array(
        [
            acc_now,
            acc_z,
            dtau_now,
            dtau_z,
            speed,
            obs.chunk_remaining / max(obs.chunk_size, 1),
            float(obs.in_flight),
            min(obs.since_request_s, 10.0),
            0.0 if np.isnan(obs.last_latency_s) else obs.last_latency_s,
            np.log10(max(obs.link_bandwidth_bps, 1.0)),
            obs.link_rtt_s,
        ],
        dtype=np.float64,
    )
    return np.nan_to_num(v, nan=0.0, posinf=1e6, neginf=-1e6).astype(np.float32)


# --------------------------------------------------------------------------- RAPID's trigger
# The functions below serve RAPID's trigger (agents/rapid.py). They are separate from the ones
# above because the learned decider's observation must stay bit-identical to what it was trained
# on, while the trigger needs a spread floor in physical units (see :func:`floored_zscore`).


def row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row; ``einsum`` is several times cheaper than ``linalg.norm`` here."""
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def floored_zscore(
    series: np.ndarray, recent: int, abs_floor: float, rel_floor: float, min_history: int
) -> float:
    """How far the mean of the last ``recent`` samples lies above the samples before them.

    ``(mean(recent) - mean(past)) / (std(past) + abs_floor + rel_floor * |mean(past)|)``.

    The window's own mean and spread normalise the signal (RAPID's "anomaly score"), so a task's
    absolute scale does not matter. The two floors keep the score finite and meaningful when the
    past is almost constant: ``abs_floor`` (in the signal's own units) stops sensor-level jitter of
    a robot standing still from looking like an anomaly, ``rel_floor`` stops a steady, large
    signal with a tiny spread from doing the same.

    Args:
        series: one scalar per sample, oldest first.
        recent: how many of the newest samples form "now".
        abs_floor: spread floor in the series' units (>= 0).
        rel_floor: spread floor as a fraction of the past mean's magnitude (>= 0).
        min_history: fewer past samples than this give 0.0 (not enough context to judge).

    Returns:
        The z-score (may be negative); 0.0 without enough history.
    """
    n = series.shape[0]
    m = n - recent
    if recent < 1 or m < max(min_history, 2):
        return 0.0
    past = series[:m]
    # one sum and one dot product instead of mean() and std(): this runs every control tick and
    # numpy's std costs several times more; the values are O(1..1e3), so cancellation is harmless
    mu = float(past.sum()) / m
    var = float(np.dot(past, past)) / m - mu * mu
    sd = math.sqrt(var) if var > 0.0 else 0.0
    now = float(series[m:].sum()) / recent
    return (now - mu) / (sd + abs_floor + rel_floor * abs(mu) + EPS)


def joint_speed(w: ProprioWindow, recent: int) -> float:
    """Mean joint-speed norm (rad/s over the 7 arm joints) of the last ``recent`` samples."""
    if len(w) == 0 or recent < 1:
        return 0.0
    return float(row_norms(w.qd[-recent:]).mean())


def dtau_norms(tau: np.ndarray) -> np.ndarray:
    """|delta tau| per sample (N m per sample) of a torque block, one sample shorter than it."""
    if tau.shape[0] < 2:
        return np.zeros(0)
    return row_norms(tau[1:] - tau[:-1])  # slicing: cheaper than np.diff on small blocks
