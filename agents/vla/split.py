"""The split runtime: run blocks ``< k`` on the edge, ship the state as bytes, finish in the cloud.

The boundary state is serialised with ``safetensors`` (no pickling; through its numpy front end,
which writes the same format about five times faster than the torch one for these small states),
optionally compressed:

* ``none`` — fp32 as is; the cloud result is bit-identical to the unsplit forward (see below);
* ``fp16`` — floating tensors cast to half precision (halves the bytes);
* ``int8`` — per-tensor symmetric int8 with an fp32 scale (quarters them).

Integer tensors (token ids) are never compressed. The byte count of the serialised state is what
an executable model puts on the link (:attr:`SplitResult.uplink_bytes`); a model with several
cameras ships every camera's image, features or tokens, so the count grows with the cameras.

A model placed in another precision or on a GPU (``rapid-eval --dtype/--device``) ships its state
in that precision (under ``none`` a bfloat16 state is written as bfloat16, through safetensors'
torch front end, since numpy has no bfloat16), and the cloud moves what it decodes onto the
model's device and precision before its blocks run.

**Why ``none`` is bit-identical.** The cloud runs the very block functions the unsplit forward
runs, on the same values; what can still differ is *how* those values sit in memory, and the CPU
kernels look at that. oneDNN picks its convolution kernel from the input's memory format (a
channels-last ``acdb`` input takes ``brg_conv_fwd``, a row-major ``abcd`` one is reordered to a
blocked ``aBcd16b`` and takes ``jit``), and MKL's small GEMMs take a different path for an input
that is not 16-byte aligned; kernels that differ may sum in a different order, which moves the last
bit. safetensors stores row-major bytes and hands them back at whatever address its buffer has, so
a raw round trip loses both: the ResNet activations of ``chunk-regress`` are channels-last in
memory (the image enters as a permuted NHWC tensor) but row-major after it, and the loaded tensors
are only 16-byte aligned. The cloud therefore never computes on the loaded buffers: every boundary
tensor is copied into fresh, 64-byte aligned torch storage with the strides the edge's tensor has
(:func:`deserialise` with a :data:`Layout`; :class:`SplitRunner` records it from the edge, or, when
it only runs the cloud part, derives it by running the edge blocks once on zero inputs of the same
batch size: layouts depend on shapes, never on values). The bytes on the link are unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from safetensors.torch import load as st_load_torch
from safetensors.torch import save as st_save_torch

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.components import State

COMPRESSIONS = ("none", "fp16", "int8")
_SCALE = "__scale__"

Layout = dict[str, tuple[tuple[int, ...], tuple[int, ...]]]
"""Shape and strides of each boundary tensor, by key: what the bytes do not carry."""


def layout_of(state: State) -> Layout:
    """The shape and strides of every tensor of ``state``."""
    return {key: (tuple(t.shape), tuple(t.stride())) for key, t in state.items()}


def _row_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of a contiguous (row-major) tensor of ``shape``."""
    out, step = [], 1
    for size in reversed(shape):
        out.append(step)
        step *= max(size, 1)
    return tuple(reversed(out))


def _dense(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Whether ``stride`` packs ``shape`` into exactly ``prod(shape)`` elements (any dim order)."""
    expected = 1
    for size, st in sorted(zip(shape, stride, strict=True), key=lambda p: p[1]):
        if size == 1:
            continue
        if st != expected:
            return False
        expected *= size
    return True


def materialise(t: torch.Tensor, stride: tuple[int, ...] | None = None) -> torch.Tensor:
    """A copy of ``t`` in fresh torch storage (64-byte aligned) with ``stride`` (row-major if None).

    ``stride`` must be dense for ``t``'s shape (a permutation of a row-major layout, as every
    tensor a block returns is); otherwise the copy is row-major.
    """
    shape = tuple(t.shape)
    if stride is None or len(stride) != len(shape) or not _dense(shape, stride):
        stride = _row_major(shape)
    out = torch.empty_strided(shape, stride, dtype=t.dtype)
    out.copy_(t)
    return out


def serialise(state: State, compression: str = "none") -> bytes:
    """State -> bytes (safetensors, row-major), compressed as asked."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}")
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        t = t.detach().cpu().contiguous()
        if not t.is_floating_point() or compression == "none":
            out[key] = t
        elif compression == "fp16":
            out[key] = t.half()
        else:
            scale = t.abs().max().clamp_min(1e-12) / 127.0
            out[key] = (t / scale).round().clamp(-127, 127).to(torch.int8)
            out[key + _SCALE] = scale.reshape(1).float()
    meta = {"compression": compression}
    if any(t.dtype == torch.bfloat16 for t in out.values()):  # numpy has no bfloat16
        return st_save_torch(out, metadata=meta)
    return st_save({k: v.numpy() for k, v in out.items()}, metadata=meta)


def _decode(blob: bytes) -> State:
    """Bytes -> decompressed tensors, which may still lie on the loaded buffer."""
    if b'"BF16"' in _header(blob):
        raw = dict(st_load_torch(blob))
    else:
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


def _header(blob: bytes) -> bytes:
    """The JSON header of a safetensors blob (its first 8 bytes give its length)."""
    size = int.from_bytes(blob[:8], "little") if len(blob) >= 8 else 0
    return blob[8 : 8 + size]


def onto(state: State, model: ExecutableVLA) -> State:
    """``state`` on the model's device, its floating tensors in the model's precision.

    A no-op for a float32 CPU model (``Tensor.to`` returns the tensor itself), so the restored
    layout of an fp32 split is kept.
    """
    ref = model.p_mean
    return {k: t.to(ref.device, ref.dtype) if t.is_floating_point() else t.to(ref.device)
            for k, t in state.items()}


def _covers(layout: Layout, state: State) -> bool:
    """Whether ``layout`` lists every tensor of ``state`` with its shape."""
    return all(key in layout and layout[key][0] == tuple(t.shape) for key, t in state.items())


def _restore(state: State, layout: Layout) -> State:
    """Each tensor materialised with the strides ``layout`` lists for its key and shape."""
    out: State = {}
    for key, t in state.items():
        shape, stride = layout.get(key, ((), ()))
        out[key] = materialise(t, stride if shape == tuple(t.shape) else None)
    return out


def deserialise(blob: bytes, layout: Layout | None = None) -> State:
    """Bytes -> state; undoes the compression (fp16/int8 come back as fp32).

    Every tensor is copied into fresh, 64-byte aligned torch storage, never left on the loaded
    buffer; a tensor whose key and shape ``layout`` lists gets the strides listed there (the edge
    tensor's, so the cloud's kernels see the same memory format), any other comes back row-major.
    """
    return _restore(_decode(blob), layout or {})


@dataclass(frozen=True)
class SplitResult:
    """One split inference: the actions and what it cost on each side.

    Attributes:
        actions: (B, K, action_dim) chunk.
        uplink_bytes: size of the serialised boundary state (0 when k == n_blocks: nothing sent).
        edge_s / cloud_s: measured wall time of each part on this machine, serialisation included.
    """

    actions: torch.Tensor
    uplink_bytes: int
    edge_s: float
    cloud_s: float


def _batch_of(state: State) -> int:
    """The number of samples a boundary state holds.

    Before the vision blocks fold their cameras back into tokens, the image features of a
    C-camera model hold B * C rows; the proprio, present until then, holds B.
    """
    ref = state["proprio"] if "proprio" in state else next(iter(state.values()))
    return int(ref.shape[0])


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
        self.layout: Layout = {}  # the last edge state's, what the cloud restores

    def edge(self, state: State) -> bytes:
        """Run the edge blocks and serialise the boundary state (recording its layout)."""
        with torch.inference_mode():
            out = self.model.run(state, 0, self.k)
            self.layout = layout_of(out)
            return serialise(out, self.compression)

    def boundary_layout(self, batch: int) -> Layout:
        """The layout the edge's boundary state has for a batch of ``batch``.

        Runs the edge blocks once on zero inputs of the model's sizes; memory formats follow from
        shapes and strides, never from values, so this is the layout of any real input's state.
        """
        state = self.model.zero_inputs(batch)
        with torch.inference_mode():
            return layout_of(self.model.run(state, 0, self.k))

    def cloud(self, blob: bytes) -> torch.Tensor:
        """Deserialise the boundary state in the edge's layout and finish the forward."""
        with torch.inference_mode():
            state = _decode(blob)
            if not _covers(self.layout, state):  # no edge run of this shape here: derive it
                self.layout = self.boundary_layout(_batch_of(state))
            return self.model.run(onto(_restore(state, self.layout), self.model), self.k)[
                "actions"]

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
