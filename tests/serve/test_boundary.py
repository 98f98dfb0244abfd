"""The boundary check reads the safetensors header itself and refuses anything unexpected."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save

from rapid_env.serve.boundary import BoundaryError, check_boundary, parse_specs, read_header

EXPECTED = {"h": ("F32", (1, 2, 3)), "text_ids": ("I64", (1, 4))}


def good_blob(compression: str = "none") -> bytes:
    return save(
        {"h": np.ones((1, 2, 3), np.float32), "text_ids": np.arange(4, dtype=np.int64)[None]},
        metadata={"compression": compression},
    )


def rebuild(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def parts(blob: bytes) -> tuple[dict, bytes]:
    header, start = read_header(blob)
    return header, blob[start:]


def rejected(blob: bytes, compression: str = "none") -> str:
    with pytest.raises(BoundaryError) as err:
        check_boundary(blob, EXPECTED, compression)
    return str(err.value)


def test_the_blob_serialise_writes_passes_and_its_specs_are_read_back() -> None:
    check_boundary(good_blob(), EXPECTED, "none")
    header, _ = read_header(good_blob())
    assert parse_specs(header) == EXPECTED


def test_garbage_short_and_overlong_length_prefixes_are_refused() -> None:
    assert "8-byte header length" in rejected(b"\x01\x02")
    assert "exceeds" in rejected((10**12).to_bytes(8, "little") + b"{}")
    assert "not UTF-8 JSON" in rejected((4).to_bytes(8, "little") + b"\xff\xfe{}")
    assert "not an object" in rejected(rebuild([], b""))  # type: ignore[arg-type]
    assert "not UTF-8 JSON" in rejected(rebuild({}, b"")[:-1] + b"x")


def test_a_header_claiming_a_huge_tensor_fails_on_its_shape_without_sizing_it() -> None:
    header, data = parts(good_blob())
    header["h"] = {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}
    msg = rejected(rebuild(header, data))
    assert "'h'" in msg and "shape" in msg


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda h: h["h"].update(dtype="F16"), "dtype 'F16'"),
        (lambda h: h["h"].update(shape=[1, 3, 2]), "shape [1, 3, 2]"),
        (lambda h: h["h"].update(shape=[1, 2, True]), "shape"),
        (lambda h: h.update(extra={"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}),
         "unexpected tensor 'extra'"),
        (lambda h: h.pop("text_ids"), "missing tensor 'text_ids'"),
        (lambda h: h["h"].update(data_offsets=[0, 23]), "span 23 bytes"),
        (lambda h: h["h"].update(data_offsets=[8]), "data_offsets"),
        (lambda h: h["h"].update(extra_key=1), "exactly dtype, shape and data_offsets"),
        (lambda h: h.update(__metadata__={"compression": "int8"}), "compression 'int8'"),
        (lambda h: h.update(__metadata__={"compression": 8}), "map of strings"),
    ],
)
def test_each_header_mismatch_is_named(edit, needle: str) -> None:
    header, data = parts(good_blob())
    edit(header)
    assert needle in rejected(rebuild(header, data))


def test_offsets_must_tile_the_data_buffer_exactly() -> None:
    header, data = parts(good_blob())
    first, second = sorted(("h", "text_ids"), key=lambda n: header[n]["data_offsets"][0])
    a, b = header[first]["data_offsets"]
    header[first]["data_offsets"] = [a + 8, b + 8]  # a gap at the start
    assert f"{first!r}: data starts at byte 8" in rejected(rebuild(header, data + bytes(8)))
    header, data = parts(good_blob())
    assert "cover" in rejected(rebuild(header, data + b"\0"))  # a trailing byte
    assert "cover" in rejected(rebuild(header, data[:-1]))  # short: offsets past the end


def test_duplicate_keys_nan_constants_and_deep_nesting_are_refused() -> None:
    raw = good_blob()
    header, data = parts(raw)
    text = json.dumps(header)
    dup = text[:-1] + ', "h": ' + json.dumps(header["h"]) + "}"
    blob = len(dup).to_bytes(8, "little") + dup.encode() + data
    assert "twice" in rejected(blob)
    nan = text.replace('"shape": [1, 2, 3]', '"shape": [1, 2, NaN]')
    assert "NaN" in rejected(len(nan).to_bytes(8, "little") + nan.encode() + data)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    assert "not UTF-8 JSON" in rejected(len(deep).to_bytes(8, "little") + deep)
    huge = ('{"h": {"dtype": "F32", "shape": [' + "9" * 5000 + "]}}").encode()
    assert "not UTF-8 JSON" in rejected(len(huge).to_bytes(8, "little") + huge)


def test_metadata_may_be_absent_but_not_contradict_the_request() -> None:
    header, data = parts(good_blob())
    header.pop("__metadata__")
    check_boundary(rebuild(header, data), EXPECTED, "none")
    assert "says 'fp16'" in rejected(good_blob("none"), compression="fp16")
