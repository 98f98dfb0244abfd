"""The comparison tables in docs/results/ are what benchmarks/compare_report.py prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "compare_report.py"
RESULTS = ROOT / "docs" / "results"


@pytest.mark.parametrize("name", ["comparison", "ablation", "comparison_v2"])
def test_shipped_report_is_regenerated_from_the_shipped_records(name: str) -> None:
    # regenerate with: python benchmarks/compare_report.py docs/results/<name>_episodes.jsonl.gz
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(RESULTS / f"{name}_episodes.jsonl.gz")],
        check=True, capture_output=True, text=True,
    ).stdout
    assert out == (RESULTS / f"{name}_report.md").read_text()


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(missing)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "nope.jsonl" in proc.stderr
