"""Check an edge's boundary bytes against the tensors a split expects, before decoding any of them.

A boundary is a safetensors blob (:func:`rapid_env.agents.vla.split.serialise`): an 8-byte
little-endian header length ``n``, ``n`` bytes of JSON header (``{name: {"dtype", "shape",
"data_offsets"}}`` plus an optional ``__metadata__`` of strings), then the tensors' bytes. A
header can claim anything (a ``10**12``-element tensor in a 1 kB message), so the server never
hands a blob to a decoder before :func:`check_boundary` has read the header itself, with the
standard library only, and found:

* the header length within the message (and at most :data:`MAX_HEADER_BYTES`);
* UTF-8 JSON, an object, no duplicate keys (safetensors keeps the last of two, a check that reads
  the first would be fooled), no nesting deeper than the format has;
* exactly the expected tensor names (a missing or an extra one is named);
* each tensor's dtype and shape equal to the expected ones, its offsets two integers whose span
  is exactly ``prod(shape) * itemsize`` bytes;
* the spans, in order, tiling the data buffer from its first byte to its last (no gap, overlap or
  trailing byte);
* ``__metadata__``, when present, a flat string map whose ``compression`` (if any) is the one the
  request names.

Only then is the decoded size known to be the expected one, which is small and fixed per split.
Nothing here imports torch or safetensors: it is the part that must not allocate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_HEADER_BYTES = 1 << 20
"""Largest header accepted: a boundary's header is a few hundred bytes."""

DTYPE_BYTES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}
"""Bytes per element of every safetensors dtype."""

TensorSpec = tuple[str, tuple[int, ...]]
"""A tensor's safetensors dtype and shape."""

Expected = dict[str, TensorSpec]
"""The tensors a boundary must hold, by name."""


class BoundaryError(ValueError):
    """The boundary bytes are not the expected safetensors state (the message names the part)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BoundaryError(f"header lists {key!r} twice")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise BoundaryError(f"header holds the non-JSON constant {name}")


def read_header(blob: bytes) -> tuple[dict[str, Any], int]:
    """The parsed JSON header of a safetensors blob and the offset where its data starts.

    Raises:
        BoundaryError: the length prefix is missing or larger than the blob (or than
            :data:`MAX_HEADER_BYTES`), or the header is not a JSON object without duplicate keys.
    """
    if len(blob) < 8:
        raise BoundaryError(
            f"boundary is {len(blob)} bytes; a safetensors blob starts with an 8-byte header length"
        )
    n = int.from_bytes(blob[:8], "little")
    if n > len(blob) - 8:
        raise BoundaryError(
            f"header length {n} exceeds the {len(blob) - 8} bytes that follow it"
        )
    if n > MAX_HEADER_BYTES:
        raise BoundaryError(f"header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    try:
        text = bytes(blob[8 : 8 + n]).decode("utf-8")
        header = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
        )
    except BoundaryError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BoundaryError(f"header is not UTF-8 JSON: {type(e).__name__}: {e}") from None
    if not isinstance(header, dict):
        raise BoundaryError(f"header is a JSON {type(header).__name__}, not an object")
    return header, 8 + n


def _int_list(value: Any, length: int | None = None) -> list[int] | None:
    """``value`` as a list of non-negative ints (bools refused), or None when it is not one."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    return value


def parse_specs(header: Mapping[str, Any]) -> Expected:
    """Every tensor's dtype and shape as a well-formed header lists them (for start-up tables)."""
    out: Expected = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        out[name] = (entry["dtype"], tuple(entry["shape"]))
    return out


def check_boundary(blob: bytes, expected: Expected, compression: str, where: str = "") -> None:
    """Raise :class:`BoundaryError` unless ``blob`` is exactly the ``expected`` tensors.

    Args:
        blob: the request's boundary bytes.
        expected: name -> (dtype, shape) of every tensor the split's boundary holds under
            ``compression`` (the server's start-up table, int8 scale entries included).
        compression: the compression the request names (checked against ``__metadata__``).
        where: appended to messages (``"for split 3 with compression none"``).
    """
    suffix = f" {where}" if where else ""
    header, start = read_header(blob)
    _check_metadata(header.pop("__metadata__", None), compression)
    extra = sorted(set(header) - set(expected))
    if extra:
        raise BoundaryError(
            f"unexpected tensor {extra[0]!r}{suffix}; expected: {', '.join(sorted(expected))}"
        )
    missing = sorted(set(expected) - set(header))
    if missing:
        raise BoundaryError(f"missing tensor {missing[0]!r}{suffix}")
    spans: list[tuple[int, int, str]] = []
    for name in sorted(expected):
        begin, end = _check_entry(name, header[name], *expected[name], suffix)
        spans.append((begin, end, name))
    _check_tiling(spans, len(blob) - start)


def _check_metadata(meta: Any, compression: str) -> None:
    """``__metadata__``, when present: a flat string map naming the request's compression."""
    if meta is None:
        return
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
    ):
        raise BoundaryError("__metadata__ is not a map of strings to strings")
    if "compression" in meta and meta["compression"] != compression:
        raise BoundaryError(
            f"boundary was written with compression {meta['compression']!r}, the request "
            f"says {compression!r}"
        )


def _check_entry(
    name: str, entry: Any, dtype: str, shape: tuple[int, ...], suffix: str
) -> tuple[int, int]:
    """One tensor's header entry: the expected dtype and shape, offsets spanning its bytes."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise BoundaryError(
            f"tensor {name!r}: an entry needs exactly dtype, shape and data_offsets"
        )
    if entry["dtype"] != dtype:
        raise BoundaryError(
            f"tensor {name!r}: dtype {entry['dtype']!r}, expected {dtype!r}{suffix}"
        )
    got = _int_list(entry["shape"])
    if got is None or tuple(got) != shape:
        raise BoundaryError(
            f"tensor {name!r}: shape {entry['shape']!r}, expected {list(shape)}{suffix}"
        )
    offsets = _int_list(entry["data_offsets"], 2)
    if offsets is None or offsets[0] > offsets[1]:
        raise BoundaryError(
            f"tensor {name!r}: data_offsets {entry['data_offsets']!r} is not [begin, end]"
        )
    size = math.prod(shape) * DTYPE_BYTES[dtype]
    if offsets[1] - offsets[0] != size:
        raise BoundaryError(
            f"tensor {name!r}: data_offsets span {offsets[1] - offsets[0]} bytes, its dtype "
            f"and shape need {size}"
        )
    return offsets[0], offsets[1]


def _check_tiling(spans: list[tuple[int, int, str]], buffer: int) -> None:
    """The spans, in order, cover the data buffer from its first byte to its last."""
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise BoundaryError(
                f"tensor {name!r}: data starts at byte {begin}, expected {pos} (a gap or an "
                "overlap in the data buffer)"
            )
        pos = end
    if pos != buffer:
        raise BoundaryError(
            f"the tensors cover {pos} bytes of a {buffer}-byte data buffer"
        )
