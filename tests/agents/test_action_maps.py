"""Shipped action-map presets and action-map files: what ``?actions=`` can name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rapid_env.agents.action_maps import PRESETS, libero_to_metaworld_xyz, load_action_map
from rapid_env.config import EnvConfig


def test_presets_carry_the_same_displacement_per_tick_between_the_suites() -> None:
    # LIBERO: 0.05 m per unit per tick; Meta-World: 0.01 m per unit per step, 4 steps a tick
    assert libero_to_metaworld_xyz() == pytest.approx(1.25)
    assert libero_to_metaworld_xyz(10.0) == pytest.approx(0.625)  # 8 steps a tick
    assert EnvConfig().control_hz == 20.0  # the rate the presets are for
    to_mw = load_action_map("libero7-to-metaworld", "metaworld")
    libero = np.array([[0.4, -0.2, 0.8, 0.3, 0.3, 0.3, 1.0], [1.0, 0, 0, 0, 0, 0, -1.0]])
    np.testing.assert_allclose(to_mw(libero), [[0.5, -0.25, 1.0, 1.0], [1.0, 0, 0, -1.0]],
                               atol=1e-6)  # rotation dropped, gripper kept, 1.25 clipped
    to_libero = load_action_map("metaworld4-to-libero", "libero")
    np.testing.assert_allclose(to_libero(np.array([[0.5, -0.5, 1.0, -1.0]])),
                               [[0.4, -0.4, 0.8, 0, 0, 0, -1.0]], atol=1e-6)
    assert set(PRESETS) == {"libero7-to-metaworld", "metaworld4-to-libero"}


def test_a_json_file_targets_the_tasks_suite_unless_it_says_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"native_mean": [0, 0, 0, 0], "native_std": [0.1, 0.1, 0.1, 1],
                                "xyz_scale": 5.0}))
    mw = load_action_map(str(path), "metaworld")
    np.testing.assert_allclose(mw(np.array([[1.0, -1.0, 2.0, 0.5]])), [[0.5, -0.5, 1.0, 0.5]],
                               atol=1e-6)
    assert load_action_map(str(path), "libero").target == "libero"
    path.write_text(json.dumps({"target": "libero"}))
    with pytest.raises(ValueError, match=r"target='libero', the task is a metaworld task; "
                                         r"allowed: 'metaworld' or leave target out"):
        load_action_map(str(path), "metaworld")


@pytest.mark.parametrize(("value", "content", "match"), [
    ("nope", None, r"actions='nope' is no preset and no \.json path; allowed: a preset for "
                   r"metaworld tasks \(libero7-to-metaworld\) or a path"),
    ("metaworld4-to-libero", None, "maps to libero actions, the task is a metaworld task"),
    ("missing.json", None, "missing.json: missing"),
    ("bad.json", "{", "not valid JSON"),
    ("bad.json", '{"scale": 2}', r"unknown ActionMap fields \['scale'\]; allowed: \["),
    ("bad.json", '{"native_width": 4, "native_mean": [0, 0, 0, 0, 0, 0, 0], '
                 '"native_std": [1, 1, 1, 1, 1, 1, 1]}', "native_mean has 7 dims, native_width"),
])
def test_bad_maps_are_one_line_naming_the_allowed(value: str, content: str | None, match: str,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path(value).write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        load_action_map(value, "metaworld")
    assert "\n" not in str(err.value)
