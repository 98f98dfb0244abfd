"""Every console script answers ``--help`` without loading the heavy stack.

Speed is measured in benchmarks/bench_help.py; here we assert the behaviour that makes it fast:
``--help`` imports none of MuJoCo, Meta-World, torch, transformers, W&B, matplotlib or gRPC, and the
page lists examples and defaults.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
HEAVY = ("mujoco", "metaworld", "torch", "transformers", "wandb", "matplotlib", "grpc", "scipy")

PROBE = """
import runpy, sys
sys.argv = [{prog!r}, "--help"]
try:
    runpy.run_module({module!r}, run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code or 0)
"""


def test_every_console_script_lives_in_the_cli_package() -> None:
    assert len(SCRIPTS) >= 7
    for name, target in SCRIPTS.items():
        assert target.startswith("rapid_env.cli."), (name, target)
        assert target.endswith(":main"), (name, target)


@pytest.mark.parametrize("prog", sorted(SCRIPTS))
def test_help_is_light_and_shows_examples(prog: str) -> None:
    module = SCRIPTS[prog].split(":")[0]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(prog=prog, module=module, heavy=HEAVY)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout, proc.stderr[-3000:]
    assert "HEAVY=\n" in proc.stdout, f"{prog} --help imported: {proc.stdout.splitlines()[-1]}"
