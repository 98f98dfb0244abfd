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


# ---------------------------------------------------------------- both suites' action spaces
# LIBERO-style stats: native = mean + x * std (mean-std), or low + (x + 1) / 2 * (high - low)
MEAN = (0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5)
STD = (0.1, 0.2, 0.1, 0.5, 0.5, 0.5, 0.5)
X7 = np.array([[1.0, -1.0, 0.0, 1.0, 0.0, -1.0, 1.0],
               [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]])


def test_libero_target_keeps_rotation_after_mean_std_unnormalisation() -> None:
    amap = ActionMap(target="libero", native_mean=MEAN, native_std=STD, xyz_scale=(2, 1, 1),
                     rot_scale=2.0, gripper_open=0.0, gripper_closed=1.0)
    # unnormalised rows: [0.2, -0.2, 0, 0.5, 0, -0.5, 1.0] and [0.1, 0, 0, 0, 0, 0, 0.0]
    out = amap(X7)
    assert out.shape == (2, 7) and out.dtype == np.float32 and amap.width == 7
    np.testing.assert_allclose(out, [[0.4, -0.2, 0, 1.0, 0, -1.0, 1.0],
                                     [0.2, 0, 0, 0, 0, 0, -1.0]], atol=1e-6)


def test_metaworld_target_drops_rotation_after_mean_std_unnormalisation() -> None:
    amap = ActionMap(native_mean=MEAN, native_std=STD, xyz_scale=2.0, gripper_open=0.0,
                     gripper_closed=1.0)
    out = amap(X7)
    assert out.shape == (2, 4) and amap.width == 4
    np.testing.assert_allclose(out, [[0.4, -0.4, 0, 1.0], [0.2, 0, 0, -1.0]], atol=1e-6)


def test_libero_min_max_unnormalisation_and_openvla_gripper() -> None:
    # metres and radians per tick -> LIBERO's OSC units (0.05 m, 0.5 rad per unit per tick)
    low = (-0.05,) * 3 + (-0.5,) * 3 + (0.0,)
    high = (0.05,) * 3 + (0.5,) * 3 + (1.0,)
    amap = ActionMap(target="libero", native_low=low, native_high=high, xyz_scale=20.0,
                     rot_scale=2.0, gripper_open=1.0, gripper_closed=0.0)
    out = amap(np.array([[0.0, 1.0, -1.0, 0.5, -0.5, 1.0, -1.0]]))  # native grip 0 = closed
    np.testing.assert_allclose(out, [[0, 1, -1, 0.5, -0.5, 1, 1]], atol=1e-6)


def test_libero_target_from_a_4d_policy_commands_no_rotation() -> None:
    amap = ActionMap(target="libero", binarize_gripper=True)
    out = amap(np.array([[0.1, 0.2, 0.3, 0.2], [0.1, 0.2, 0.3, -0.2]]))
    np.testing.assert_allclose(out, [[0.1, 0.2, 0.3, 0, 0, 0, 1], [0.1, 0.2, 0.3, 0, 0, 0, -1]],
                               atol=1e-7)
    picked = ActionMap(target="libero", indices=(2, 1, 0, None, 4, None, 5))
    np.testing.assert_allclose(picked(np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])),
                               [[0.3, 0.2, 0.1, 0, 0.5, 0, 0.6]], atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": "bridge"}, r"target='bridge'; allowed: libero, metaworld"),
        ({"rot_scale": 2.0}, "Meta-World drops rotations"),
        ({"native_mean": (0.0,) * 4}, "native_mean and native_std must be given together"),
        ({"native_mean": (0.0,) * 4, "native_std": (1.0,) * 4, "native_low": (0.0,) * 4,
          "native_high": (1.0,) * 4}, "not both"),
        ({"native_mean": (0.0,) * 4, "native_std": (1.0, 1.0, -1.0, 1.0)}, "native_std must be"),
        ({"native_mean": (0.0,) * 4, "native_std": (1.0,) * 3}, "same length"),
        ({"native_mean": ("a",), "native_std": (1.0,)}, "finite numbers"),
        ({"target": "libero", "indices": (0, None, 2, 3, 4, 5, 6)}, "rotation entry may be null"),
        ({"target": "libero", "indices": (0, 1, 2, 6)}, "7 non-negative ints"),
        ({"native_width": 0}, "native_width=0; allowed: a positive int"),
        ({"native_width": 7, "native_low": (0.0,) * 4, "native_high": (1.0,) * 4},
         "native_low has 4 dims, native_width is 7"),
        # knowable when built: 5-D stats have no default dims, (0, 1, 2, 6) needs 7 dims
        ({"native_mean": (0.0,) * 5, "native_std": (1.0,) * 5}, "cannot map a 5-D"),
        ({"native_width": 4, "indices": (0, 1, 2, 6)},
         "need at least 7 action dims, native_width is 4"),
        ({"native_low": (0.0,) * 4, "native_high": (1.0,) * 4, "indices": (0, 1, 2, 6)},
         "need at least 7 action dims, native_low has 4 dims"),
    ],
)
def test_action_map_validation_of_the_suite_fields(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        ActionMap(**kwargs)
    assert "\n" not in str(err.value)


def test_native_width_refuses_other_widths_the_defaults_would_take() -> None:
    amap = ActionMap(native_width=7, indices=(0, 1, 2, 6))
    amap.check_width(7)
    with pytest.raises(ValueError, match="native_width is 7, the model returned 4-D"):
        amap(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="native_mean has 7 dims, the model returned 4"):
        ActionMap(target="libero", native_mean=MEAN, native_std=STD).check_width(4)


def test_metaworld_plain_data_is_unchanged_and_new_fields_round_trip() -> None:
    old_keys = ["indices", "xyz_scale", "gripper_open", "gripper_closed", "binarize_gripper",
                "native_low", "native_high", "clip"]
    assert list(ActionMap(xyz_scale=25.0).to_dict()) == old_keys
    libero = ActionMap(target="libero", indices=(0, 1, 2, None, None, None, 3), rot_scale=(1, 2, 3),
                       native_mean=(0.0,) * 4, native_std=(1.0,) * 4, native_width=4)
    data = json.loads(json.dumps(libero.to_dict()))
    assert data["indices"] == [0, 1, 2, None, None, None, 3] and data["target"] == "libero"
    assert ActionMap.from_dict(data) == libero
    with pytest.raises(ValueError, match="wrong type"):
        ActionMap.from_dict({"gripper_open": "open"})


def test_fit_chunk_pads_and_truncates_libero_chunks() -> None:
    a = np.arange(14, dtype=np.float32).reshape(2, 7)
    np.testing.assert_array_equal(fit_chunk(a, 3), np.stack([a[0], a[1], a[1]]))
    np.testing.assert_array_equal(fit_chunk(a, 1), a[:1])
    amap = ActionMap(target="libero")
    chunk = native_to_chunk(np.full((1, 7), 0.25), amap, 4, "p")
    assert chunk.shape == (4, 7) and np.all(chunk == 0.25)
