"""HFPolicyAdapter's own jobs: folder checks, layout detection, backend choice, the factory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rapid_env.agents.hf_adapter as hf_adapter
from rapid_env.agents.hf_adapter import HFPolicyAdapter, detect_layout, hf_policy_factory
from rapid_env.agents.hf_adapter.adapter import BACKENDS
from tests.agents.hf_adapter.helpers import make_input, tiny_predict


def test_factory_matches_registry_signature(hf_ckpt: Path) -> None:
    make = hf_policy_factory(hf_ckpt, predict=tiny_predict, name="tiny")
    policy = make("reach", chunk_size=4)
    assert policy.name == "tiny" and policy.chunk_size == 4
    # what POLICIES.create passes (rapid_env.compose.build_policy)
    policy = make("reach", chunk_size=4, trust_checkpoint_code=False)
    assert policy.act(make_input()).shape == (4, 4)


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{tmp_path / 'absent'} does not exist"):
        HFPolicyAdapter(tmp_path / "absent")
    with pytest.raises(ValueError, match=f"{tmp_path} has no config.json"):
        HFPolicyAdapter(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden": 3}))
    with pytest.raises(ValueError, match=r"unknown checkpoint layout .*found keys \['hidden'\]"):
        HFPolicyAdapter(tmp_path)
    with pytest.raises(ValueError, match="chunk_size must be >= 1, got 0"):
        HFPolicyAdapter(tmp_path, chunk_size=0)


def test_detect_layout() -> None:
    assert detect_layout(Path("x"), {"model_type": "llama"}) == "transformers"
    assert detect_layout(Path("x"), {"architectures": ["OpenVLAForActionPrediction"]}) == (
        "transformers"
    )
    assert detect_layout(Path("x"), {"type": "act"}) == "lerobot"


def test_every_layout_has_a_backend_of_that_layout() -> None:
    assert set(BACKENDS) == {"transformers", "lerobot"}
    for layout, backend in BACKENDS.items():
        assert backend.layout == layout


def test_package_exports_what_all_lists() -> None:
    for name in hf_adapter.__all__:
        assert hasattr(hf_adapter, name), name


def test_reassigned_model_and_predict_kwargs_are_what_act_runs(hf_ckpt: Path) -> None:
    policy = HFPolicyAdapter(hf_ckpt, chunk_size=4, predict=tiny_predict)
    inner, calls = policy.model, []

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return inner(**kwargs)

    policy.model = counting
    policy.predict_kwargs = {"n_actions": 1, "width": 4}
    chunk = policy.act(make_input())
    assert policy.model is counting and len(calls) == 1
    assert policy.predict_kwargs == {"n_actions": 1, "width": 4}
    assert np.all(chunk == chunk[0])  # one predicted action, held
