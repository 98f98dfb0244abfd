"""Kinematic features computed from the proprioception window.

Shared by RAPID's trigger and by the RAPID env's observation vector, so a learned decider sees the
same signals the hand-written one uses.
"""

from __future__ import annotations

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
