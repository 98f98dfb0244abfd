"""Where a policy's torch model runs and in which precision: devices probed, dtypes resolved.

``EnvConfig.device`` and ``EnvConfig.dtype`` are plain names, checked for their form by
:mod:`rapid_env.config` (which imports no torch). Whether the device is on *this* machine can only
be asked of torch, here: :func:`check_device` turns an absent one (``cuda`` on a machine without a
GPU, ``mps`` on Linux) into one line naming what is available, so ``rapid-eval`` refuses it before
any episode instead of failing inside the first model call with torch's own message.

Torch is imported inside the functions: ``rapid-eval --help`` and the scripted expert need none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch
    from torch import nn

M = TypeVar("M", bound="nn.Module")

__all__ = ["available_devices", "check_device", "place", "resolve_dtype"]


def available_devices() -> list[str]:
    """The devices torch can use here: ``cpu``, then ``cuda:0`` .. ``cuda:N-1``, then ``mps``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(device: str) -> None:
    """Raise ValueError (one line) unless ``device`` is on this machine.

    ``cuda`` means the current CUDA device, so it needs one GPU; ``cuda:N`` needs N + 1.

    Raises:
        ValueError: naming the device and the ones available.
    """
    if device == "cpu":
        return
    have = available_devices()
    if device in have or (device == "cuda" and "cuda:0" in have):
        return
    raise ValueError(
        f"device={device!r} is not available on this machine; available: {', '.join(have)}"
    )


def resolve_dtype(name: str) -> torch.dtype:
    """The torch dtype a name such as ``bfloat16`` stands for.

    Raises:
        ValueError: the name is not one of ``EnvConfig``'s dtypes.
    """
    import torch

    from rapid_env.config import DTYPE_CHOICES

    if name not in DTYPE_CHOICES:
        raise ValueError(f"dtype={name!r}; allowed: {', '.join(DTYPE_CHOICES)}")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def place(model: M, device: str = "cpu", dtype: str = "float32") -> M:
    """Move ``model`` to ``device`` and cast its floating weights and buffers to ``dtype``.

    Integer buffers (position ids) keep their type, as :meth:`torch.nn.Module.to` does. On the
    defaults (cpu, float32) a float32 CPU model is returned as it was, bit for bit.

    Raises:
        ValueError: the device is absent here or the dtype is unknown (one line each).
    """
    check_device(device)
    model.to(device=device, dtype=resolve_dtype(dtype))  # in place: the same module, moved
    return model
