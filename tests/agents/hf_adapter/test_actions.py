"""The shared action map: native output -> checked (K, D) -> (K, 4) -> (chunk_size, 4)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from rapid_env.agents.hf_adapter import (
    ActionMap,
    check_native_actions,
    fit_chunk,
    native_to_chunk,
)


def test_action_map_defaults_and_conventions() -> None:
    four = np.array([[0.5, -0.5, 2.0, 0.3]])
    np.testing.assert_allclose(ActionMap()(four), [[0.5, -0.5, 1.0, 0.3]], atol=1e-7)

    # OpenVLA: metres per step, gripper 1 = open, 0 = closed; Meta-World: +1 closes
    openvla = ActionMap(xyz_scale=25.0, gripper_open=1.0, gripper_closed=0.0)
    seven = np.array([[0.004, -0.002, 0.02, 0.1, 0.2, 0.3, 1.0], [0, 0, 0, 0, 0, 0, 0.0]])
    np.testing.assert_allclose(openvla(seven), [[0.1, -0.05, 0.5, -1.0], [0, 0, 0, 1.0]], atol=1e-6)

    binary = ActionMap(binarize_gripper=True, indices=(3, 2, 1, 0))
    np.testing.assert_allclose(binary(np.array([[0.1, 0.2, 0.3, 0.4]]))[0], [0.4, 0.3, 0.2, 1])

    unnorm = ActionMap(native_low=(0, 0, 0, -2), native_high=(2, 2, 2, 2), xyz_scale=(1, 0.5, 0))
    np.testing.assert_allclose(unnorm(np.array([[-1.0, 0.0, 1.0, 0.25]])), [[0, 0.5, 0, 0.5]])

    with pytest.raises(ValueError, match="clip is False"):
        ActionMap(clip=False)(np.array([[1.5, 0, 0, 0]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"indices": (0, 1, 2)}, "4 non-negative ints"),
        ({"gripper_open": 1.0, "gripper_closed": 1.0}, "must differ"),
        ({"native_low": (0, 0, 0, 0)}, "given together"),
        ({"native_low": (0, 0), "native_high": (1, -1)}, "below native_high"),
        ({"xyz_scale": (1.0, 2.0)}, "xyz_scale"),
    ],
)
def test_action_map_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ActionMap(**kwargs)


def test_action_map_round_trips_and_rejects_unknown_fields() -> None:
    amap = ActionMap(
        indices=(0, 1, 2, 6), xyz_scale=(1.0, 2.0, 3.0), gripper_open=1.0, gripper_closed=0.0
    )
    assert ActionMap.from_dict(json.loads(json.dumps(amap.to_dict()))) == amap
    with pytest.raises(ValueError, match=r"unknown ActionMap fields \['scale'\]"):
        ActionMap.from_dict({"scale": 2.0})


def test_fit_chunk_repeats_last_and_truncates() -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(fit_chunk(a, 4), np.stack([a[0], a[1], a[1], a[1]]))
    np.testing.assert_array_equal(fit_chunk(a, 1), a[:1])


def test_check_native_actions_accepts_every_backend_shape() -> None:
    one = [0.1, 0.2, 0.3, 0.4]
    assert check_native_actions(one, "p").shape == (1, 4)  # a single (D,) action
    assert check_native_actions(np.zeros((1, 5, 7)), "p").shape == (5, 7)  # LeRobot's (1, K, D)
    tensor = torch.zeros((1, 3, 4), dtype=torch.bfloat16)  # bf16 has no numpy dtype
    assert check_native_actions(tensor, "p").dtype == np.float64
    with pytest.raises(ValueError, match="glue for /ckpt must return a numeric array"):
        check_native_actions("left", "glue for /ckpt")


def test_native_to_chunk_chains_check_map_and_fit() -> None:
    raw = np.array([[[0.004, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]])  # (1, 1, 7): one OpenVLA action
    amap = ActionMap(xyz_scale=25.0, gripper_open=1.0, gripper_closed=0.0)
    chunk = native_to_chunk(raw, amap, 3, "p")
    assert chunk.shape == (3, 4) and chunk.dtype == np.float32
    np.testing.assert_allclose(chunk, [[0.1, 0, 0, -1]] * 3, atol=1e-6)
    with pytest.raises(ValueError, match="p returned a non-finite"):
        native_to_chunk([np.inf, 0, 0, 0], amap, 3, "p")
