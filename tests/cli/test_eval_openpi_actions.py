"""``rapid-eval --policy openpi:ws://...?actions=...``: the map is part of each record's key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rapid_policy_server import PolicyServer

from rapid_env.cli.eval import main

FAST = ["--tasks", "reach", "--max-episode-s", "0.5", "--agents", "cloud-only", "--episodes", "1",
        "--wandb", "disabled", "--quiet"]


class Still:
    """Answers every observation with a chunk of zero motion, gripper open."""

    def predict(self, obs: dict[str, object]) -> np.ndarray:
        return np.tile(np.array([0.0, 0.0, 0.0, -1.0], np.float32), (8, 1))


def test_the_action_map_names_the_records_policy(tmp_path: Path) -> None:
    amap = tmp_path / "map.json"
    amap.write_text(json.dumps({"native_width": 4, "xyz_scale": 2.0}))
    records = {}
    with PolicyServer(Still(), port=0).start() as server:
        for name in (f"openpi:{server.url}", f"openpi:{server.url}?actions={amap}"):
            out = tmp_path / str(len(records))
            assert main([*FAST, "--policy", name, "--out", str(out)]) == 0
            (records[name],) = [json.loads(line) for line in
                                (out / "episodes.jsonl").read_text().splitlines()]
    plain, mapped = records.values()
    assert mapped["policy"].endswith(f"?actions={amap}") and mapped["faults"] == 0
    assert plain["episode_key"] != mapped["episode_key"]
