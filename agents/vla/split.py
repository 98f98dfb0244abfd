"""The split runtime: run blocks ``< k`` on the edge, ship the state as bytes, finish in the cloud.

The boundary state is serialised with ``safetensors`` (no pickling; through its numpy front end,
which writes the same format about five times faster than the torch one for these small states),
optionally compressed:

* ``none`` — fp32 as is; the cloud result is bit-identical to the unsplit forward;
* ``fp16`` — floating tensors cast to half precision (halves the bytes);
* ``int8`` — per-tensor symmetric int8 with an fp32 scale (quarters them).

Integer tensors (token ids) are never compressed. The byte count of the serialised state is what
an executable model puts on the link (:attr:`SplitResult.uplink_bytes`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.components import State

COMPRESSIONS = ("none", "fp16", "int8")
_SCALE = "__scale__"


def serialise(state: State, compression: str = "none") -> bytes:
    """State -> bytes (safetensors), compressed as asked."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}")
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        t = t.detach().contiguous()
        if not t.is_floating_point() or compression == "none":
            out[key] = t
        elif compression == "fp16":
            out[key] = t.half()
        else:
            scale = t.abs().max().clamp_min(1e-12) / 127.0
            out[key] = (t / scale).round().clamp(-127, 127).to(torch.int8)
            out[key + _SCALE] = scale.reshape(1).float()
    return st_save({k: v.numpy() for k, v in out.items()}, metadata={"compression": compression})


def deserialise(blob: bytes) -> State:
    """Bytes -> state; undoes the compression (fp16/int8 come back as fp32)."""
    raw = {k: torch.from_numpy(v) for k, v in st_load(blob).items()}
    state: State = {}
    for key, t in raw.items():
        if key.endswith(_SCALE):
            continue
        if key + _SCALE in raw:
            state[key] = t.float() * raw[key + _SCALE]
        elif t.dtype == torch.float16:
            state[key] = t.float()
        else:
            state[key] = t
    return state


@dataclass(frozen=True)
class SplitResult:
    """One split inference: the actions and what it cost on each side.

    Attributes:
        actions: (B, K, 4) chunk.
        uplink_bytes: size of the serialised boundary state (0 when k == n_blocks: nothing sent).
        edge_s / cloud_s: measured wall time of each part on this machine, serialisation included.
    """

    actions: torch.Tensor
    uplink_bytes: int
    edge_s: float
    cloud_s: float


class SplitRunner:
    """Runs ``model`` split at block boundary ``k`` (0: all cloud, ``n_blocks``: all edge)."""

    def __init__(self, model: ExecutableVLA, k: int, compression: str = "none") -> None:
        n = model.n_blocks
        if not 0 <= k <= n:
            raise ValueError(f"split k={k} out of range; allowed: 0..{n} for {model.cfg.family}")
        if compression not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}"
            )
        self.model, self.k, self.compression = model, k, compression

    def edge(self, state: State) -> bytes:
        """Run the edge blocks and serialise the boundary state."""
        with torch.inference_mode():
            return serialise(self.model.run(state, 0, self.k), self.compression)

    def cloud(self, blob: bytes) -> torch.Tensor:
        """Deserialise the boundary state and finish the forward."""
        with torch.inference_mode():
            return self.model.run(deserialise(blob), self.k)["actions"]

    def __call__(self, state: State) -> SplitResult:
        """Edge part, bytes, cloud part; timed separately."""
        t0 = time.perf_counter()
        if self.k == self.model.n_blocks:
            with torch.inference_mode():
                actions = self.model.run(state)["actions"]
            return SplitResult(actions, 0, time.perf_counter() - t0, 0.0)
        blob = self.edge(state)
        t1 = time.perf_counter()
        actions = self.cloud(blob)
        return SplitResult(actions, len(blob), t1 - t0, time.perf_counter() - t1)
