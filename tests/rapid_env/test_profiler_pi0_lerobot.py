"""The shipped ``pi0`` profile against LeRobot's real ``PI0Policy`` (in LeRobot's own venv).

``rapid-profile`` rebuilds ``pi0`` from the LeRobot pi0 config shipped in
``rapid_env/data/model_configs/pi0`` (tests/cli/test_profile.py); here LeRobot itself builds the
model from that config on the meta device and its parameter count must be the profile's resident
weights exactly, part by part, but for the two language-model heads LeRobot builds and pi0 never
runs. Skipped, saying why, without ``.venv-lerobot`` (``make lerobot-venv``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from rapid_env.cost.profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
LEROBOT_PYTHON = Path(os.environ.get("RAPID_LEROBOT_PYTHON",
                                     ROOT / ".venv-lerobot" / "bin" / "python"))
SCRIPT = Path(__file__).with_name("lerobot_pi0_counts.py")
BF16 = 2  # bytes per parameter in every built-in profile


@pytest.mark.skipif(not LEROBOT_PYTHON.exists(),
                    reason=f"no LeRobot venv at {LEROBOT_PYTHON}: make lerobot-venv")
def test_lerobots_pi0_has_the_profiles_parameters() -> None:
    done = subprocess.run([str(LEROBOT_PYTHON), str(SCRIPT),
                           str(ROOT / "rapid_env" / "data" / "model_configs" / "pi0")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lerobot = json.loads(done.stdout.strip().splitlines()[-1])["parts"]
    ours: Counter[str] = Counter()
    for block in load_profile("pi0").blocks:
        ours[block.name.split(".")[0]] += round(block.weight_bytes / BF16)
    for part in ("vision", "projector", "llm"):
        assert ours[part] == lerobot[part], part
    # the profile's expert blocks hold the expert and the state/action/time projections
    assert ours["expert"] == lerobot["expert"] + lerobot["projections"]
    assert sum(ours.values()) == sum(v for k, v in lerobot.items() if k != "lm_heads")
    assert lerobot["lm_heads"] > 0  # built by LeRobot, never run by pi0: not in the profile
