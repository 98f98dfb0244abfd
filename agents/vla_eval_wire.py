"""vla-eval's wire format, written out: its message envelope, numpy and image encodings.

allenai's vla-evaluation-harness (``vla-eval``) frames every websocket message as one msgpack map
``{"type": "hello" | "observation" | "action" | "episode_start" | "episode_end" | "error",
"payload": {...}, "seq": int, "timestamp": float}`` (its ``protocol/messages.py``, protocol
version 1). Arrays travel as ``{"__ndarray__": True, "data": raw bytes, "dtype": dtype.str,
"shape": [...]}`` (``protocol/numpy_codec.py``); an HWC ``uint8`` image with 1, 3 or 4 channels
is PNG by default, ``{"__image__": True, "format": "png", "data": PNG bytes, "shape": [...]}``
(``protocol/image_codec.py``), or a plain array when the sender chose ``raw``.

This module speaks that format with msgpack and numpy alone (PNG is written with the standard
library's ``zlib``), so ``--policy vla-eval:ws://...`` needs no vla-eval install; the tests check
it against vla-eval's own codec (the same bytes for arrays, the same pixels from a PNG). Only
plain numbers cross the wire: object, void and complex arrays are refused both ways, as vla-eval
refuses them.
"""

from __future__ import annotations

import struct
import time
import zlib
from typing import Any, Literal

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
"""The protocol version vla-eval 0.8 speaks (``messages.PROTOCOL_VERSION``)."""

MESSAGE_TYPES = ("hello", "observation", "action", "episode_start", "episode_end", "error")
"""vla-eval's message types (``messages.MessageType`` values)."""

IMAGE_FORMATS = ("png", "raw")
"""How images may be sent: ``png`` (vla-eval's default, lossless) or ``raw`` (an array)."""

ImageFormat = Literal["png", "raw"]

_NDARRAY = "__ndarray__"
_IMAGE = "__image__"
_NUMERIC_KINDS = frozenset("biuf")
_PNG_COLOUR = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type: grey, RGB, RGBA


def is_image(arr: np.ndarray) -> bool:
    """vla-eval's test for an image: HWC ``uint8`` with 1, 3 or 4 channels."""
    return arr.ndim == 3 and arr.dtype == np.uint8 and arr.shape[2] in _PNG_COLOUR


def png_bytes(img: np.ndarray) -> bytes:
    """``img`` (HWC uint8, 1/3/4 channels) as a PNG file: 8-bit, no filter, zlib level 6.

    Any conforming decoder (Pillow's, which vla-eval's server uses) reads the exact pixels back.
    """
    height, width, channels = img.shape
    rows = np.ascontiguousarray(img).reshape(height, width * channels)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + chunk(b"IEND", b""))


def _encoder(image_format: ImageFormat) -> Any:
    """The ``default`` hook of msgpack: numpy arrays and scalars as vla-eval encodes them."""

    def encode(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in _NUMERIC_KINDS:
                raise ValueError(f"dtype {obj.dtype} cannot be sent; allowed: bool, int, uint, "
                                 "float arrays")
            if image_format == "png" and is_image(obj):
                return {_IMAGE: True, "format": "png", "data": png_bytes(obj),
                        "shape": list(obj.shape)}
            return {_NDARRAY: True, "data": obj.tobytes(), "dtype": obj.dtype.str,
                    "shape": list(obj.shape)}
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        raise TypeError(f"cannot send a {type(obj).__name__}")

    return encode


def _decode(obj: dict[Any, Any]) -> Any:
    """The ``object_hook`` of msgpack: vla-eval's tagged maps back to numpy arrays."""
    if _IMAGE in obj:
        if obj.get("format") == "raw":
            return np.frombuffer(obj["data"], np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        from io import BytesIO

        from PIL import Image  # only for a reply carrying a compressed image (none does)

        return np.array(Image.open(BytesIO(obj["data"])))
    if _NDARRAY not in obj:
        return obj
    dtype = np.dtype(obj["dtype"])
    if dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"the reply has a {dtype} array; allowed: bool, int, uint, float")
    return np.frombuffer(obj["data"], dtype).reshape(obj["shape"]).copy()


def pack_message(kind: str, payload: dict[str, Any], seq: int,
                 image_format: ImageFormat = "png", timestamp: float | None = None) -> bytes:
    """One vla-eval message: ``kind`` (a :data:`MESSAGE_TYPES` value) with ``payload``."""
    if kind not in MESSAGE_TYPES:
        raise ValueError(f"message type {kind!r}; allowed: {', '.join(MESSAGE_TYPES)}")
    raw = {"type": kind, "payload": payload, "seq": seq,
           "timestamp": time.time() if timestamp is None else timestamp}
    packed: bytes = msgpack.packb(raw, default=_encoder(image_format), use_bin_type=True)
    return packed


def unpack_message(data: bytes) -> tuple[str, dict[str, Any], int]:
    """``(type, payload, seq)`` of one vla-eval message; ValueError when it is not one."""
    try:
        raw = msgpack.unpackb(data, object_hook=_decode, raw=False)
    except Exception as exc:
        raise ValueError(f"not a vla-eval message ({len(data)} bytes): {exc}") from None
    if not isinstance(raw, dict) or not {"type", "payload", "seq"} <= set(raw):
        keys = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"not a vla-eval message: {keys}")
    if raw["type"] not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {raw['type']!r}; allowed: "
                         f"{', '.join(MESSAGE_TYPES)}")
    if not isinstance(raw["payload"], dict):
        raise ValueError(f"a vla-eval {raw['type']} whose payload is a "
                         f"{type(raw['payload']).__name__}, not a map")
    return str(raw["type"]), raw["payload"], int(raw["seq"])
