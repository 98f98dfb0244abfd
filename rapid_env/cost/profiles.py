"""Architecture cost profiles of full-size VLAs, counted on the ``meta`` device.

A profile is an ordered list of blocks, each with the FLOPs it executes in one inference, the
bytes of weights it keeps resident, and the bytes that would cross the network if the model were
split right after it. The numbers come from the real ``transformers`` architectures built on the
``meta`` device (shapes only: no memory, no weights, nothing downloaded) and run under
``torch.utils.flop_counter.FlopCounterMode``, so they are counted rather than typed in.

Counting needs ``torch`` and takes a few seconds, so it is the offline profiler's job
(:mod:`rapid_env.profiler`, ``python -m rapid_env.profiler --write``) and its result is cached in
``rapid_env/data/profiles.json``. This module is the runtime side: the profile dataclasses, and
:data:`PROFILES` / :func:`load_profile`, which only read that file (no torch import, nothing of the
profiler). The names :data:`PROFILES` knows are the profiles the cache holds.

Counting conventions (see ``docs/cost_model.md``):
    * ``FlopCounterMode`` counts matmul-class ops (mm, bmm, addmm, conv, SDPA) at 2 FLOPs per
      multiply-accumulate; element-wise work (norms, softmax, activations, RoPE) is not counted.
      It is well under 1 % of the total for these shapes and memory-bound anyway.
    * Weights are bf16 (2 bytes per parameter), as these VLAs are served.
    * Token ids travel as int64 (8 bytes, what tokenizers return); robot state and actions as
      float32; camera images as raw uint8 RGB at the model's input resolution (the edge resizes
      before sending), but never above the camera's 256 x 256 (the edge does not upsample).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

from rapid_env.registry import Registry

PROFILES_JSON = Path(__file__).resolve().parent.parent / "data" / "profiles.json"
"""The cached profiles, shipped as package data."""

WRITE_COMMAND = "python -m rapid_env.profiler --write"
"""What regenerates :data:`PROFILES_JSON` (named in its ``generated_by`` and in errors)."""

TOKEN_ID_BYTES = 8
"""Token ids travel as int64, what tokenizers return (an autoregressive loop's ``token_bytes``)."""

LoopKind = Literal["autoregressive", "flow", "diffusion", "none"]
"""What repeats the profile's loop blocks (its ``per_token`` tail):

* ``"autoregressive"``: one pass per decoded token, reading a growing KV cache (OpenVLA).
* ``"flow"``: one pass per flow-matching integration step over the whole action chunk, reading
  the VLM prefix's KV cache (pi0, SmolVLA).
* ``"diffusion"``: one pass per denoising step (Octo's diffusion head).
* ``"none"``: a single forward pass, no loop (OpenVLA-OFT's parallel decoding).
"""
LOOP_KINDS: tuple[str, ...] = get_args(LoopKind)


@dataclass(frozen=True)
class BlockCost:
    """Cost of one block (an encoder, a projector, one decoder layer, an action head).

    Attributes:
        name: Unique name within the profile, e.g. ``"llm.layer.07"``.
        flops: FLOPs this block executes in one whole inference: its first pass plus, for blocks
            inside the profile's loop, every further pass (decode step, flow or denoising step).
        weight_bytes: Bytes of parameters the block keeps resident (bf16).
        activation_bytes: Bytes that cross the link if the model is split right after this block
            (after the first pass): the block's output plus anything computed or received
            earlier that later blocks still need (e.g. the raw image for a second vision encoder,
            the instruction's token ids, the VLM prefix's KV cache an action expert attends to).
        per_token: True if the block runs again on every pass of the profile's loop (see
            :data:`LoopKind`): decoder layers and LM head of an autoregressive decoder, the layers
            of a flow-matching action expert, a diffusion head. The name is historical (the
            first loop was OpenVLA's token loop). Those blocks form a contiguous tail.
        decode_flops: FLOPs of one further pass of the loop (average over the passes; attention
            over a growing KV cache makes later decode steps slightly dearer). 0 if not
            ``per_token``.
        decode_activation_bytes: Bytes that cross the link per further pass if split right after
            this block (one token's hidden state; an action chunk's hidden states). 0 if not
            ``per_token``.
        kv_cache_bytes: Bytes of cached keys/values the block holds and re-reads on every pass:
            its own growing KV cache (autoregressive), or the VLM prefix's cache for the layer it
            attends to (an action expert's layer). Resident on whichever side runs the block.
        read_bytes: Weight bytes actually read per forward pass, if not all of them (an embedding
            lookup reads one row per token, not the table). ``None`` means ``weight_bytes``.
    """

    name: str
    flops: float
    weight_bytes: float
    activation_bytes: float
    per_token: bool = False
    decode_flops: float = 0.0
    decode_activation_bytes: float = 0.0
    kv_cache_bytes: float = 0.0
    read_bytes: float | None = None

    def __post_init__(self) -> None:
        numbers = {
            "flops": self.flops,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "decode_flops": self.decode_flops,
            "decode_activation_bytes": self.decode_activation_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
        }
        if self.read_bytes is not None:
            numbers["read_bytes"] = self.read_bytes
        for key, value in numbers.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"block {self.name!r}: {key} must be finite and >= 0, got {value}")
        if not self.per_token and (self.decode_flops or self.decode_activation_bytes):
            raise ValueError(
                f"block {self.name!r}: decode_flops/decode_activation_bytes need per_token=True"
            )

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes read from DRAM per forward pass (the first pass or one further pass)."""
        return self.weight_bytes if self.read_bytes is None else self.read_bytes

    def prefill_flops(self, decode_steps: int) -> float:
        """FLOPs of the first pass alone (the prefill): the total minus the further passes."""
        return max(0.0, self.flops - decode_steps * self.decode_flops)


@dataclass(frozen=True)
class ArchProfile:
    """The cost profile of one full-size VLA architecture.

    Attributes:
        name: Registry name, e.g. ``"openvla-7b"``.
        blocks: Blocks in execution order; a split point ``k`` puts ``blocks[:k]`` on the edge.
        input_bytes: Bytes sent up when everything runs in the cloud (raw camera images, the
            tokenised instruction, the robot state).
        output_bytes: Bytes of the action chunk sent back down.
        decode_steps: Passes of the loop blocks after their first one. The first pass is part of
            the prefill: a model emitting ``T`` tokens has ``T - 1`` decode steps, a flow or
            diffusion head integrating over ``S`` steps has ``S - 1``; 0 without a loop.
        source: Papers / model cards the configuration was written from.
        token_bytes: Bytes sent down per intermediate round when the split falls inside the loop:
            the sampled token id (so the edge can embed it), or the velocity / denoised sample of
            a flow or diffusion step (so the edge can integrate it).
        loop: What the loop repeats (:data:`LoopKind`); the default keeps older caches readable.
    """

    name: str
    blocks: tuple[BlockCost, ...]
    input_bytes: int
    output_bytes: int
    decode_steps: int
    source: str
    token_bytes: int = TOKEN_ID_BYTES
    loop: LoopKind = "autoregressive"

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError(f"profile {self.name!r} has no blocks")
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"profile {self.name!r} has duplicate block names")
        for key in ("input_bytes", "output_bytes", "decode_steps", "token_bytes"):
            if getattr(self, key) < 0:
                raise ValueError(f"profile {self.name!r}: {key} must be >= 0")
        if self.loop not in LOOP_KINDS:
            raise ValueError(
                f"profile {self.name!r}: unknown loop {self.loop!r}; allowed: "
                f"{', '.join(LOOP_KINDS)}"
            )
        flags = [b.per_token for b in self.blocks]
        if any(flags):
            first = flags.index(True)
            if not all(flags[first:]):
                raise ValueError(
                    f"profile {self.name!r}: per-token blocks must form a contiguous tail"
                )
        if self.loop == "none" and (any(flags) or self.decode_steps):
            raise ValueError(
                f"profile {self.name!r}: loop 'none' needs no per-token blocks and decode_steps 0"
            )

    @property
    def n_blocks(self) -> int:
        """Number of blocks; split points run from 0 to ``n_blocks``."""
        return len(self.blocks)

    @property
    def loop_passes(self) -> int:
        """How often the loop blocks run per inference (tokens, flow or denoising steps)."""
        return self.decode_steps + 1

    @property
    def loop_start(self) -> int:
        """Index of the first loop block; ``n_blocks`` if there is no loop."""
        return next((i for i, b in enumerate(self.blocks) if b.per_token), self.n_blocks)

    @property
    def total_flops(self) -> float:
        """FLOPs of one whole inference."""
        return sum(b.flops for b in self.blocks)

    @property
    def weight_bytes(self) -> float:
        """Resident weight bytes of the whole model."""
        return sum(b.weight_bytes for b in self.blocks)

    @property
    def kv_cache_bytes(self) -> float:
        """KV-cache bytes held at the end of one inference, both sides together."""
        return sum(b.kv_cache_bytes for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        """Convert to a JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        data = asdict(self)
        data["blocks"] = [asdict(b) for b in self.blocks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchProfile:
        """Rebuild a profile from :meth:`to_dict` output (e.g. the cached JSON)."""
        fields = dict(data)
        fields["blocks"] = tuple(BlockCost(**b) for b in data["blocks"])
        return cls(**fields)


# --------------------------------------------------------------------------------- the cache

PROFILES: Registry[ArchProfile] = Registry("profile")
"""Profile names -> cached profiles; ``PROFILES.create(name)`` reads the JSON like
:func:`load_profile`. The names are those the shipped cache holds; unknown names list them."""


def read_cache(path: Path | str | None = None) -> dict[str, Any]:
    """The ``profiles`` object of a cache file (default: the shipped one), as stored."""
    cache = Path(path) if path is not None else PROFILES_JSON
    profiles: dict[str, Any] = json.loads(cache.read_text())["profiles"]
    return profiles


def load_profile(name: str, path: Path | str | None = None) -> ArchProfile:
    """Read one cached profile from ``profiles.json`` (fast: no torch, no counting).

    Args:
        name: A registered profile name.
        path: Another JSON file in the same format (default: the shipped cache).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the allowed names).
        KeyError: The name is registered but the cache lacks it (run the write command).
    """
    PROFILES.check(name)
    cache = Path(path) if path is not None else PROFILES_JSON
    profiles = read_cache(cache)
    if name not in profiles:
        raise KeyError(f"profile {name!r} is not in {cache}; regenerate it with `{WRITE_COMMAND}`")
    return ArchProfile.from_dict(profiles[name])


for _name in read_cache():
    PROFILES.register(_name, partial(load_profile, _name))


# ------------------------------------------------------------------------ a user's profile file

FILE_PREFIX = "file:"
"""``file:<json>`` names a profile file written by ``rapid-profile`` (docs/cost_model.md)."""
FILE_FORMAT = "rapid-env-profile/1"
"""The ``format`` a profile file declares (so a results store or another JSON is not mistaken
for one)."""


class ProfileFileError(ValueError):
    """A profile file that cannot be used: one line naming the file and the bad field."""


def profile_file_digest(path: Path | str) -> str:
    """``sha256:<hex>`` of a profile file's bytes: what a results store records for it.

    A ``file:`` name says where the profile is, not what it holds; a file counted again after
    the model changed keeps its name, so stores compare this digest instead.

    Raises:
        ProfileFileError: the file cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ProfileFileError(f"profile file {str(path)!r}: {exc.strerror or exc}") from None
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _typed(value: object, kind: str, where: str) -> None:
    """Refuse ``value`` unless it has the JSON type ``kind`` (``number``, ``int``, ...)."""
    ok = {
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "number or null": value is None
        or (isinstance(value, int | float) and not isinstance(value, bool)),
    }[kind]
    if not ok:
        raise ValueError(f"{where}: expected {kind}, got {json.dumps(value)}")


_BLOCK_TYPES = {
    "name": "str", "flops": "number", "weight_bytes": "number", "activation_bytes": "number",
    "per_token": "bool", "decode_flops": "number", "decode_activation_bytes": "number",
    "kv_cache_bytes": "number", "read_bytes": "number or null",
}
_PROFILE_TYPES = {
    "name": "str", "blocks": "list", "input_bytes": "int", "output_bytes": "int",
    "decode_steps": "int", "source": "str", "token_bytes": "int", "loop": "str",
}


def _fields(data: object, types: dict[str, str], cls: type, where: str) -> dict[str, Any]:
    """Check a JSON object against a dataclass's fields: no unknown, none missing, typed."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {json.dumps(data)[:40]}")
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown field; allowed: {', '.join(types)}")
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{where}.{f.name}: missing")
            continue
        if types[f.name] != "list":
            _typed(data[f.name], types[f.name], f"{where}.{f.name}")
    return dict(data)


def profile_from_json(data: object) -> ArchProfile:
    """Validate a profile file's parsed JSON and build its :class:`ArchProfile`.

    Raises:
        ValueError: one line naming the first bad field (``profile.blocks[3].flops: ...``).
    """
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with 'format' and 'profile'")
    if data.get("format") != FILE_FORMAT:
        raise ValueError(
            f"format: expected {FILE_FORMAT!r}, got {json.dumps(data.get('format'))} "
            "(write the file with rapid-profile)"
        )
    prof = _fields(data.get("profile"), _PROFILE_TYPES, ArchProfile, "profile")
    blocks = prof.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise ValueError("profile.blocks: expected a non-empty list of blocks")
    built = []
    for i, block in enumerate(blocks):
        where = f"profile.blocks[{i}]"
        try:
            built.append(BlockCost(**_fields(block, _BLOCK_TYPES, BlockCost, where)))
        except ValueError as exc:
            raise ValueError(exc if str(exc).startswith(where) else f"{where}: {exc}") from None
    prof["blocks"] = tuple(built)
    try:
        return ArchProfile(**prof)
    except ValueError as exc:
        raise ValueError(f"profile: {exc}") from None


def load_profile_file(path: Path | str) -> ArchProfile:
    """Read a profile file written by ``rapid-profile`` (``--profile file:<json>``).

    Raises:
        ProfileFileError: the file is missing, not JSON, or a field is bad; one line naming the
            file and the field.
    """
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ProfileFileError(f"profile file {name!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileFileError(
            f"profile file {name!r}: not JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    try:
        return profile_from_json(data)
    except ValueError as exc:
        raise ProfileFileError(f"profile file {name!r}: {exc}") from None


def check_profile(name: str) -> str:
    """Return ``name`` if it names a usable profile: a cached one, or a valid ``file:`` one.

    Raises:
        UnknownNameError: neither a cached name nor ``file:<json>``.
        ProfileFileError: a ``file:`` profile that cannot be read or is malformed.
    """
    PROFILES.check(name)
    if name.startswith(FILE_PREFIX):
        load_profile_file(name[len(FILE_PREFIX):])
    return name


def profile_digest(name: str) -> str | None:
    """The content digest of a ``file:`` profile (:func:`profile_file_digest`); None otherwise.

    A cached name's profile moves with the package (like a shipped policy name's weights).
    """
    if not name.startswith(FILE_PREFIX):
        return None
    return profile_file_digest(name[len(FILE_PREFIX):])


PROFILES.register_prefix(
    FILE_PREFIX, load_profile_file, form="file:<json>", identity=profile_file_digest
)
