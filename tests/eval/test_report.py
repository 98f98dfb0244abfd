"""OUT/report.html: built from the store alone, self-contained, rebuilt by rapid-report."""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from rapid_env.cli.eval import build_parser
from rapid_env.cli.eval import main as rapid_eval
from rapid_env.cli.report import main
from rapid_env.eval import report as report_module
from rapid_env.eval.report import reconstruct_command, write_report

SWEEP = ["--tasks", "reach", "--agents", "rapid,cloud-only", "--noise", "clean,gaussian_noise:3",
         "--links", "wifi", "--episodes", "1", "--policy", "expert", "--max-episode-s", "0.5",
         "--image-size", "16", "--wandb", "disabled", "--quiet"]
IMG = '<img src="data:image/png;base64,'


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert rapid_eval([*SWEEP, "--out", str(out)]) == 0
    return out


def test_the_sweep_writes_a_self_contained_report(sweep: Path) -> None:
    page = (sweep / "report.html").read_text(encoding="utf-8")
    assert page.count(IMG) >= 5
    assert '<table class=summary>' in page
    for cell in ("rapid", "cloud-only", "gaussian_noise:3", "wifi"):
        assert f"<td>{cell}</td>" in page
    assert "success [95 % CI]" in page and "offloads / s" in page
    manifest = json.loads((sweep / "manifest.json").read_text())
    assert f"<pre>{html.escape(manifest['command'])}</pre>" in page  # the command as typed
    for shown in ("expert", "openvla-7b", "jetson-agx-orin", "a100", "1000–1000"):
        assert shown in page
    # nothing is fetched: no external scripts, style sheets, fonts or images
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "@import" not in page and "url(" not in page


def test_rapid_report_rebuilds_it_from_the_records_alone(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = (sweep / "report.html").read_bytes()
    for derived in ("report.html", "summary.json", "summary.csv"):
        (sweep / derived).unlink()
    capsys.readouterr()
    assert main([str(sweep)]) == 0
    assert capsys.readouterr().out.strip() == str(sweep / "report.html")
    assert (sweep / "report.html").read_bytes() == written  # no clock in the page


def test_bad_out_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no episodes.jsonl" in err
    assert main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "episodes.jsonl").write_text('{"task": "reach"}\n')  # no agent, no success
    assert main([str(tmp_path)]) == 2
    assert "lacks" in capsys.readouterr().err


def test_no_report_flag(tmp_path: Path) -> None:
    args = [*SWEEP, "--agents", "cloud-only", "--noise", "clean"]
    assert rapid_eval([*args, "--no-report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "summary.json").exists()
    assert not (tmp_path / "report.html").exists()


def _store(out: Path, manifest: dict | None = None, torn: bool = False) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    recs = []
    for agent in ("rapid", "rapid(high_threshold=6)"):
        for seed in (1000, 1001):
            recs.append({"task": "reach", "agent": agent, "noise": "clean", "link": "wifi",
                         "seed": seed, "success": seed == 1000, "sim_time_s": 2.0,
                         "offloads": 4, "latency_ms_mean": 140.0 + seed % 2,
                         "latency_ms_p95": None, "rms_jerk": 100.0, "stall_steps": 2,
                         "edge_ms_mean": 0.0, "uplink_ms_mean": 50.0, "cloud_ms_mean": 72.0,
                         "downlink_ms_mean": 16.0, "fault": "nan_action" if seed == 1001 else None})
    lines = [json.dumps(r) for r in recs] + [json.dumps(recs[0])]  # a duplicated episode
    text = "\n".join(lines) + "\n" + ('{"task": "re' if torn else "")
    (out / "episodes.jsonl").write_text(text)
    if manifest is not None:
        (out / "manifest.json").write_text(json.dumps(manifest))
    return out


MANIFEST = {
    "format": "rapid-env-sweep/1",
    "sweep": {"tasks": ["reach"], "agents": ["rapid", "rapid(high_threshold=6)"],
              "noises": ["clean"], "links": ["wifi"], "episodes": 2, "seed": 1000,
              "env": {"policy": "expert", "profile": "openvla-7b", "edge": "jetson-agx-orin",
                      "cloud": "a100", "image_size": 16, "control_hz": 20.0, "chunk_size": 8,
                      "max_episode_s": 0.5,
                      "control": {"hold_policy": "hold", "align": "executed"},
                      "trust_checkpoint_code": False}},
    "n_episodes": 4,
}


def test_a_store_without_a_command_gets_one_reconstructed(tmp_path: Path) -> None:
    out = _store(tmp_path / "out", MANIFEST, torn=True)
    page = write_report(out).read_text(encoding="utf-8")
    command = reconstruct_command(MANIFEST, out)
    assert shlex.split(command)[0] == "rapid-eval"
    args = build_parser().parse_args(shlex.split(command)[1:])  # it parses back to the sweep
    assert args.agents == ("rapid", "rapid(high_threshold=6)")
    assert (args.policy, args.image_size, args.max_episode_s, args.episodes) == (
        "expert", 16, 0.5, 2)
    assert "--chunk-size" not in command  # defaults left out
    assert "reconstructed" in page
    assert "1 duplicated record(s) counted once" in page
    assert "1 unreadable line(s)" in page
    assert "<td class=n bad>1</td>" in page  # the fault is counted
    assert page.count(IMG) >= 5


def test_a_store_without_a_manifest_still_reports(tmp_path: Path) -> None:
    page = write_report(_store(tmp_path)).read_text(encoding="utf-8")
    assert "no <code>manifest.json</code>" in page
    assert "<code>rapid(high_threshold=6)</code>" in page  # the agents the records hold


def test_videos_and_frames_are_embedded_or_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _store(tmp_path, MANIFEST)
    cell = out / "videos" / "reach" / "rapid" / "clean" / "wifi"
    cell.mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 0, 0)).save(cell / "seed1000.gif")
    Image.new("RGB", (8, 8), (0, 200, 0)).save(cell / "seed1000.png")
    (cell / "seed1000.mp4").write_bytes(b"\0" * 64)
    (cell / "seed1001.mp4").write_bytes(b"\0" * 2048)
    (out / "frames").mkdir()
    Image.new("RGB", (8, 8)).save(out / "frames" / "tick5.png")
    monkeypatch.setattr(report_module, "MAX_EMBED_BYTES", 1024)
    page = write_report(out).read_text(encoding="utf-8")
    assert '<img src="data:image/gif;base64,' in page
    assert '<video controls muted loop preload="metadata" src="data:video/mp4;base64,' in page
    assert '<a href="videos/reach/rapid/clean/wifi/seed1001.mp4">' in page  # too big: linked
    assert "frames/tick5.png" in page and "videos/reach/rapid/clean/wifi/seed1000.png" in page
