"""openpi's wire format: msgpack with numpy arrays and scalars as tagged maps.

The same encoding as ``openpi_client.msgpack_numpy`` (an array is ``{"__ndarray__": True,
"data": raw bytes, "dtype": dtype.str, "shape": shape}`` with bytes keys), written out here so a
server needs neither openpi-client nor its pins. Object, void and complex arrays are refused, as
openpi refuses them: only plain numbers cross the wire, never pickles.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np


def _pack(obj: Any) -> Any:
    """The ``default`` hook of msgpack: numpy arrays and scalars as openpi's tagged maps."""
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in ("V", "O", "c"):
        raise ValueError(f"dtype {obj.dtype} cannot be sent; allowed: numeric and bool arrays")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str,
                b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _unpack(obj: dict[Any, Any]) -> Any:
    """The ``object_hook`` of msgpack: openpi's tagged maps back to numpy (arrays are read-only)."""
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]),
                          shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, str, numbers, numpy arrays) as one openpi message."""
    return msgpack.packb(obj, default=_pack)  # type: ignore[no-any-return]


def unpackb(data: bytes) -> Any:
    """Decode one openpi message."""
    return msgpack.unpackb(data, object_hook=_unpack)
