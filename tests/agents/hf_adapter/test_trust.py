"""Code a checkpoint names is imported only when the user says so (``trust_checkpoint_code``).

A checkpoint's ``rapid_env_adapter.json`` may name its predict glue by dotted path. Importing it
runs code, so it must be the user's decision (``--trust-checkpoint-code`` on the CLI,
``trust_checkpoint_code=True`` in Python), never the checkpoint's. The evil checkpoint below
ships ``evil_glue.py``, which leaves a marker file when imported, and names it in its adapter
file; it sits on ``sys.path`` and is the working directory, as for a user who runs
``python -m ...`` or has ``.`` on ``PYTHONPATH`` inside a downloaded folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rapid_env.agents.hf_adapter import (
    ADAPTER_FILE,
    HFPolicyAdapter,
    LoadOptions,
    hf_policy_factory,
)
from rapid_env.agents.hf_adapter.transformers_backend import (
    TransformersBackend,
    _resolve_model_class,
)
from rapid_env.agents.registry import POLICIES
from tests.agents.hf_adapter.helpers import (
    CHUNK_CONFIG,
    TinyChunkPolicy,
    copy_ckpt,
    make_input,
    tiny_predict,
    write_lerobot,
)

MARKER = "EVIL_GLUE_WAS_IMPORTED"
EVIL_GLUE = f'''\
"""Stands in for hostile code: importing it leaves {MARKER} next to it."""
from pathlib import Path

Path(__file__).with_name("{MARKER}").write_text("imported")


def predict(model, processor, image, proprio, instruction):
    from tests.agents.hf_adapter.helpers import tiny_predict

    return tiny_predict(model, processor, image, proprio, instruction)
'''
EVIL_REF = "evil_glue:predict"
NEEDLE = (
    f'{ADAPTER_FILE} names code to import ("predict": "{EVIL_REF}"); '
    f"pass --trust-checkpoint-code"
)


def write_evil(folder: Path) -> Path:
    """Add the hostile glue and an adapter file naming it to ``folder``."""
    (folder / "evil_glue.py").write_text(EVIL_GLUE)
    (folder / ADAPTER_FILE).write_text(json.dumps({"predict": EVIL_REF}))
    return folder


@pytest.fixture
def inside(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget ``evil_glue`` before and after: an import must come from this test's folder."""
    monkeypatch.delitem(sys.modules, "evil_glue", raising=False)
    yield
    sys.modules.pop("evil_glue", None)


def enter(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work from inside ``folder`` with it importable, as ``python -m`` run there would."""
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))


@pytest.mark.usefixtures("inside")
def test_untrusted_adapter_file_cannot_import_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # config.json alone: an import would happen before any weights are looked at
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_evil(folder)
    enter(folder, monkeypatch)
    for path in (".", folder):
        with pytest.raises(ValueError, match="trust-checkpoint-code") as err:
            HFPolicyAdapter(path)
        assert NEEDLE in str(err.value) and str(folder / ADAPTER_FILE) in str(err.value)
        assert "trust_checkpoint_code=True" in str(err.value)
    # trust_remote_code is transformers' auto_map switch; it does not trust the adapter file
    with pytest.raises(ValueError, match="trust-checkpoint-code"):
        HFPolicyAdapter(".", trust_remote_code=True)
    # the registry's hf: factory, as rapid-eval and gym.make call it
    with pytest.raises(ValueError, match="trust-checkpoint-code"):
        POLICIES.create("hf:.", "reach", chunk_size=8, trust_checkpoint_code=False)
    # the backend on its own refuses too (defence in depth for direct callers)
    settings = {"predict": EVIL_REF}
    with pytest.raises(ValueError, match="trust-checkpoint-code"):
        TransformersBackend.load(folder, {"model_type": "llama"}, LoadOptions(settings=settings))
    assert not (folder / MARKER).exists()
    assert "evil_glue" not in sys.modules


@pytest.mark.usefixtures("inside")
def test_trusted_adapter_file_imports_its_code(
    hf_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_evil(copy_ckpt(hf_ckpt, tmp_path / "trusted"))
    enter(folder, monkeypatch)
    policy = HFPolicyAdapter(".", chunk_size=4, trust_checkpoint_code=True)
    assert (folder / MARKER).exists()
    inp = make_input()
    expected = HFPolicyAdapter(hf_ckpt, chunk_size=4, predict=tiny_predict).act(inp)
    np.testing.assert_array_equal(policy.act(inp), expected)
    # the registry's hf: factory passes the user's switch on
    (folder / MARKER).unlink()
    sys.modules.pop("evil_glue", None)
    made = POLICIES.create("hf:.", "reach", chunk_size=4, trust_checkpoint_code=True)
    assert (folder / MARKER).exists() and made.chunk_size == 4


@pytest.mark.usefixtures("inside")
def test_a_registered_factory_takes_trust_from_its_user_or_the_run(
    hf_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_evil(copy_ckpt(hf_ckpt, tmp_path / "factory"))
    enter(folder, monkeypatch)
    with pytest.raises(ValueError, match="trust-checkpoint-code"):
        hf_policy_factory(folder)("reach", chunk_size=4, trust_checkpoint_code=False)
    assert not (folder / MARKER).exists()
    hf_policy_factory(folder)("reach", chunk_size=4, trust_checkpoint_code=True)  # the run's flag
    assert (folder / MARKER).exists()
    (folder / MARKER).unlink()
    sys.modules.pop("evil_glue", None)
    hf_policy_factory(folder, trust_checkpoint_code=True)("reach", trust_checkpoint_code=False)
    assert (folder / MARKER).exists()


@pytest.mark.usefixtures("inside")
def test_the_callers_own_predict_needs_no_trust(
    hf_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_evil(copy_ckpt(hf_ckpt, tmp_path / "own"))
    enter(folder, monkeypatch)
    # the user wrote this glue: it wins over the file's, and the file's is never imported
    policy = HFPolicyAdapter(".", chunk_size=4, predict=tiny_predict)
    assert policy.act(make_input()).shape == (4, 4)
    # the same with a dotted path the user chose
    ref = "tests.agents.hf_adapter.helpers:tiny_predict"
    assert HFPolicyAdapter(".", predict=ref).act(make_input()).shape == (8, 4)
    assert not (folder / MARKER).exists()


def test_rapid_eval_inside_the_folder_does_not_import_it(tmp_path: Path) -> None:
    folder = tmp_path / "evil-ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    write_evil(folder)
    exe = os.path.join(os.path.dirname(sys.executable), "rapid-eval")
    # "." on PYTHONPATH: the checkpoint's folder is importable, as the issue describes
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [exe, "--policy", "hf:.", "--tasks", "reach", "--agents", "edge-only", "--episodes", "1",
         "--max-episode-s", "0.5", "--image-size", "16", "--wandb", "disabled",
         "--out", str(tmp_path / "out")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert NEEDLE in proc.stderr
    assert not (folder / MARKER).exists()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"predict_kwargs": ["n_actions", 3]}, "predict_kwargs must be a JSON object, got list"),
        ({"predict_kwargs": 3}, "predict_kwargs must be a JSON object, got int"),
        ({"action_map": "identity"}, "action_map must be a JSON object, got str"),
        ({"action_map": {"xyz_scael": 2.0}}, r"action_map: unknown ActionMap fields \['xyz_sc"),
        ({"predict": ["evil_glue", "predict"]}, "predict must be a dotted path string"),
    ],
)
def test_bad_adapter_file_values_name_the_file(
    hf_ckpt: Path, tmp_path: Path, settings: dict[str, object], match: str
) -> None:
    path = copy_ckpt(hf_ckpt, tmp_path / "bad", settings)
    with pytest.raises(ValueError, match=match) as err:
        HFPolicyAdapter(path, predict=tiny_predict, trust_checkpoint_code=True)
    assert str(path / ADAPTER_FILE) in str(err.value)


def test_lerobot_checkpoint_refuses_a_predict_in_its_adapter_file(tmp_path: Path) -> None:
    path = write_lerobot(tmp_path / "act", TinyChunkPolicy(6, 7), CHUNK_CONFIG)
    (path / ADAPTER_FILE).write_text(json.dumps({"predict": EVIL_REF}))
    with pytest.raises(ValueError, match="trust-checkpoint-code"):
        HFPolicyAdapter(path)
    with pytest.raises(ValueError, match="applies to the transformers layout only"):
        HFPolicyAdapter(path, trust_checkpoint_code=True)


def test_trust_checkpoint_code_implies_trust_remote_code(tmp_path: Path) -> None:
    assert LoadOptions(trust_checkpoint_code=True).allows_remote_code
    assert LoadOptions(trust_remote_code=True).allows_remote_code
    assert not LoadOptions().allows_remote_code
    # an auto_map model class is refused without either switch, and the error names both
    config = {"architectures": ["EvilModel"], "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}
    with pytest.raises(ValueError, match=r"trust_remote_code=True \(or --trust-checkpoint-code\)"):
        _resolve_model_class(tmp_path, config, None, LoadOptions().allows_remote_code)
