"""The cloud half of one loaded policy: the boundaries each split expects, and the forward.

The edge runs blocks ``0..k-1`` of the executable model and sends the boundary state
(:meth:`rapid_env.agents.vla.split.SplitRunner.edge`'s safetensors bytes); :class:`CloudModel`
knows, per split and compression, which tensors those bytes must hold (checked by
:mod:`rapid_env.serve.boundary` before anything is decoded), decodes them in the edge's memory
layout (:func:`~rapid_env.agents.vla.split.deserialise`, as :meth:`SplitRunner.cloud` does), runs
blocks ``k..n-1`` and finishes the policy's chunk (its first ``chunk_size`` rows, clipped to
[-1, 1], as :class:`~rapid_env.agents.vla.policy.VLAPolicy` does). With compression ``none`` the
chunk equals ``VLAPolicy.act_split`` for the same input bit for bit, on the same kernels and
thread count.

The cloud half may run on another device or in another precision than the edge (``rapid-serve
--device/--dtype``): the boundaries an edge writes stay float32 (the expected table is taken
from the model as loaded, before it is placed), and the server moves what it decodes onto the
model's device and precision before its blocks run, and every chunk back to float32 numpy.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rapid_env.agents.torch_device import check_device, place, resolve_dtype
from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.split import (
    COMPRESSIONS,
    Layout,
    deserialise,
    layout_of,
    onto,
    serialise,
)
from rapid_env.compose import build_policy
from rapid_env.config import EnvConfig
from rapid_env.serve import rapid_serve_pb2 as pb
from rapid_env.serve.boundary import BoundaryError, Expected, parse_specs, read_header
from rapid_env.serve.config import SERVABLE, UsageError


@dataclass(frozen=True)
class Boundary:
    """What split ``k`` under one compression expects: tensors (batch 1), layout, blob size."""

    tensors: Expected
    layout: Layout
    nbytes: int


class DeadlineHit(Exception):
    """The request's time ran out between two blocks (``args[0]``: the block not run)."""


class CloudModel:
    """The cloud half of one loaded policy: expected boundaries per split, and the forward.

    The expected boundaries come from one dry edge run per split on zero inputs of batch 1 (what
    :meth:`SplitRunner.boundary_layout` does): names, dtypes and shapes of the safetensors blob
    :func:`serialise` writes under each compression, and the strides the cloud restores. A model
    that reads several cameras folds their frames into the batch until its tokens block
    (:meth:`ExecutableVLA.prepare`), so its boundaries hold one image (or feature map) per camera:
    an edge that sends fewer is refused by shape, with :meth:`cameras_note` naming the cameras.

    The model's forward keeps no state between calls (every block is a pure function of its input
    state; the autoregressive family's KV cache lives in the call), so concurrent requests may run
    it at once (``parallel=True``). By default a lock lets one forward run at a time: on two cores
    that served the token-by-token ``ar-token`` family twice as fast (its many small ops fight
    over the GIL when several run at once) and cost ``chunk-regress`` about a fifth
    (``docs/serve.md``, *Threads*).

    ``device`` and ``dtype`` place the model (:func:`~rapid_env.agents.torch_device.place`, in
    place: the module given is moved) *after* the expected boundaries are taken from it as it
    came, so an edge running the float32 model keeps writing what the server accepts. Off the
    defaults, one forward on zero inputs then runs there, so a device or precision the model
    cannot run in is refused at start-up, and the first request pays no warm-up.

    Raises:
        ValueError: the device is absent here or the dtype unknown (one line each).
    """

    def __init__(
        self,
        name: str,
        model: ExecutableVLA,
        chunk_size: int,
        parallel: bool = False,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        check_device(device)  # before the dry runs: an absent device or unknown dtype fails
        resolve_dtype(dtype)  # at once
        self.name, self.model, self.chunk_size = name, model.eval(), chunk_size
        self.n_blocks = model.n_blocks
        self.block_names = model.block_names()
        self.splits = tuple(range(self.n_blocks))  # k = n_blocks would leave nothing to serve
        self._lock: threading.Lock | None = None if parallel else threading.Lock()
        self.table: dict[tuple[int, str], Boundary] = {}
        self.cameras: tuple[str, ...] = tuple(model.cfg.cameras)
        with torch.inference_mode():
            first = model.zero_inputs(1)  # a frame for every camera the model reads
            for k in self.splits:
                state = model.run(first, 0, k)
                layout = layout_of(state)
                for comp in COMPRESSIONS:
                    blob = serialise(state, comp)
                    header, _ = read_header(blob)
                    self.table[k, comp] = Boundary(parse_specs(header), layout, len(blob))
        place(model, device, dtype)
        self.dtype = dtype
        self.device = str(model.p_mean.device)  # "cuda" resolved: "cuda:0"
        if (device, dtype) != ("cpu", "float32"):
            self._run(model.zero_inputs(1), 0, math.inf)

    @classmethod
    def from_policy(
        cls,
        name: str,
        policy: object,
        parallel: bool = False,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> CloudModel:
        """The cloud half of a built policy, placed on ``device`` in ``dtype``.

        Raises:
            UsageError: the policy has no split runtime.
            ValueError: the device is absent here or the dtype unknown.
        """
        model = getattr(policy, "model", None)
        chunk = getattr(policy, "chunk_size", None)
        if not isinstance(model, ExecutableVLA) or not isinstance(chunk, int):
            raise UsageError(
                f"policy {name!r} has no split runtime to serve; servable: {', '.join(SERVABLE)}"
            )
        return cls(name, model, chunk, parallel, device, dtype)

    def cameras_note(self) -> str:
        """What a rejected boundary's message adds for a multi-camera model ("" for one camera).

        The server cannot tell which camera an edge left out (frames travel as one batch), so it
        names the ones it needs, in the order the batch holds them.
        """
        if len(self.cameras) == 1:
            return ""
        return (
            f"; policy {self.name!r} reads {len(self.cameras)} cameras, one frame each in this "
            f"order: {', '.join(self.cameras)}"
        )

    def boundary(self, split: int, compression: str) -> Boundary:
        """The expected boundary (KeyError for a split or compression not served)."""
        return self.table[split, compression]

    def info(self, max_request_bytes: int) -> pb.ServerInfo:
        """The ``Info`` reply."""
        out = pb.ServerInfo(
            policy=self.name,
            family=self.model.cfg.family,
            n_blocks=self.n_blocks,
            splits=list(self.splits),
            chunk_size=self.chunk_size,
            action_dim=self.model.cfg.action_dim,
            compressions=list(COMPRESSIONS),
            block_names=self.block_names,
            max_request_bytes=max_request_bytes,
            cameras=list(self.cameras),
        )
        for k in self.splits:
            entry = out.split_info.add(split=k, first_cloud_block=self.block_names[k])
            for comp in COMPRESSIONS:
                b = self.table[k, comp]
                spec = entry.boundaries.add(compression=comp, nbytes=b.nbytes)
                for tname, (dtype, shape) in b.tensors.items():
                    spec.tensors.add(name=tname, dtype=dtype, shape=list(shape))
        return out

    def check_values(self, state: dict[str, torch.Tensor]) -> None:
        """Decoded values the model cannot take: non-finite floats, token ids outside the vocab."""
        for name, t in state.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise BoundaryError(f"tensor {name!r} holds non-finite values")
        ids = state.get("text_ids")
        if ids is not None and ids.numel():
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.model.cfg.vocab_size:
                raise BoundaryError(
                    f"tensor 'text_ids' holds ids in [{lo}, {hi}], outside the vocabulary "
                    f"[0, {self.model.cfg.vocab_size})"
                )

    def decode(self, blob: bytes, split: int, compression: str) -> dict[str, torch.Tensor]:
        """Checked blob -> state in the edge's layout (``SplitRunner.cloud``'s decoding)."""
        with torch.inference_mode():
            return deserialise(blob, self.table[split, compression].layout)

    def forward(
        self, state: dict[str, torch.Tensor], split: int, deadline: float = math.inf
    ) -> np.ndarray:
        """Blocks ``split..n-1``, then the policy's chunk finishing.

        ``deadline`` (``time.perf_counter`` seconds) is checked between blocks. The blocks are
        :meth:`ExecutableVLA.run`'s, in its order, so the chunk is
        ``SplitRunner.cloud``'s; the finishing is ``VLAPolicy._finish``'s.
        """
        if self._lock is None:
            actions = self._run(state, split, deadline)
        else:
            with self._lock:
                actions = self._run(state, split, deadline)
        return np.clip(_numpy32(actions[0, : self.chunk_size]), -1.0, 1.0)

    def forward_batch(
        self, states: Sequence[dict[str, torch.Tensor]], split: int, deadline: float = math.inf
    ) -> list[np.ndarray]:
        """One forward over several requests' decoded states at ``split``: a chunk for each.

        The states are stacked on the batch dimension (every boundary tensor's first): a
        multi-camera model's image batch holds each sample's frames camera-major, so stacking
        samples keeps the order :meth:`ExecutableVLA.prepare` folds them in. The blocks are pure
        per sample, so each request's chunk is its unbatched :meth:`forward`'s up to the float
        rounding of the larger kernels. ``deadline`` is checked between blocks as there.
        """
        if len(states) == 1:
            return [self.forward(states[0], split, deadline)]
        with torch.inference_mode():
            stacked = {key: torch.cat([s[key] for s in states]) for key in states[0]}
        if self._lock is None:
            actions = self._run(stacked, split, deadline)
        else:
            with self._lock:
                actions = self._run(stacked, split, deadline)
        out = np.clip(_numpy32(actions[:, : self.chunk_size]), -1.0, 1.0)
        return [out[i] for i in range(len(states))]

    def _run(self, state: dict[str, torch.Tensor], split: int, deadline: float) -> torch.Tensor:
        with torch.inference_mode():
            state = onto(state, self.model)  # a no-op for a float32 model on the CPU
            for name, fn in self.model.blocks()[split:]:
                if time.perf_counter() > deadline:
                    raise DeadlineHit(name)
                state = fn(state)
            return state["actions"]


def _numpy32(actions: torch.Tensor) -> np.ndarray:
    """Actions as float32 numpy on the CPU, whatever the model computed in (numpy has no bfloat16).

    For a float32 CPU model ``float()`` and ``cpu()`` return the tensor itself: the values are
    the forward's, bit for bit.
    """
    return actions.float().cpu().numpy().astype(np.float32)


def load_cloud_model(
    policy: str,
    chunk_size: int,
    parallel: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> CloudModel:
    """Build ``policy`` once with :func:`build_policy` and take its cloud half on ``device``.

    The policy is built as the edge builds it (float32, CPU), so the expected boundaries are the
    edge's; :class:`CloudModel` then places it on ``device`` in ``dtype``.

    Raises:
        UsageError: the policy cannot be loaded or has no split runtime, the device is absent
            here, the dtype is unknown, or the model fails to run there.
    """
    try:
        check_device(device)  # before the load (seconds): an absent device is refused at once
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        built = build_policy(EnvConfig(policy=policy, chunk_size=chunk_size))
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(f"cannot load policy {policy!r}: {e}") from None
    try:
        return CloudModel.from_policy(policy, built, parallel, device, dtype)
    except (ValueError, RuntimeError, NotImplementedError) as e:  # RuntimeError: op unsupported
        first = (str(e).splitlines() or [""])[0]  # torch's messages run over several lines
        raise UsageError(
            f"cannot run policy {policy!r} on device={device!r} in dtype={dtype!r}: "
            f"{type(e).__name__}: {first}"
        ) from None

