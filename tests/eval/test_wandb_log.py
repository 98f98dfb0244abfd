from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rapid_env.eval import wandb_log
from rapid_env.eval.summary import summarize
from rapid_env.eval.wandb_log import CONFIG_FILE, WandbLogger, api_key_configured, resolve_mode


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Isolate from the machine: no key, an empty home, no netrc, no inherited mode."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


def episode(seed: int, **overrides: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "task": "reach",
        "agent": "rapid",
        "noise": "none",
        "link": "wifi",
        "seed": seed,
        "success": seed != 1,
        "steps": 50,
        "sim_time_s": 2.5,
        "inferences": 5,
        "offloads": 2,
        "latency_ms_mean": 42.5,
        "latency_ms_p95": 80.0,
        "bytes_up": 123456,
        "bytes_down": 789,
        "stall_steps": 3,
        "rms_jerk": 1.25,
        "ldlj": -7.5,
        "sparc": float("nan"),
        "wall_time_s": 0.2,
        "fault": None if seed != 2 else "NaN action",
    }
    rec.update(overrides)
    return rec


def test_resolve_mode_without_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert not api_key_configured()
    assert resolve_mode(None) == "offline"
    assert resolve_mode("offline") == "offline"
    assert resolve_mode("disabled") == "disabled"
    assert capsys.readouterr().err == ""
    assert resolve_mode("online") == "offline"
    assert "no API key" in capsys.readouterr().err


def test_resolve_mode_with_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode(None) == "online"
    assert resolve_mode("online") == "online"
    assert resolve_mode("offline") == "offline"


def test_resolve_mode_with_netrc(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc_file = no_credentials / ".netrc"
    netrc_file.write_text("machine example.org\n  login user\n  password secret\n")
    netrc_file.chmod(0o600)
    assert resolve_mode(None) == "offline"  # another host's entry does not count
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert resolve_mode(None) == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org:8443")
    assert resolve_mode(None) == "offline"  # key for the cloud, not for the private server


def test_resolve_mode_env_default_and_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode(None) == "disabled"
    with pytest.raises(ValueError, match=r"'shared'.*offline, online, disabled"):
        resolve_mode("shared")


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    logger = WandbLogger("disabled", project="p", config={"a": 1}, out_dir=out, name=None)
    logger.log_episode(episode(0))
    logger.finish(summarize([episode(0)]))
    logger.finish([])  # idempotent
    assert logger.run_dir is None
    assert not out.exists()


def test_offline_run_writes_a_real_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    config = {"tasks": ["reach-v3"], "agents": ["rapid"], "seeds": 3, "marker": "cfg-9f3a1c"}
    records = [episode(s) for s in range(3)]
    with WandbLogger(
        "online", project="rapid-env-test", config=config, out_dir=out, name="unit"
    ) as logger:
        assert logger.mode == "offline"  # no key: fell back
        for rec in records:
            logger.log_episode(rec)
        logger.finish(summarize(records))
    run_dir = logger.run_dir
    assert run_dir is not None and run_dir.parent == out / "wandb"
    assert run_dir.name.startswith("offline-run-")
    (log_file,) = run_dir.glob("*.wandb")
    raw = log_file.read_bytes()
    assert b"cfg-9f3a1c" in raw  # the config went into the run's own log
    assert b"latency_ms_mean" in raw
    copy = json.loads((run_dir / "files" / CONFIG_FILE).read_text())
    assert copy == config
    tables = list((run_dir / "files" / "media" / "table").glob("*.table.json"))
    names = sorted(p.name.split("_")[0] for p in tables)
    assert names == ["episodes", "summary"]
    episodes_table = json.loads(
        next(p for p in tables if p.name.startswith("episodes")).read_text()
    )
    assert len(episodes_table["data"]) == 3
    assert "fault" in episodes_table["columns"]


def test_exception_inside_block_closes_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with WandbLogger("offline", project="p", config={}, out_dir=tmp_path, name=None) as lg:
            lg.log_episode(episode(0))
            raise RuntimeError("boom")
    assert lg.run_dir is not None and list(lg.run_dir.glob("*.wandb"))
    with pytest.raises(RuntimeError, match="after finish"):
        lg.log_episode(episode(1))


def test_scalar_conversion() -> None:
    import numpy as np

    assert wandb_log._scalar(True) == 1
    assert wandb_log._scalar(np.float32(2.5)) == 2.5
    assert wandb_log._scalar("text") is None
    assert wandb_log._scalar(None) is None
    assert math.isnan(wandb_log._scalar(float("nan")))  # type: ignore[arg-type]
