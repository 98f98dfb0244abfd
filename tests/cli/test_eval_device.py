"""rapid-eval --device/--dtype: refused before any episode, recorded, and the defaults unchanged."""

from __future__ import annotations

import json

import pytest

from rapid_env.cli.eval import main
from rapid_env.config import EnvConfig
from rapid_env.eval.jobs import EpisodeJob

SMALL = ["--tasks", "reach", "--agents", "rapid", "--episodes", "1", "--max-episode-s", "1",
         "--wandb", "disabled", "--quiet", "--no-report"]


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    return err


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3", "mps"])
def test_an_absent_device_is_one_line_naming_it_and_what_is_here(tmp_path, capsys, device):
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    mps = getattr(torch.backends, "mps", None)
    if device == "mps" and mps is not None and mps.is_available():
        pytest.skip("this machine has mps")
    err = _refused(capsys, [*SMALL, "--device", device, "--out", str(tmp_path / "r")])
    assert f"device={device!r}" in err and "available: cpu" in err
    assert not (tmp_path / "r").exists()  # refused while parsing: nothing written


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:", "CPU", "cpu:0", ""])
def test_a_malformed_device_names_the_allowed_forms(tmp_path, capsys, device):
    err = _refused(capsys, [*SMALL, "--device", device, "--out", str(tmp_path / "r")])
    assert f"device={device!r}" in err and "allowed: cpu, cuda, cuda:N, mps" in err


def test_an_unknown_dtype_names_the_allowed_ones(tmp_path, capsys):
    err = _refused(capsys, [*SMALL, "--dtype", "half", "--out", str(tmp_path / "r")])
    assert "'half'" in err and "float32" in err and "bfloat16" in err and "float16" in err


def test_a_policy_without_a_torch_model_refuses_a_dtype_it_would_not_honour(tmp_path, capsys):
    err = _refused(capsys, [*SMALL, "--policy", "expert", "--dtype", "bfloat16",
                            "--out", str(tmp_path / "r")])
    assert "'expert'" in err and "dtype='bfloat16'" in err and "allowed:" in err


@pytest.mark.parametrize(("field", "value"), [("device", "gpu"), ("device", 0),
                                              ("dtype", "fp16"), ("dtype", None)])
def test_env_config_checks_the_forms(field, value):
    with pytest.raises(ValueError, match=f"^{field}=.*; allowed: "):
        EnvConfig(**{field: value})


def test_default_device_and_dtype_leave_the_episode_keys_unchanged():
    # keys computed by the code before --device/--dtype existed: stored sweeps resume as before
    job = EpisodeJob(("reach", "clean", "constant:20:40", "rapid"), 1000, EnvConfig())
    assert job.key() == "ffc587470af3704d"
    cfg = EnvConfig(task="push", policy="expert", link="wifi", device="cpu", dtype="float32")
    assert EpisodeJob(("push", "clean", "wifi", "rapid"), 7, cfg).key() == "d3d7b87329634af1"
    assert "device" not in cfg.to_dict() and "dtype" not in cfg.to_dict()
    bf16 = EpisodeJob(("reach", "clean", "constant:20:40", "rapid"), 1000,
                      EnvConfig(dtype="bfloat16"))
    assert bf16.key() != job.key()  # another precision is another episode
    assert bf16.head()["dtype"] == "bfloat16" and job.head()["device"] == "cpu"


def test_a_bfloat16_episode_of_chunk_regress_is_recorded_as_such(tmp_path):
    out = tmp_path / "bf16"
    assert main([*SMALL, "--policy", "chunk-regress", "--dtype", "bfloat16",
                 "--out", str(out)]) == 0
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert (record["device"], record["dtype"]) == ("cpu", "bfloat16")
    assert record["steps"] > 0 and record["inferences"] > 0 and record.get("invalid") is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["device"], manifest["dtype"]) == ("cpu", "bfloat16")
    assert manifest["sweep"]["env"]["dtype"] == "bfloat16"
    assert all(cell["env"]["dtype"] == "bfloat16" for cell in manifest["cells"])
