"""The seam between the adapter and a loading backend, plus the rules every backend obeys.

A backend knows one checkpoint layout: how to load it from a local folder and how to run its
model once. It hands back the model's *raw* output; turning that into Meta-World's chunk is the
same for every layout and is done by the adapter with :mod:`.actions`. Keeping the backends this
small is what lets :class:`~rapid_env.agents.hf_adapter.adapter.HFPolicyAdapter` stay free of
per-layout branches: adding a layout means one new class implementing :class:`PolicyBackend`.

The safety rules shared by all layouts live here too: weights come only from safetensors files
(:data:`SAFETENSORS_FILES`, :func:`require_safetensors`), never from pickles, which can run code
on load; and code the checkpoint's own files name (:data:`CODE_KEYS` of the adapter file) is
imported only when the *user* passed ``trust_checkpoint_code`` (:func:`require_code_trust`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self, runtime_checkable

from rapid_env.policy import PolicyInput

ADAPTER_FILE = "rapid_env_adapter.json"
"""Optional per-checkpoint file naming the predict glue, its kwargs and the action map."""

SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
"""Weight files we accept; ``pytorch_model.bin`` and other pickles are refused on purpose."""

CODE_KEYS = ("predict",)
"""Keys of the adapter file whose value names code to import (a dotted path).

Honoured only with ``trust_checkpoint_code=True`` (``--trust-checkpoint-code``), which comes from
the user, never from the checkpoint: see :func:`require_code_trust`.
"""

TRUST_FLAG = "--trust-checkpoint-code"
"""The rapid-eval flag that is the user's ``trust_checkpoint_code=True``."""

Layout = Literal["transformers", "lerobot"]
"""The checkpoint layouts :func:`~rapid_env.agents.hf_adapter.adapter.detect_layout` knows."""

PredictFn = Callable[..., Any]
"""``predict(model, processor, image, proprio, instruction, **predict_kwargs) -> (K, D) array``."""


@dataclass(frozen=True)
class LoadOptions:
    """What the caller (and the checkpoint's adapter file) asked of the backend.

    One options object for every backend keeps :meth:`PolicyBackend.load` a single signature;
    each backend reads the fields that apply to its layout and refuses, with a ValueError, the
    ones that cannot apply (e.g. ``predict`` for LeRobot), rather than silently ignoring them.

    Attributes:
        device: torch device to run on.
        predict: the caller's predict glue (callable or dotted path), or None. Transformers only.
        predict_kwargs: extra keyword arguments for predict, already merged (caller over file).
            Held by reference: the adapter's ``predict_kwargs`` attribute is this same dict.
        settings: the checkpoint's ``rapid_env_adapter.json`` (keys already checked), or empty;
            caller arguments win over it.
        dtype: torch dtype name for the weights (``bfloat16``): transformers loads them in it,
            a LeRobot module is cast to it and so are its float inputs; None keeps the saved
            precision (transformers) or the built one (LeRobot). ``hf:<dir>`` policies always
            give one (``rapid-eval --dtype``, float32 by default).
        model_class: transformers class (or its name) overriding ``architectures[0]``.
        trust_remote_code: allow ``auto_map`` classes defined by .py files in the folder
            (transformers' own switch, and only that).
        trust_checkpoint_code: the user trusts code the checkpoint names: the adapter file's
            :data:`CODE_KEYS` may be imported, and (see :attr:`allows_remote_code`) its
            ``auto_map`` classes too. Set only from the caller's argument / CLI flag.
        wrist_camera: the task's wrist camera in ``PolicyInput.images`` (Meta-World
            ``gripperPOV``, LIBERO ``eye_in_hand``), which a checkpoint's wrist camera key is fed
            from; None: the task is not known, a wrist key is refused.
    """

    device: str = "cpu"
    predict: PredictFn | str | None = None
    predict_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    model_class: str | type | None = None
    trust_remote_code: bool = False
    trust_checkpoint_code: bool = False
    wrist_camera: str | None = None

    @property
    def allows_remote_code(self) -> bool:
        """Whether transformers may run the folder's ``auto_map`` code.

        ``trust_checkpoint_code`` is the broader decision (every piece of code the checkpoint
        names or ships), so it implies ``trust_remote_code``; the converse does not hold.
        """
        return self.trust_remote_code or self.trust_checkpoint_code


@runtime_checkable
class PolicyBackend(Protocol):
    """One checkpoint layout: load it from a folder, run one forward, say what it needs.

    Attributes:
        layout: the layout this backend loads (also the adapter's ``layout``).
        model: the loaded model / module (exposed as the adapter's ``model``).
        processor: the processor or tokenizer loaded with it, or None.
        needs_image: whether :meth:`forward` reads a camera frame, used when the caller does not
            say (``HFPolicyAdapter(needs_image=None)``).
        source: names the producer and checkpoint path in the action map's error messages.
    """

    layout: Layout
    model: Any
    processor: Any
    needs_image: bool
    source: str

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], options: LoadOptions) -> Self:
        """Load the checkpoint in ``path`` (its parsed ``config.json`` is ``config``).

        Raises:
            ValueError: naming ``path`` when the folder does not hold a loadable checkpoint of
                this layout, or an option does not apply to it.
        """
        ...

    def reset(self) -> None:
        """Start an episode: clear any state the model carries between calls (action queues)."""
        ...

    def forward(self, inp: PolicyInput) -> Any:
        """Run the model once on ``inp`` and return its raw actions (array, tensor or list).

        Called under ``torch.inference_mode()``; the adapter checks and maps the result.
        """
        ...


def require_safetensors(path: Path, names: Sequence[str]) -> Path:
    """Return the first of ``names`` present in ``path``, or raise ValueError naming ``path``.

    Every backend calls this before touching the weights, so a folder holding only pickled
    weights is refused before anything could unpickle them.
    """
    for name in names:
        if (path / name).is_file():
            return path / name
    raise ValueError(
        f"no safetensors weights in {path}: expected one of {list(names)} "
        f"(pickled .bin/.pt weights are refused; convert them with safetensors)"
    )


def require_code_trust(adapter_file: Path, settings: Mapping[str, Any], trusted: bool) -> None:
    """Refuse, before any import, an adapter file that names code when the user did not trust it.

    Args:
        adapter_file: the checkpoint's ``rapid_env_adapter.json`` (named in the error).
        settings: the entries of that file that will be used (those the caller overrode are
            left out: they are never imported).
        trusted: the caller's ``trust_checkpoint_code``.

    Raises:
        ValueError: naming the file, the key, its value and the flag that would allow it.
    """
    if trusted:
        return
    for key in CODE_KEYS:
        if key in settings:
            raise ValueError(
                f"{adapter_file} names code to import ({json.dumps(key)}: "
                f"{json.dumps(settings[key])}); pass {TRUST_FLAG} (trust_checkpoint_code=True in "
                f"Python) to allow it, only if you trust the code it names"
            )
