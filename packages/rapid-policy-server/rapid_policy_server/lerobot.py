"""A LeRobot checkpoint as an openpi-served policy: ``rapid-policy-server --lerobot DIR``.

LeRobot cannot share an environment with most benchmarks (LeRobot 0.6 wants Python >= 3.12,
torch < 2.12 and its own transformers), so it runs here, in LeRobot's own environment, behind
the openpi websocket protocol, and the harness talks to it as to any openpi server. What makes a
LeRobot checkpoint work is what LeRobot itself saved beside the weights, all used as saved:

* ``config.json``: the policy type (``act``, ``diffusion``, ``smolvla`` ...), its input features
  (the camera keys and their image shapes, the state width) and its chunking (``chunk_size``,
  ``n_action_steps``);
* ``policy_preprocessor.json`` / ``policy_postprocessor.json`` and their ``.safetensors`` state:
  LeRobot's processor pipelines, with the training set's normalisation statistics (mean/std or
  min/max per feature), applied before the model and undone after it exactly as LeRobot's own
  evaluation does.

**Observation.** openpi's keys become LeRobot's: ``observation/state`` -> ``observation.state``
(its width must match the checkpoint's), ``prompt`` -> ``task``, and each camera feature of the
checkpoint gets one openpi image, HxWx3 uint8 -> 3xHxW float in [0, 1], resized (bilinear) to the
feature's declared shape when it differs. Cameras are matched by name: a feature whose key
contains ``wrist`` or ``hand`` takes ``observation/wrist_image``, one other feature takes
``observation/image``; anything else needs an explicit ``camera_map`` (``--camera
KEY=OPENPI_KEY``), because feeding one frame to two cameras silently is how a multi-camera
checkpoint goes out of distribution.

**Actions.** The post-processed chunk, its first ``n_action_steps`` rows (the checkpoint's own
re-planning horizon), as float32 ``(rows, action_dim)`` in the units the checkpoint was trained
on; mapping them to a simulator's action space is the client's job (rapid-env's action maps).

Weights are loaded by LeRobot from ``model.safetensors`` (no pickle); nothing is downloaded when
the checkpoint carries its weights and its backbone needs none (a config naming hub weights
fails, by LeRobot, without network).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

OPENPI_IMAGE = "observation/image"
OPENPI_WRIST = "observation/wrist_image"
OPENPI_STATE = "observation/state"
OPENPI_IMAGES = (OPENPI_IMAGE, OPENPI_WRIST)
"""The openpi observation keys a camera feature can take its frame from."""

WRIST_WORDS = ("wrist", "hand")
"""A camera feature whose key contains one of these is the wrist camera by default."""


def parse_camera_map(items: list[str] | None) -> dict[str, str]:
    """``["observation.images.top=observation/image", ...]`` as a map; ValueError on a bad item."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, source = item.partition("=")
        if not sep or not key or source not in OPENPI_IMAGES:
            raise ValueError(f"--camera {item!r}: expected KEY=OPENPI_KEY with OPENPI_KEY one of "
                             f"{', '.join(OPENPI_IMAGES)}")
        out[key] = source
    return out


def assign_cameras(visual_keys: list[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Which openpi image feeds each camera feature (module docstring: by name, or explicit).

    Raises:
        ValueError: an explicit key the checkpoint does not have, or a camera left without a
            source (naming the keys and the ``--camera`` form).
    """
    unknown = sorted(set(explicit) - set(visual_keys))
    if unknown:
        raise ValueError(f"--camera names {unknown}, not camera features of this checkpoint "
                         f"(its cameras: {visual_keys})")
    out = dict(explicit)
    free = [k for k in visual_keys if k not in out]
    wrist = [k for k in free if any(w in k.lower() for w in WRIST_WORDS)]
    main = [k for k in free if k not in wrist]
    if len(wrist) == 1 and OPENPI_WRIST not in out.values():
        out[wrist[0]] = OPENPI_WRIST
    if len(main) == 1 and OPENPI_IMAGE not in out.values():
        out[main[0]] = OPENPI_IMAGE
    left = [k for k in visual_keys if k not in out]
    if left:
        raise ValueError(f"camera features {left} have no source; say which openpi image feeds "
                         f"each, e.g. --camera {left[0]}={OPENPI_IMAGE} (the openpi images: "
                         f"{', '.join(OPENPI_IMAGES)})")
    return {k: out[k] for k in visual_keys}


def check_device(torch: Any, device: str) -> None:
    """ValueError, one line, for a device torch cannot parse or this machine does not have."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r}; allowed: cpu, cuda, cuda:N, mps") from None
    present = {"cpu": True, "cuda": torch.cuda.is_available(),
               "mps": torch.backends.mps.is_available()}
    if not present.get(kind, False):
        here = [k for k, ok in present.items() if ok]
        raise ValueError(f"--device {device!r} is not available on this machine; "
                         f"available: {', '.join(here)}")
    if kind == "cuda" and torch.device(device).index is not None:
        count = torch.cuda.device_count()
        if torch.device(device).index >= count:
            raise ValueError(f"--device {device!r}: this machine has {count} CUDA device(s)")


class LeRobotPolicy:
    """A LeRobot checkpoint directory, loaded with LeRobot, answering openpi observations.

    Args:
        path: the checkpoint directory (``config.json``, ``model.safetensors``, the processor
            files).
        device: the torch device the model and the pre-processor's tensors go to.
        camera_map: camera feature key -> openpi image key, for what naming cannot decide.

    Raises:
        ValueError: no checkpoint there, LeRobot missing, or cameras that cannot be assigned.
    """

    def __init__(self, path: str | Path, device: str = "cpu",
                 camera_map: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ValueError(f"--lerobot {str(path)!r}: no LeRobot checkpoint there (no "
                             f"config.json)")
        try:
            import torch
            from lerobot.configs.policies import PreTrainedConfig
            from lerobot.configs.types import FeatureType
            from lerobot.policies.factory import get_policy_class, make_pre_post_processors
        except ImportError as exc:
            raise ValueError(f"--lerobot needs LeRobot installed in this environment ({exc}); "
                             "run the server in the environment that has it") from None
        self._torch = torch
        check_device(torch, device)
        cfg = PreTrainedConfig.from_pretrained(str(self.path))
        cfg.device = device
        self.config = cfg
        self.policy = get_policy_class(cfg.type).from_pretrained(str(self.path), config=cfg)
        self.policy.eval()
        # the processors' own device step follows the served device, whatever it was saved with
        override = {"device_processor": {"device": device}}
        self.preprocessor, self.postprocessor = make_pre_post_processors(
            cfg, pretrained_path=str(self.path), preprocessor_overrides=override,
            postprocessor_overrides={"device_processor": {"device": "cpu"}})
        feats = cfg.input_features
        visual = [k for k, f in feats.items() if f.type is FeatureType.VISUAL]
        self.image_shapes = {k: tuple(feats[k].shape) for k in visual}
        self.cameras = assign_cameras(visual, camera_map or {})
        state = [k for k, f in feats.items() if f.type is FeatureType.STATE]
        self.state_key = state[0] if state else None
        self.state_dim = int(np.prod(feats[state[0]].shape)) if state else 0
        self.action_dim = int(np.prod(cfg.output_features["action"].shape))
        self.rows = int(getattr(cfg, "n_action_steps", None) or getattr(cfg, "chunk_size", 1))

    def metadata(self) -> dict[str, Any]:
        """What the server sends each client on connect: the checkpoint's interface."""
        norm = {str(getattr(k, "value", k)): str(getattr(v, "value", v))
                for k, v in getattr(self.config, "normalization_mapping", {}).items()}
        return {
            "policy": "lerobot", "type": self.config.type, "checkpoint": str(self.path),
            "cameras": dict(self.cameras), "state_dim": self.state_dim,
            "action_dim": self.action_dim, "chunk_size": int(getattr(self.config, "chunk_size", 1)),
            "n_action_steps": self.rows, "normalization": norm,
        }

    def batch(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """LeRobot's un-batched observation of one openpi observation map (module docstring).

        Raises:
            ValueError: a missing key, a state of the wrong width, or an image not HxWx3.
        """
        torch = self._torch
        out: dict[str, Any] = {"task": str(obs.get("prompt", ""))}
        if self.state_key is not None:
            if OPENPI_STATE not in obs:
                raise ValueError(f"the observation has no {OPENPI_STATE!r}; the checkpoint's "
                                 f"{self.state_key} wants {self.state_dim} values")
            state = np.asarray(obs[OPENPI_STATE], dtype=np.float32).reshape(-1)
            if state.size != self.state_dim:
                raise ValueError(f"{OPENPI_STATE} has {state.size} values; the checkpoint's "
                                 f"{self.state_key} wants {self.state_dim}")
            out[self.state_key] = torch.from_numpy(state)
        for key, source in self.cameras.items():
            if source not in obs:
                raise ValueError(f"the observation has no {source!r}, which feeds the "
                                 f"checkpoint's camera {key}")
            out[key] = self._frame(np.asarray(obs[source]), self.image_shapes[key], source)
        return out

    def _frame(self, image: np.ndarray, shape: tuple[int, ...], source: str) -> Any:
        """HxWx3 uint8 -> 3xHxW float in [0, 1], resized to the declared (3, H, W)."""
        torch = self._torch
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"{source} has shape {image.shape}; expected HxWx3")
        frame = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        size = tuple(shape[-2:])
        if tuple(frame.shape[-2:]) != size:
            frame = torch.nn.functional.interpolate(
                frame[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        return frame

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        """One chunk: pre-process (normalise), predict, post-process (unnormalise)."""
        batch = self.preprocessor(self.batch(obs))
        with self._torch.inference_mode():
            chunk = self.policy.predict_action_chunk(batch)
        actions = self.postprocessor(chunk)
        out = np.asarray(actions.detach().to("cpu", self._torch.float32).numpy())
        out = out.reshape(-1, self.action_dim)[: self.rows]
        return {"actions": out}

    def reset(self) -> None:
        """Clear the policy's own action queue (openpi has no reset; kept for direct use)."""
        self.policy.reset()
