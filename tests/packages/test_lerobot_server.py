"""``rapid-policy-server --lerobot DIR`` in LeRobot's own venv, driven from this one.

LeRobot cannot share this project's environment, so ``make`` builds ``.venv-lerobot`` (Python
3.12, LeRobot 0.6.1, the small rapid-policy-server package) and these tests cross the boundary
the way a user does: a checkpoint built there from LeRobot's config with random weights (no
download), served there over openpi's protocol, queried here by ``PolicyClient`` and by
``rapid-eval --policy openpi:ws://...``. The known-input tests pin the normalisation: with the
action head zeroed the model's normalised output is exactly 0, so the served actions must be
exactly the checkpoint's action mean; and what the model is fed must be the declared
``(x - mean) / std`` of the state and of each camera.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from rapid_policy_server import PolicyClient, ServerError
from rapid_policy_server.lerobot import assign_cameras, parse_camera_map

from rapid_env.cli.eval import main as rapid_eval

ROOT = Path(__file__).resolve().parents[2]
LEROBOT_PYTHON = Path(os.environ.get("RAPID_LEROBOT_PYTHON",
                                     ROOT / ".venv-lerobot" / "bin" / "python"))
SCRIPT = Path(__file__).with_name("lerobot_checkpoint.py")
sys.path.insert(0, str(SCRIPT.parent))
from lerobot_checkpoint import STATS  # noqa: E402  (numbers only; torch imported lazily below)

needs_lerobot = pytest.mark.skipif(
    not LEROBOT_PYTHON.exists(),
    reason=f"no LeRobot venv at {LEROBOT_PYTHON}: make lerobot-venv (make test builds it)")


def _lerobot(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LEROBOT_PYTHON), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two ACT checkpoints built from config in LeRobot's venv: random, and action head zeroed."""
    if not LEROBOT_PYTHON.exists():
        pytest.skip(f"no LeRobot venv at {LEROBOT_PYTHON}")
    root = tmp_path_factory.mktemp("lerobot")
    out = {"random": root / "act-random", "zero": root / "act-zero-head"}
    for name, flags in (("random", []), ("zero", ["--zero-head"])):
        done = _lerobot(str(SCRIPT), "make", str(out[name]), *flags)
        assert done.returncode == 0, done.stderr[-2000:]
    return out


@contextmanager
def served(checkpoint: Path, *flags: str) -> Iterator[str]:
    """``python -m rapid_policy_server --lerobot checkpoint`` on a free port; yields its URL."""
    proc = subprocess.Popen(
        [str(LEROBOT_PYTHON), "-m", "rapid_policy_server", "--lerobot", str(checkpoint),
         "--port", "0", "--max-requests", "2000", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines, found = [], None
        while found is None:  # LeRobot prints too; an empty line: it died
            line = proc.stdout.readline()
            lines.append(line)
            found = re.search(r"serving .* on (ws://127\.0\.0\.1:\d+)", line)
            if not line:
                proc.kill()
                pytest.fail(f"the LeRobot server did not start: {lines} "
                            f"{proc.stderr.read()[-2000:]}")
        yield found.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _obs(state: list[float], size: int = 48) -> dict[str, object]:
    rng = np.random.default_rng(0)
    return {"observation/image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "observation/wrist_image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            "observation/state": np.asarray(state, np.float32), "prompt": "reach the goal"}


@needs_lerobot
def test_served_actions_are_unnormalised_with_the_checkpoints_stats(
        checkpoints: dict[str, Path]) -> None:
    mean = np.asarray(STATS["action"]["mean"], np.float32)
    with served(checkpoints["zero"]) as url, PolicyClient(url) as client:
        meta = client.metadata
        reply = client.infer(_obs([0.3, 0.1, 0.0, 1.0]))
    assert meta["type"] == "act" and meta["n_action_steps"] == 6 and meta["chunk_size"] == 8
    assert meta["cameras"] == {"observation.images.image": "observation/image",
                               "observation.images.wrist_image": "observation/wrist_image"}
    assert meta["normalization"] == {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD",
                                     "ACTION": "MEAN_STD"}
    actions = np.asarray(reply["actions"])
    assert actions.shape == (6, 4)  # the checkpoint's n_action_steps rows of its 4-D action
    np.testing.assert_allclose(actions, np.tile(mean, (6, 1)), rtol=0, atol=1e-6)


@needs_lerobot
def test_the_model_is_fed_the_normalised_state_and_cameras(checkpoints: dict[str, Path]) -> None:
    done = _lerobot(str(SCRIPT), "check", str(checkpoints["random"]))
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    state = np.array([0.2, 0.5, 0.4, 1.5])
    expected = (state - STATS["observation.state"]["mean"]) / STATS["observation.state"]["std"]
    np.testing.assert_allclose(seen["state"], expected, atol=1e-5)
    np.testing.assert_allclose(seen["image"], [(0.2 - 0.5) / 0.25] * 3, atol=1e-5)  # resized
    np.testing.assert_allclose(seen["wrist"], [(0.8 - 0.4) / 0.2] * 3, atol=1e-5)
    assert seen["image_shape"] == [1, 3, 64, 64]  # sent 32x32, resized to the declared shape
    assert seen["actions_shape"] == [6, 4]


@needs_lerobot
def test_rapid_eval_drives_a_lerobot_checkpoint(checkpoints: dict[str, Path],
                                                tmp_path: Path) -> None:
    out = tmp_path / "run"
    with served(checkpoints["random"]) as url:
        code = rapid_eval(["--tasks", "reach,push", "--agents", "cloud-only,rapid",
                           "--episodes", "1", "--max-episode-s", "1.0", "--policy",
                           f"openpi:{url}", "--wandb", "disabled", "--quiet", "--out", str(out)])
    assert code == 0
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for r in records:
        assert r["fault"] is None and r["invalid"] is None and r["faults"] == 0
        assert r["lost_requests"] == 0
        assert r["inferences"] > 0 and r["server_ms_mean"] > 0


@needs_lerobot
def test_a_wrong_state_width_is_the_policys_fault(checkpoints: dict[str, Path]) -> None:
    with served(checkpoints["random"]) as url, PolicyClient(url) as client:
        with pytest.raises(ServerError, match="wants 4"):
            client.infer(_obs([0.0] * 8))


@needs_lerobot
def test_an_absent_device_is_one_line_and_exit_2(checkpoints: dict[str, Path]) -> None:
    import torch

    if torch.cuda.is_available():  # pragma: no cover - a GPU machine serves it
        pytest.skip("this machine has CUDA")
    done = _lerobot("-m", "rapid_policy_server", "--lerobot", str(checkpoints["random"]),
                    "--device", "cuda:0", "--port", "0", timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device 'cuda:0' is not available" in lines[0], lines


def test_cameras_are_matched_by_name_or_said() -> None:
    keys = ["observation.images.top", "observation.images.wrist"]
    assert assign_cameras(keys, {}) == {"observation.images.top": "observation/image",
                                        "observation.images.wrist": "observation/wrist_image"}
    three = [*keys, "observation.images.side"]
    with pytest.raises(ValueError, match=r"have no source.*--camera observation\.images\.top="):
        assign_cameras(three, {})
    said = parse_camera_map(["observation.images.side=observation/wrist_image",
                             "observation.images.top=observation/image"])
    assert assign_cameras(["observation.images.top", "observation.images.side"], said) == said
    with pytest.raises(ValueError, match="not camera features"):
        assign_cameras(keys, {"observation.images.nope": "observation/image"})
    with pytest.raises(ValueError, match="expected KEY=OPENPI_KEY"):
        parse_camera_map(["observation.images.top=observation/depth"])


def test_bad_lerobot_dir_is_one_line_and_exit_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from rapid_policy_server.cli import main

    assert main(["--lerobot", str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no LeRobot checkpoint there" in err
    (tmp_path / "config.json").write_text("{}")  # this venv has no LeRobot: said, not raised
    assert main(["--lerobot", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs LeRobot installed" in err
