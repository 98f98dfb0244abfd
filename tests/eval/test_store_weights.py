"""A store records the policy's weights and refuses to resume or extend with other weights."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from rapid_env.agents.policy_digest import policy_digest
from rapid_env.agents.vla import shipped
from rapid_env.cli.eval import main as rapid_eval
from rapid_env.config import EnvConfig
from rapid_env.eval.jobs import KEY_FIELD, SweepSpec, plan
from rapid_env.eval.report_tables import config_table
from rapid_env.eval.store import POLICY_DIGEST_FIELD, ResultsStore, StoreError

BASE = EnvConfig(policy="expert", image_size=16, max_episode_s=0.5)
SPEC = SweepSpec(tasks=("reach",), agents=("cloud-only",), episodes=1, seed=1000, base=BASE)


def with_policy(policy: str) -> SweepSpec:
    return replace(SPEC, base=replace(BASE, policy=policy))


def store_one(out: Path, spec: SweepSpec) -> dict:
    """Open a store for ``spec``, store its first episode, close it; the manifest."""
    with ResultsStore(out) as store:
        store.open(spec)
        job = plan(spec)[0]
        store.append({**job.head(), KEY_FIELD: job.key(), "success": True})
    return json.loads((out / "manifest.json").read_text())


def retrain(folder: Path) -> None:
    """New weights in the same folder: one byte of the stored tensors changes."""
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


def test_a_new_store_records_the_digest_and_the_expert_none(tmp_path: Path) -> None:
    assert store_one(tmp_path / "vla", with_policy("chunk-regress@v1"))[POLICY_DIGEST_FIELD] == (
        policy_digest("chunk-regress@v1"))
    manifest = store_one(tmp_path / "expert", SPEC)
    assert POLICY_DIGEST_FIELD in manifest and manifest[POLICY_DIGEST_FIELD] is None


def test_a_checkpoint_trained_again_in_place_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(shipped.shipped_checkpoint("chunk-regress@v1"), folder)
    spec = with_policy(f"ckpt:{folder}")
    had = store_one(tmp_path / "out", spec)[POLICY_DIGEST_FIELD]
    with ResultsStore(tmp_path / "out") as same:  # the same weights resume
        same.open(spec)
        assert same.warnings == [] and not same.pending(plan(spec))
    retrain(folder)
    now = policy_digest(f"ckpt:{folder}")
    assert now is not None and now != had
    for again, mode in ((spec, "resume"), (replace(spec, episodes=2), "extend")):
        with pytest.raises(StoreError) as err, ResultsStore(tmp_path / "out") as store:
            store.open(again, mode)  # type: ignore[arg-type]
        message = str(err.value)
        assert "\n" not in message and had in message and now in message
        assert "new --out" in message and "@vN" in message
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())[
        POLICY_DIGEST_FIELD] == had  # the refused open wrote nothing


def test_an_upgraded_plain_name_points_to_its_pinned_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "checkpoints"  # the package's checkpoints, before and after an upgrade
    pinned = [f"chunk-regress@{v}" for v in shipped.VERSIONS["chunk-regress"]]
    newest = pinned[-1]  # what the plain name loads today
    for name in ("chunk-regress", *pinned):
        shutil.copytree(shipped.shipped_checkpoint(name), root / name)
    monkeypatch.setattr(shipped, "CHECKPOINT_ROOT", root)
    spec = with_policy("chunk-regress")
    store_one(tmp_path / "out", spec)
    retrain(root / "chunk-regress")  # the plain name now loads a newer checkpoint
    with pytest.raises(StoreError, match=f"--policy {newest} to run the stored weights"):
        ResultsStore(tmp_path / "out").open(spec)


def test_a_manifest_without_a_digest_resumes_with_a_warning(tmp_path: Path) -> None:
    for policy, warned in (("chunk-regress@v1", 1), ("expert", 0)):
        out = tmp_path / policy
        spec = with_policy(policy)
        manifest = store_one(out, spec)
        del manifest[POLICY_DIGEST_FIELD]  # written before stores recorded it
        (out / "manifest.json").write_text(json.dumps(manifest))
        with ResultsStore(out) as store:
            store.open(spec)
            assert not store.pending(plan(spec))  # resumed: the stored episode counts
            assert len(store.warnings) == warned
            assert all("\n" not in w and "cannot check" in w for w in store.warnings)
        # not given today's digest: the stored episode's weights stay unknown
        assert POLICY_DIGEST_FIELD not in json.loads((out / "manifest.json").read_text())


def test_the_config_table_shows_the_digest(tmp_path: Path) -> None:
    manifest = store_one(tmp_path / "vla", with_policy("chunk-regress@v1"))
    assert f"weights <code>{manifest[POLICY_DIGEST_FIELD]}</code>" in config_table(manifest, [])
    assert "weights" not in config_table(store_one(tmp_path / "expert", SPEC), [])


def test_rapid_eval_warns_on_an_old_manifest_and_refuses_other_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["--tasks", "reach", "--agents", "cloud-only", "--episodes", "1", "--policy",
            "chunk-regress@v1", "--max-episode-s", "0.1", "--wandb", "disabled", "--quiet",
            "--no-report", "--out", str(out)]
    assert rapid_eval(argv) == 0  # one real episode of the pinned checkpoint
    path = out / "manifest.json"
    manifest = json.loads(path.read_text())
    digest = manifest.pop(POLICY_DIGEST_FIELD)
    assert digest == policy_digest("chunk-regress@v1")
    path.write_text(json.dumps(manifest))  # as a store written before digests
    capsys.readouterr()
    assert rapid_eval(argv) == 0
    warned = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert len(warned) == 1 and "cannot check" in warned[0] and digest in warned[0]
    path.write_text(json.dumps({**manifest, POLICY_DIGEST_FIELD: "0123456789abcdef"}))
    assert rapid_eval(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "0123456789abcdef" in err and digest in err
