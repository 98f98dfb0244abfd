"""The transformers backend: a ``save_pretrained`` folder run through a small *predict* glue.

``config.json`` has ``model_type`` or ``architectures`` and the weights are ``model.safetensors``
(or a sharded ``model.safetensors.index.json``). The class is taken from ``architectures[0]`` (a
``transformers`` class, or an ``auto_map`` entry when ``trust_remote_code=True``). A processor or
tokenizer saved in the same directory is loaded with ``AutoProcessor``. Every ``from_pretrained``
gets ``local_files_only=True``: nothing is downloaded.

Because every VLA returns actions its own way, a small *predict* callable is the glue::

    predict(model, processor, image, proprio, instruction) -> np.ndarray  # (K, D) or (D,)

It is passed as ``predict=`` or named by dotted path (``"pkg.module:function"``) under
``"predict"`` in ``rapid_env_adapter.json``; the file's is imported only with
``trust_checkpoint_code=True`` (the user's ``--trust-checkpoint-code``). The default,
:func:`predict_action_default`, serves models with an OpenVLA-style ``predict_action``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from rapid_env.agents.hf_adapter.backend import (
    ADAPTER_FILE,
    SAFETENSORS_FILES,
    TRUST_FLAG,
    Layout,
    LoadOptions,
    PredictFn,
    require_code_trust,
    require_safetensors,
)
from rapid_env.policy import PolicyInput

OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut:"
"""The prompt OpenVLA was fine-tuned with; ``{instruction}`` is lower-cased first."""

PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
)
"""Any of these next to the weights means a processor / tokenizer was saved with the model."""


def load_callable(ref: str) -> PredictFn:
    """Import ``"pkg.module:attr"`` (or ``"pkg.module.attr"``) and return the callable.

    This runs the module's code: call it only on a path the user gave or trusted
    (:meth:`TransformersBackend.load` checks :func:`require_code_trust` first).
    """
    module_name, sep, attr = ref.partition(":")
    if not sep:
        module_name, _, attr = ref.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"predict must be a dotted path like 'pkg.module:function', got {ref!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import predict callable {ref!r}: {e}") from e
    if not callable(obj):
        raise ValueError(f"predict {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def predict_action_default(
    model: Any,
    processor: Any,
    image: np.ndarray | None,
    proprio: np.ndarray,
    instruction: str,
    prompt: str = OPENVLA_PROMPT,
    **kwargs: Any,
) -> np.ndarray:
    """Predict glue for OpenVLA-style models: ``model.predict_action(**inputs, **kwargs)``.

    Assumes what OpenVLA's model card shows: the processor takes ``(text, PIL image)`` and returns
    tensors, the model has ``predict_action`` returning one unnormalised 7-D action as an array,
    and greedy decoding (``do_sample=False``) is wanted. Proprio is not read (OpenVLA ignores it).
    Pass ``unnorm_key`` through ``predict_kwargs`` to pick the dataset statistics.

    Args:
        model: the loaded model; must have ``predict_action``.
        processor: the processor saved with it.
        image: uint8 HxWx3 camera frame.
        proprio: unused, part of the predict signature.
        instruction: the task sentence, inserted into ``prompt``.
        prompt: template with ``{instruction}``.
        **kwargs: forwarded to ``predict_action`` (``unnorm_key``, ...).

    Returns:
        Whatever ``predict_action`` returns, as a numpy array (the adapter checks its shape).
    """
    if not hasattr(model, "predict_action"):
        raise ValueError(
            f"default predict needs a model with predict_action (OpenVLA-style); "
            f"{type(model).__name__} has none, pass predict= or set it in {ADAPTER_FILE}"
        )
    if processor is None or image is None:
        raise ValueError("default predict needs a processor and a camera image")
    from PIL import Image

    text = prompt.format(instruction=instruction.lower())
    inputs = processor(text, Image.fromarray(image))
    if hasattr(inputs, "to"):  # BatchFeature: move to the model, cast only floating tensors
        inputs = inputs.to(getattr(model, "device", "cpu"), dtype=getattr(model, "dtype", None))
    kwargs.setdefault("do_sample", False)
    action = model.predict_action(**inputs, **kwargs)
    if hasattr(action, "detach"):
        action = action.detach().float().cpu().numpy()
    return np.asarray(action)


def _resolve_model_class(
    path: Path, config: Mapping[str, Any], model_class: str | type | None, trust_remote_code: bool
) -> Any:
    import transformers

    if isinstance(model_class, type):
        return model_class
    if model_class is not None:
        cls = getattr(transformers, model_class, None)
        if cls is None:
            raise ValueError(f"model_class {model_class!r} is not a transformers class")
        return cls
    archs = config.get("architectures") or []
    arch = archs[0] if archs else None
    if arch is not None and hasattr(transformers, arch):
        return getattr(transformers, arch)
    auto_map = config.get("auto_map") or {}
    if arch is not None:
        refs = [ref for ref in auto_map.values() if str(ref).rsplit(".", 1)[-1] == arch]
        if refs:
            if not trust_remote_code:
                raise ValueError(
                    f"{path} defines {arch} in its own code (auto_map); pass "
                    f"trust_remote_code=True (or {TRUST_FLAG}) only if you trust the .py files "
                    f"in that directory"
                )
            from transformers.dynamic_module_utils import get_class_from_dynamic_module

            return get_class_from_dynamic_module(refs[0], str(path), local_files_only=True)
    # No architectures entry: the base model of this model_type.
    return transformers.AutoModel


def _load_model_and_processor(
    path: Path, config: Mapping[str, Any], options: LoadOptions
) -> tuple[Any, Any]:
    """Load weights (safetensors, local only) onto ``options.device``, then any processor."""
    import torch

    require_safetensors(path, SAFETENSORS_FILES)
    remote = options.allows_remote_code
    cls = _resolve_model_class(path, config, options.model_class, remote)
    kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    if remote:
        kwargs["trust_remote_code"] = True
    if options.dtype is not None:
        torch_dtype = getattr(torch, options.dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(
                f"dtype must name a torch dtype like 'bfloat16', got {options.dtype!r}"
            )
        kwargs["dtype"] = torch_dtype
    try:
        model = cls.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot load the transformers model from {path}: {e}") from e
    model.to(options.device)
    model.eval()
    processor = None
    if any((path / f).is_file() for f in PROCESSOR_FILES):
        from transformers import AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(
                str(path), local_files_only=True, trust_remote_code=remote
            )
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot load the processor/tokenizer from {path}: {e}") from e
    return model, processor


class TransformersBackend:
    """A transformers checkpoint plus its predict glue, as a :class:`PolicyBackend`.

    Attributes:
        path: the checkpoint directory.
        model: the loaded model, on the requested device, in eval mode.
        processor: the processor / tokenizer saved with it, or None.
        predict: the glue called on every forward.
        predict_kwargs: extra keyword arguments for ``predict`` (the adapter's dict, shared).
        needs_image: always True: VLAs read images.
        source: ``"predict for <path>"``, for the action map's error messages.
    """

    layout: Layout = "transformers"

    def __init__(
        self,
        path: Path,
        model: Any,
        processor: Any,
        predict: PredictFn,
        predict_kwargs: dict[str, Any],
    ) -> None:
        self.path = path
        self.model = model
        self.processor = processor
        self.predict = predict
        self.predict_kwargs = predict_kwargs
        self.needs_image = True
        self.source = f"predict for {path}"

    @classmethod
    def load(cls, path: Path, config: dict[str, Any], options: LoadOptions) -> Self:
        """Resolve the predict glue (caller, then adapter file, then default), then load.

        The glue is resolved first so a misspelt dotted path fails before minutes of loading.
        A glue named by the adapter file is imported only with ``trust_checkpoint_code``; without
        it that is a ValueError raised before any import.
        """
        ref = options.predict
        if ref is None and "predict" in options.settings:
            ref = options.settings["predict"]
            require_code_trust(path / ADAPTER_FILE, {"predict": ref}, options.trust_checkpoint_code)
            if not isinstance(ref, str):
                raise ValueError(
                    f"{path / ADAPTER_FILE}: predict must be a dotted path string like "
                    f"'my_glue:predict', got {type(ref).__name__}"
                )
        predict: PredictFn
        if ref is None:
            predict = predict_action_default
        elif isinstance(ref, str):
            predict = load_callable(ref)
        elif callable(ref):
            predict = ref
        else:
            raise ValueError(f"predict must be a callable or a dotted path, got {ref!r}")
        model, processor = _load_model_and_processor(path, config, options)
        return cls(path, model, processor, predict, options.predict_kwargs)

    def reset(self) -> None:
        """Nothing to clear: a transformers model keeps no state between predict calls."""

    def forward(self, inp: PolicyInput) -> Any:
        """Call the glue: ``predict(model, processor, image, proprio, instruction, **kwargs)``."""
        proprio = np.asarray(inp.proprio, dtype=np.float32)
        return self.predict(
            self.model, self.processor, inp.image, proprio, inp.instruction, **self.predict_kwargs
        )
