"""The learned partition decider: a PPO policy over the RAPID env's features, run in numpy.

``rapid-train-decider`` (:mod:`rapid_env.agents.train_decider`) trains a stable-baselines3 PPO
policy on :class:`rapid_env.wrapper.CompactActions` and writes a decider folder:

* ``config.json`` — the action names (:data:`rapid_env.wrapper.COMPACT_ACTIONS`), the feature
  names (:data:`rapid_env.features.FEATURE_NAMES`), the network shape, the safety-refill switch,
  and how it was trained (reward weights, tasks, seeds, steps, env config);
* ``policy.safetensors`` — the actor MLP's weights and the observation normaliser's statistics;
* ``policy.zip`` — the full SB3 save, for resuming training or inspection with ``PPO.load``.

Deciding loads only the first two: no unpickling, no torch, no SB3. An 11 -> 64 -> 64 -> 5 tanh MLP
in numpy costs a few microseconds, far below ``model.predict``'s per-call overhead, and the decider
runs on every control tick. It acts greedily (argmax of the logits), so it is deterministic given
the observation.

Example:
    >>> from rapid_env.agents.learned import LearnedDecider
    >>> decider = LearnedDecider()  # the shipped one; LearnedDecider("runs/my-decider") otherwise
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import rapid_env
from rapid_env.decision import DeciderBase, DeciderObservation, Decision
from rapid_env.features import FEATURE_NAMES, feature_vector
from rapid_env.jsonfile import read_json_object
from rapid_env.wrapper import COMPACT_ACTIONS, compact_decision, starved

FORMAT = "rapid-env-learned-decider/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "policy.safetensors"
SB3_FILE = "policy.zip"
# Package data of ``rapid_env``, wherever the package is installed.
SHIPPED_DECIDER = Path(rapid_env.__file__).resolve().parent / "data" / "deciders" / "learned"
ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True)
class DeciderNet:
    """A loaded decider folder: the actor MLP as numpy arrays, and its config.

    Attributes:
        weights: ``(W, b)`` per layer, hidden layers first, the action logits last; ``W`` is
            ``(out, in)`` as torch stores it.
        obs_mean: the observation normaliser's running mean (SB3 ``VecNormalize``).
        obs_var: its running variance.
        obs_scale: ``1 / sqrt(obs_var + obs_eps)``, precomputed: decide() runs every tick.
        obs_clip: normalised observations are clipped to ``[-obs_clip, obs_clip]``.
        obs_eps: added to the variance before the square root.
        activation: ``tanh`` or ``relu`` between hidden layers.
        safety_refill: whether a ``keep`` while starved becomes an ``infer`` (as in training).
        config: the whole ``config.json``.
    """

    weights: tuple[tuple[np.ndarray, np.ndarray], ...]
    obs_mean: np.ndarray
    obs_var: np.ndarray
    obs_scale: np.ndarray
    obs_clip: float
    obs_eps: float
    activation: str
    safety_refill: bool
    config: dict[str, Any]

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Action logits for one feature vector (the SB3 actor's forward pass)."""
        x = np.clip((features - self.obs_mean) * self.obs_scale, -self.obs_clip, self.obs_clip)
        *hidden, (w_out, b_out) = self.weights
        for w, b in hidden:
            x = w @ x + b
            x = np.tanh(x) if self.activation == "tanh" else np.maximum(x, 0.0)
        return np.asarray(w_out @ x + b_out)


def load_decider_net(path: str | Path, label: str | None = None) -> DeciderNet:
    """Load and check a decider folder written by ``rapid-train-decider``.

    Args:
        path: the folder.
        label: how messages name the folder (the ``sb3:<dir>`` spec); default the path.

    Raises:
        ValueError: missing files, an unknown format, feature or action names that differ from
            this version of rapid-env's, or weights whose shapes do not chain.
    """
    folder = Path(path)
    return _load(str(folder.resolve()), _mtime(folder), label or str(path))


def _mtime(folder: Path) -> float:
    try:
        return max((folder / f).stat().st_mtime for f in (CONFIG_FILE, WEIGHTS_FILE))
    except OSError:
        raise ValueError(
            f"decider folder {str(folder)!r} lacks {CONFIG_FILE} or {WEIGHTS_FILE}; "
            "write one with rapid-train-decider --out"
        ) from None


@lru_cache(maxsize=8)
def _load(folder_str: str, mtime: float, label: str) -> DeciderNet:
    """Cached by path and modification time: the runner builds a decider per episode."""
    from safetensors.numpy import load_file

    folder = Path(folder_str)
    config = read_json_object(folder / CONFIG_FILE, f"{label}/{CONFIG_FILE}")
    if config.get("format") != FORMAT:
        raise ValueError(f"{folder}: format {config.get('format')!r}; allowed: {FORMAT}")
    features = tuple(config.get("feature_names", ()))
    if features != FEATURE_NAMES:
        raise ValueError(
            f"{folder}: trained on features {list(features)}, but this rapid-env computes "
            f"{list(FEATURE_NAMES)}; retrain with rapid-train-decider"
        )
    actions = tuple(config.get("actions", ()))
    if actions != COMPACT_ACTIONS:
        raise ValueError(
            f"{folder}: actions {list(actions)}; allowed: {list(COMPACT_ACTIONS)}"
        )
    activation = config.get("activation")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{folder}: activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    tensors = load_file(str(folder / WEIGHTS_FILE))
    n_hidden = len(config["net_arch"])
    names = [f"pi.{i}" for i in range(n_hidden)] + ["action"]
    weights = []
    width = len(FEATURE_NAMES)
    for name in names:
        w = tensors[f"{name}.weight"].astype(np.float64)
        b = tensors[f"{name}.bias"].astype(np.float64)
        if w.ndim != 2 or w.shape[1] != width or b.shape != (w.shape[0],):
            raise ValueError(f"{folder}: layer {name} has shape {w.shape}, expected (*, {width})")
        weights.append((w, b))
        width = w.shape[0]
    if width != len(COMPACT_ACTIONS):
        raise ValueError(f"{folder}: {width} action logits, expected {len(COMPACT_ACTIONS)}")
    obs_var = tensors["obs_var"].astype(np.float64)
    obs_eps = float(config["obs_eps"])
    return DeciderNet(
        weights=tuple(weights),
        obs_mean=tensors["obs_mean"].astype(np.float64),
        obs_var=obs_var,
        obs_scale=1.0 / np.sqrt(obs_var + obs_eps),
        obs_clip=float(config["obs_clip"]),
        obs_eps=obs_eps,
        activation=str(activation),
        safety_refill=bool(config["safety_refill"]),
        config=config,
    )


@dataclass(frozen=True)
class LearnedConfig:
    """Run-time options of the learned decider (the network itself comes from its folder).

    Attributes:
        safety_refill: whether a ``keep`` while starved becomes an ``infer``. None (default): the
            folder's own setting, i.e. what the policy was trained with; ``false`` shows how much
            a policy trained with the refill leans on it.
    """

    safety_refill: bool | None = None


class LearnedDecider(DeciderBase):
    """Chooses among :data:`~rapid_env.wrapper.COMPACT_ACTIONS` with a trained PPO actor.

    The learned policy decides when to ask (refill early, late, or preempt) and whether to force
    an end of the split; the planner picks the split otherwise. With the folder's
    ``safety_refill`` (on in the shipped decider, as in its training), a ``keep`` while the buffer
    is empty and nothing is in flight becomes a request, so a poor policy cannot starve the robot
    forever; everything before that point is the network's choice. ``config.safety_refill``
    overrides the folder's switch.
    """

    needs_image = False

    def __init__(
        self,
        path: str | Path | None = None,
        name: str = "learned",
        config: LearnedConfig | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else SHIPPED_DECIDER
        self.net = load_decider_net(self.path, name if name.startswith("sb3:") else None)
        self.config = config or LearnedConfig()
        self.name = name
        self.safety_refill = (
            self.net.safety_refill
            if self.config.safety_refill is None
            else self.config.safety_refill
        )
        self.last_action = 0
        self.safety_refills = 0

    def reset(self, rng: np.random.Generator) -> None:
        """Greedy and stateless across ticks; only the counters restart."""
        self.last_action = 0
        self.safety_refills = 0

    def decide(self, obs: DeciderObservation) -> Decision:
        """Argmax of the actor's logits for this tick's features, plus the safety refill."""
        features = feature_vector(obs)
        index = int(np.argmax(self.net.logits(features)))
        self.last_action = index
        decision = compact_decision(index, obs.n_splits)
        if self.safety_refill and decision.kind == "keep" and starved(features):
            self.safety_refills += 1
            return Decision("infer")
        return decision
