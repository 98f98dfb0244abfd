"""Plugins: names registered from outside the repository, by ``--import`` and by entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from rapid_env import registry
from rapid_env.agents.registry import DECIDERS, POLICIES
from rapid_env.cli.eval import main
from rapid_env.registry import PluginError, UnknownNameError
from rapid_env.tasks.suite import MT10, TASKS

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins_example"
ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--quiet", "--no-report", "--wandb", "disabled"]


@pytest.fixture(autouse=True)
def _registries_restored():
    """Leave the process's registries and modules as found: a plugin registered here must not
    leak into later tests (the registries are process-wide, as the tool's are)."""
    fields = ("_factories", "_prefixes", "_forms", "_extras")
    saved = [(reg, {f: dict(getattr(reg, f)) for f in fields}) for reg in (DECIDERS, POLICIES)]
    before = set(sys.modules)
    yield
    for reg, state in saved:
        for f, value in state.items():
            setattr(reg, f, value)
    roots = (str(EXAMPLE), tempfile.gettempdir())
    for name in set(sys.modules) - before:  # imported from the example or a test's tmp folder
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(roots):
            del sys.modules[name]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def test_import_flag_registers_a_policy_and_a_decider_for_a_sweep(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    out = tmp_path / "run"
    code = main(["--import", "mypkg.mypolicy", "--policy", "go-to-goal", "--tasks", "reach",
                 "--agents", "refill-at,refill-at(threshold=0)", "--links", "ideal",
                 "--episodes", "2", "--out", str(out), *QUIET])
    assert code == 0, capsys.readouterr().err
    recs = _records(out)
    assert sorted(r["agent"] for r in recs) == ["refill-at"] * 2 + ["refill-at(threshold=0)"] * 2
    assert all(r["success"] and r["fault"] is None for r in recs)  # it really reaches the goal
    # a later spec of the registered decider is validated like any built-in one
    with pytest.raises(ValueError, match="threshold=-1; allowed: >= 0"):
        DECIDERS.create("refill-at(threshold=-1)")


def test_an_unimportable_module_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["--import", "no_such_pkg.mod", "--tasks", "reach", "--out", str(tmp_path),
                 *QUIET])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "--import no_such_pkg.mod: ModuleNotFoundError" in err


def test_without_the_import_the_name_is_unknown_and_named(tmp_path, capsys):
    code = main(["--policy", "no-such-policy", "--tasks", "reach", "--agents", "rapid",
                 "--links", "ideal", "--episodes", "1", "--out", str(tmp_path), *QUIET])
    assert code == 2
    assert "unknown policy 'no-such-policy'; allowed: expert" in capsys.readouterr().err


@pytest.mark.slow
def test_spawned_workers_import_the_module_too(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
           "MUJOCO_GL": "egl", "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "rapid_env.cli.eval", "--import", "mypkg.mypolicy",
         "--policy", "go-to-goal", "--agents", "refill-at", "--tasks", "reach",
         "--links", "ideal", "--episodes", "2", "--workers", "2", "--out", str(out), *QUIET],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    recs = _records(out)
    assert len(recs) == 2 and all(r["success"] for r in recs)  # no episode_error in a worker


# ----------------------------------------------------------------------------- entry points


def _dist(root: Path, group: str, value: str) -> None:
    """A distribution on ``root`` (a sys.path entry) with one entry point; no pip needed."""
    info = root / f"myplug_{uuid.uuid4().hex[:8]}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {info.name[:-15]}\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\nmine = {value}\n")


@pytest.fixture
def fresh_groups(monkeypatch):
    """Plugin groups not yet loaded in this process (each test loads them anew)."""
    monkeypatch.setattr(registry, "_LOADED_GROUPS", set())


def test_entry_points_load_lazily_on_the_first_unknown_name(tmp_path, monkeypatch, fresh_groups):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"epmod_{tag}.py").write_text(
        "from rapid_env.plugins import register_policy, register_task\n"
        "from rapid_env.agents.expert import ScriptedExpert\n"
        "def register():\n"
        f"    register_policy('ep-expert-{tag}',\n"
        "        lambda task, chunk_size=8, **_: ScriptedExpert('reach-v3', chunk_size))\n"
        f"def tasks():\n"
        f"    register_task('button-{tag}', 'button-press-v3', 'press the button')\n"
    )
    _dist(tmp_path, "rapid_env.policies", f"epmod_{tag}:register")
    _dist(tmp_path, "rapid_env.tasks", f"epmod_{tag}:tasks")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert f"ep-expert-{tag}" not in POLICIES.names()  # nothing loaded before it is asked for
    policy = POLICIES.create(f"ep-expert-{tag}", "reach", chunk_size=4)
    assert policy.chunk_size == 4
    assert TASKS.create(f"button-{tag}").env_key == "button-press-v3"
    assert TASKS.names()[:10] == [t.name for t in MT10]  # MT10 first, a plugin's after


def test_a_broken_entry_point_is_one_line_naming_it(tmp_path, monkeypatch, fresh_groups):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"broken_{tag}.py").write_text("raise RuntimeError('half-installed')\n")
    _dist(tmp_path, "rapid_env.deciders", f"broken_{tag}")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert DECIDERS.create("rapid").name == "rapid"  # a known name never loads plugins
    with pytest.raises(PluginError) as info:
        DECIDERS.check("not-a-decider")
    msg = str(info.value)
    assert "\n" not in msg
    assert f"plugin 'mine' (rapid_env.deciders = broken_{tag}, from myplug_" in msg
    assert msg.endswith("failed to load: RuntimeError: half-installed")


def test_rapid_eval_loads_entry_points_at_start(tmp_path, monkeypatch, fresh_groups, capsys):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"broken_{tag}.py").write_text("import no_such_dependency_xyz\n")
    _dist(tmp_path, "rapid_env.policies", f"broken_{tag}")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["--tasks", "reach", "--out", str(tmp_path / "o"), *QUIET])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"rapid_env.policies = broken_{tag}" in err and "ModuleNotFoundError" in err


def test_unknown_names_suggest_the_closest(monkeypatch):
    with pytest.raises(UnknownNameError, match=r"; did you mean 'rapid'\?$"):
        DECIDERS.check("rapdi")
    with pytest.raises(UnknownNameError, match=r"did you mean 'reach'\?$"):
        TASKS.check("reech")


def test_a_broken_plugin_is_not_swallowed_by_in(tmp_path, monkeypatch, fresh_groups):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"broken_{tag}.py").write_text("raise ImportError('no torch here')\n")
    _dist(tmp_path, "rapid_env.deciders", f"broken_{tag}")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="ImportError: no torch here"):
        "not-a-decider(x=1)" in DECIDERS  # noqa: B015
