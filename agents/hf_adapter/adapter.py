"""``HFPolicyAdapter``: a local checkpoint folder behind the Policy protocol.

The adapter owns what is the same for every layout: reading ``config.json`` and the optional
``rapid_env_adapter.json`` (checking its values, and refusing the code it names unless the user
passed ``trust_checkpoint_code``), detecting the layout, seeding torch per episode, the image
check, and the action map. Everything layout-specific is delegated to the backend that
:data:`BACKENDS` names for the detected layout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rapid_env.agents.cameras import wrist_camera
from rapid_env.agents.hf_adapter.actions import ActionMap, native_to_chunk
from rapid_env.agents.hf_adapter.backend import (
    ADAPTER_FILE,
    CODE_KEYS,
    Layout,
    LoadOptions,
    PolicyBackend,
    PredictFn,
    require_code_trust,
)
from rapid_env.agents.hf_adapter.lerobot_backend import LeRobotBackend
from rapid_env.agents.hf_adapter.transformers_backend import TransformersBackend
from rapid_env.jsonfile import read_json_object
from rapid_env.policy import PolicyInput

BACKENDS: dict[Layout, type[PolicyBackend]] = {
    "transformers": TransformersBackend,
    "lerobot": LeRobotBackend,
}
"""Layout -> backend class; :func:`detect_layout` only returns layouts listed here."""

ADAPTER_KEYS = frozenset({"predict", "predict_kwargs", "action_map"})
"""The keys ``rapid_env_adapter.json`` may hold; anything else is a typo and an error."""


def one_torch_thread_in_forked_child() -> None:
    """Run torch on one thread in a forked child (an ``os.register_at_fork`` hook).

    The adapter's model runs torch in the parent when an env is built (``AsyncVectorEnv`` builds
    one there to read the spaces), which starts OpenMP's thread pool; a forked worker's next
    parallel op would then wait forever for threads it does not have. On one thread it runs
    inline. The same hook as :mod:`rapid_env.agents.vla.policy`'s, which explains it in full;
    torch is looked up, not imported, since this package imports it lazily.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


os.register_at_fork(after_in_child=one_torch_thread_in_forked_child)


def detect_layout(path: Path, config: Mapping[str, Any]) -> Layout:
    """Say which layout ``config.json`` describes, or raise ValueError naming ``path``."""
    if "model_type" in config or "architectures" in config:
        return "transformers"
    if isinstance(config.get("type"), str):
        return "lerobot"
    raise ValueError(
        f"unknown checkpoint layout in {path / 'config.json'}: expected 'model_type' or "
        f"'architectures' (transformers save_pretrained) or 'type' (LeRobot), "
        f"found keys {sorted(config)}"
    )


def check_adapter_settings(adapter_file: Path, settings: Mapping[str, Any]) -> None:
    """Raise ValueError naming ``adapter_file`` for an unknown key or a value of the wrong type.

    Only the shapes are checked here (no import, no parsing of the action map): ``predict`` must
    be a dotted-path string, ``predict_kwargs`` and ``action_map`` JSON objects.
    """
    unknown = set(settings) - ADAPTER_KEYS
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} in {adapter_file}; allowed: {sorted(ADAPTER_KEYS)}"
        )
    for key in CODE_KEYS:
        if key in settings and not isinstance(settings[key], str):
            raise ValueError(
                f"{adapter_file}: {key} must be a dotted path string like 'my_glue:predict', "
                f"got {type(settings[key]).__name__}"
            )
    for key in ("predict_kwargs", "action_map"):
        if key in settings and not isinstance(settings[key], dict):
            raise ValueError(
                f"{adapter_file}: {key} must be a JSON object, got {type(settings[key]).__name__}"
            )


def _read_json(file: Path) -> dict[str, Any]:
    """The JSON object in ``file``; one line naming it, its line and column otherwise."""
    try:
        return read_json_object(file)
    except ValueError as exc:
        raise ValueError(f"cannot read {exc}") from None


class HFPolicyAdapter:
    """A local ``transformers`` or LeRobot-style checkpoint behind the Policy protocol.

    Example:
        >>> policy = HFPolicyAdapter(  # doctest: +SKIP
        ...     "/ckpts/openvla-7b", device="cuda", dtype="bfloat16", trust_remote_code=True,
        ...     predict_kwargs={"unnorm_key": "bridge_orig"},
        ...     action_map=ActionMap(xyz_scale=25.0, gripper_open=1.0, gripper_closed=0.0))
        >>> policy.reset(np.random.default_rng(0))  # doctest: +SKIP
        >>> policy.act(inp).shape  # doctest: +SKIP
        (8, 4)

    Args:
        path: the checkpoint directory (must exist locally; nothing is downloaded).
        chunk_size: actions per chunk handed to the controller.
        device: torch device to run on (``"cuda"`` on a GPU machine).
        predict: transformers layout only: the glue callable, or a dotted path to it. Default:
            ``predict`` from ``rapid_env_adapter.json`` (only with ``trust_checkpoint_code``), else
            :func:`~rapid_env.agents.hf_adapter.transformers_backend.predict_action_default`.
        predict_kwargs: extra keyword arguments for predict (merged over the file's).
        action_map: native -> Meta-World mapping; default from the file, else ``ActionMap()``.
        dtype: torch dtype name for the weights (``"bfloat16"``); None keeps the saved precision
            (transformers) or the built one (LeRobot). ``rapid-eval --dtype`` gives one always.
        model_class: transformers class (or its name) overriding ``architectures[0]``.
        trust_remote_code: allow ``auto_map`` classes defined by .py files in ``path``
            (transformers' own switch, and only that). Never read from the checkpoint itself:
            running its code must be the caller's decision.
        trust_checkpoint_code: allow the checkpoint to name code to import: ``predict`` in
            ``rapid_env_adapter.json`` is imported only when this is True (rapid-eval's
            ``--trust-checkpoint-code``); without it such a file is a ValueError raised before
            any import. It is the broader decision (all code the checkpoint names or ships), so
            it implies ``trust_remote_code``. A ``predict=`` you pass needs neither: you chose it,
            and the file's ``predict`` is then never imported.
        needs_image: whether act() needs a camera frame. None: True for the transformers layout
            (VLAs read images), for LeRobot whether its config lists a camera feature.
        wrist_camera: the task's wrist camera (``rapid_env.agents.cameras.wrist_camera(task)``),
            fed to a LeRobot checkpoint's wrist key; ``hf:<dir>`` policies are given it.
        name: policy name in records; default ``"hf:<directory name>"``.
    """

    def __init__(
        self,
        path: str | Path,
        chunk_size: int = 8,
        device: str = "cpu",
        *,
        predict: PredictFn | str | None = None,
        predict_kwargs: Mapping[str, Any] | None = None,
        action_map: ActionMap | None = None,
        dtype: str | None = None,
        model_class: str | type | None = None,
        trust_remote_code: bool = False,
        trust_checkpoint_code: bool = False,
        needs_image: bool | None = None,
        name: str | None = None,
        wrist_camera: str | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise ValueError(
                f"checkpoint directory {self.path} does not exist (nothing is downloaded; "
                f"give a local directory)"
            )
        config_file = self.path / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{self.path} has no config.json; is it a checkpoint directory?")
        self.config = _read_json(config_file)
        self.layout: Layout = detect_layout(self.path, self.config)
        adapter_file = self.path.absolute() / ADAPTER_FILE
        settings = _read_json(adapter_file) if adapter_file.is_file() else {}
        check_adapter_settings(adapter_file, settings)
        # before anything is imported: code the file names needs the user's trust (a predict=
        # the caller gave wins over the file's, which is then never imported)
        used = {k: v for k, v in settings.items() if not (k == "predict" and predict is not None)}
        require_code_trust(adapter_file, used, trust_checkpoint_code)

        self.name = name if name is not None else f"hf:{self.path.name}"
        self.chunk_size = chunk_size
        self.device = device
        if action_map is None:
            try:
                action_map = ActionMap.from_dict(settings.get("action_map", {}))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{adapter_file}: action_map: {e}") from e
        self.action_map = action_map
        self._predict_kwargs: dict[str, Any] = {
            **settings.get("predict_kwargs", {}),
            **(predict_kwargs or {}),
        }

        options = LoadOptions(
            device=device,
            predict=predict,
            predict_kwargs=self._predict_kwargs,
            settings=settings,
            dtype=dtype,
            model_class=model_class,
            trust_remote_code=trust_remote_code,
            trust_checkpoint_code=trust_checkpoint_code,
            wrist_camera=wrist_camera,
        )
        self._backend: PolicyBackend = BACKENDS[self.layout].load(self.path, self.config, options)
        self.needs_image = needs_image if needs_image is not None else self._backend.needs_image
        # the cameras besides the main one the loop must render into PolicyInput.images
        self.cameras: tuple[str, ...] = tuple(getattr(self._backend, "cameras", ()))

    # model, processor and predict_kwargs live in the backend (what act() runs); these properties
    # keep them plain read/write attributes of the adapter, so e.g. ``policy.model =
    # torch.compile(policy.model)`` still changes what act() runs.

    @property
    def model(self) -> Any:
        """The loaded model / module that act() runs."""
        return self._backend.model

    @model.setter
    def model(self, value: Any) -> None:
        self._backend.model = value

    @property
    def processor(self) -> Any:
        """The processor / tokenizer loaded with the model, or None."""
        return self._backend.processor

    @processor.setter
    def processor(self, value: Any) -> None:
        self._backend.processor = value

    @property
    def predict_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for predict: the file's, overridden by the caller's."""
        return self._predict_kwargs

    @predict_kwargs.setter
    def predict_kwargs(self, value: Mapping[str, Any]) -> None:
        # refill in place: the transformers backend holds this very dict
        new = dict(value)
        self._predict_kwargs.clear()
        self._predict_kwargs.update(new)

    def reset(self, rng: np.random.Generator) -> None:
        """Start an episode: seed torch from ``rng``, then let the backend clear its state.

        Sampling models (diffusion, flow matching, ``do_sample=True``) draw from torch's global
        generator, which their APIs give no other handle on; seeding it from the episode's stream
        keeps same seed -> same actions.
        """
        import torch

        torch.manual_seed(int(rng.integers(2**63 - 1)))
        self._backend.reset()

    def act(self, inp: PolicyInput) -> np.ndarray:
        """Run the model once; return a ``(chunk_size, 4)`` float32 chunk in ``[-1, 1]``.

        ``inp.sim`` is never read: a learned policy sees only image, proprio and instruction.
        """
        import torch

        if self.needs_image and inp.image is None:
            raise ValueError(f"policy {self.name!r} needs a camera image, got None")
        with torch.inference_mode():
            raw = self._backend.forward(inp)
        return native_to_chunk(raw, self.action_map, self.chunk_size, self._backend.source)


def hf_policy_factory(path: str | Path, **kwargs: Any) -> Callable[..., HFPolicyAdapter]:
    """A factory with the POLICIES signature for one checkpoint.

    The signature is ``(task, chunk_size=8, trust_checkpoint_code=False)``. The task name is not
    passed on: a VLA is conditioned by the instruction in each observation. Use it as
    ``POLICIES.register("my-vla", hf_policy_factory("/ckpts/my-vla", device="cuda"))``. Code
    the checkpoint names is trusted when either you pass ``trust_checkpoint_code=True`` here or
    the run does (``--trust-checkpoint-code``, ``EnvConfig.trust_checkpoint_code``): both are
    the user's decision. Registered with the extra ``torch_device=True``
    (``POLICIES.register("my-vla", hf_policy_factory(...), torch_device=True)``), the factory
    also takes the run's ``device`` and ``dtype`` (``rapid-eval --device/--dtype``), which win
    over the ones given here.
    """

    def make(
        task: str, chunk_size: int = 8, trust_checkpoint_code: bool = False,
        device: str | None = None, dtype: str | None = None,
    ) -> HFPolicyAdapter:
        options = dict(kwargs)
        options["trust_checkpoint_code"] = (
            bool(options.get("trust_checkpoint_code", False)) or trust_checkpoint_code
        )
        # the run's --device/--dtype (passed when registered with torch_device=True) win
        options.update({k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None})
        options.setdefault("wrist_camera", wrist_camera(task))
        return HFPolicyAdapter(path, chunk_size=chunk_size, **options)

    return make
