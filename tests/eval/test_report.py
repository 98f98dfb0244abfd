"""OUT/report.html: built from the store alone, self-contained, rebuilt by rapid-report."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from rapid_env.cli.eval import build_parser
from rapid_env.cli.eval import main as rapid_eval
from rapid_env.cli.report import main
from rapid_env.eval import report_media
from rapid_env.eval.paired import newcombe_paired_interval
from rapid_env.eval.report import reconstruct_command, write_report
from rapid_env.eval.rounding import ci_parts, round_to_ci

SWEEP = ["--tasks", "reach", "--agents", "rapid,cloud-only", "--noise", "clean,gaussian_noise:3",
         "--links", "wifi", "--episodes", "2", "--policy", "expert", "--max-episode-s", "0.5",
         "--image-size", "16", "--wandb", "disabled", "--quiet"]
IMG = '<img src="data:image/png;base64,'


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert rapid_eval([*SWEEP, "--videos", "1", "--out", str(out)]) == 0
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
    for shown in ("expert", "openvla-7b", "jetson-agx-orin", "a100", "1000–1001"):
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
    Image.new("RGB", (8, 8), (200, 0, 0)).save(cell / "old.gif")  # no record names it
    Image.new("RGB", (8, 8), (0, 200, 0)).save(cell / "seed1000.png")
    (cell / "seed1000.mp4").write_bytes(b"\0" * 64)
    (cell / "seed1001.mp4").write_bytes(b"\0" * 2048)
    (out / "frames").mkdir()
    Image.new("RGB", (8, 8)).save(out / "frames" / "tick5.png")
    monkeypatch.setattr(report_media, "MAX_EMBED_BYTES", 1024)
    page = write_report(out).read_text(encoding="utf-8")
    assert '<video controls muted loop preload="metadata" src="data:video/mp4;base64,' in page
    assert '<img src="data:image/gif;base64,' in page
    rel = "videos/reach/rapid/clean/wifi"
    assert f'<a class=linked href="{rel}/seed1001.mp4">' in page  # too big: linked
    for path in (*out.rglob("*.mp4"), *out.rglob("*.gif"), *out.rglob("*.png")):
        assert f'href="{path.relative_to(out).as_posix()}"' in page  # every file reachable
    # the recorded episodes first, by seed, captioned; then the files no record names
    order = [page.index(text) for text in (
        "reach / rapid / clean / wifi / seed 1000 / success",
        "reach / rapid / clean / wifi / seed 1001 / fail", f"{rel}/old.gif", "frames/tick5.png")]
    assert order == sorted(order)
    monkeypatch.setattr(report_media, "MAX_EMBED_TOTAL", 100)  # room for the first video only
    page = write_report(out).read_text(encoding="utf-8")
    assert page.count("data:video/mp4;base64,") == 1
    assert f'<a class=linked href="{rel}/old.gif">' in page


def _paired(out: Path) -> list[dict[str, str]]:
    with (out / "paired.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_sweep_writes_the_paired_comparison(sweep: Path) -> None:
    records = [json.loads(line) for line in (sweep / "episodes.jsonl").read_text().splitlines()]
    rows = _paired(sweep)
    assert [(r["noise"], r["agent"], r["baseline"]) for r in rows] == [
        ("clean", "cloud-only", "rapid"), ("gaussian_noise:3", "cloud-only", "rapid")]
    for row in rows:
        wins = {(r["agent"], r["seed"]): r["success"] for r in records
                if r["noise"] == row["noise"]}
        pairs = [(wins["cloud-only", s], wins["rapid", s]) for s in (1000, 1001)]
        assert int(row["n_pairs"]) == 2
        assert float(row["d_success"]) == pytest.approx(sum(a - b for a, b in pairs) / 2)
        counts = (sum(a and b for a, b in pairs), sum(a and not b for a, b in pairs),
                  sum(b and not a for a, b in pairs), sum(not (a or b) for a, b in pairs))
        low, high = newcombe_paired_interval(*counts)
        assert (float(row["d_success_lo"]), float(row["d_success_hi"])) == pytest.approx(
            (low, high))
        assert low <= float(row["d_success"]) <= high
    page = (sweep / "report.html").read_text(encoding="utf-8")
    assert "<h2>Paired comparison with rapid</h2>" in page
    assert '<table class="summary paired">' in page
    assert "<td>gaussian_noise:3</td><td>wifi</td><td>cloud-only</td><td class=n>2</td>" in page


def test_every_recorded_video_is_reachable_in_sweep_order(sweep: Path) -> None:
    page = (sweep / "report.html").read_text(encoding="utf-8")
    videos = [*sweep.glob("videos/**/*.mp4"), *sweep.glob("videos/**/*.gif")]
    assert len(videos) == 4  # the first seed of every cell
    for path in videos:
        assert f'href="{path.relative_to(sweep).as_posix()}"' in page
    records = [json.loads(line) for line in (sweep / "episodes.jsonl").read_text().splitlines()]
    outcome = {(r["agent"], r["noise"]): "success" if r["success"] else "fail"
               for r in records if r["seed"] == 1000}
    captions = [f"reach / {agent} / {noise} / wifi / seed 1000 / {outcome[agent, noise]}"
                for agent in ("rapid", "cloud-only") for noise in ("clean", "gaussian_noise:3")]
    at = [page.index(c) for c in captions]
    assert at == sorted(at)  # the sweep's order, not the file names'


def test_rapid_report_takes_another_baseline(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {r["noise"]: float(r["d_success"]) for r in _paired(sweep)}
    assert main([str(sweep), "--baseline", "cloud-only"]) == 0
    rows = _paired(sweep)
    assert {r["agent"] for r in rows} == {"rapid"} and {r["baseline"] for r in rows} == {
        "cloud-only"}
    assert {r["noise"]: float(r["d_success"]) for r in rows} == pytest.approx(
        {k: -v for k, v in before.items()})
    assert "Paired comparison with cloud-only" in (sweep / "report.html").read_text()
    capsys.readouterr()
    assert main([str(sweep), "--baseline", "edge-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'edge-only' is not an agent of the sweep; its agents: rapid, cloud-only" in err
    assert main([str(sweep)]) == 0  # back to the default: the sweep's first agent
    assert _paired(sweep)[0]["baseline"] == "rapid"


def test_rapid_eval_refuses_an_unknown_baseline_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rapid_eval([*SWEEP, "--baseline", "edge-only", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its agents: rapid, cloud-only" in err
    assert not (tmp_path / "episodes.jsonl").exists()


def test_numbers_are_rounded_to_their_interval(sweep: Path) -> None:
    page = (sweep / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"\d\.\d{6,}", page.split("<h2>Charts</h2>")[0])


@pytest.mark.parametrize(("value", "half", "text"), [
    (173.00000000000003, 5.6e-13, "173"),  # float noise: every episode gave the same value
    (173.0, 0.0, "173"),
    (173.24, 5.63, "173.2 ± 5.6"),
    (173.26, 0.0449, "173.260 ± 0.045"),
    (1234.5, 560.0, "1230 ± 560"),
    (0.01234, 0.00056, "0.01234 ± 0.00056"),
    (9.5, 9.96, "10 ± 10"),  # 9.96 rounds to 10: one digit fewer
    (-0.0004, 0.3, "0.00 ± 0.30"),  # no minus zero
    (2.0, math.nan, "2.00"),
    (math.nan, 1.0, "–"),
    (None, None, "–"),
])
def test_round_to_ci(value: float, half: float, text: str) -> None:
    assert round_to_ci(value, half) == text


def test_ci_parts_splits_what_the_page_styles() -> None:
    assert ci_parts(173.24, 5.63) == ("173.2", "5.6")
    assert ci_parts(173.0, 5.6e-13) == ("173", None)


def test_summary_table_shows_time_to_success_over_its_successes_and_stall_share():
    from rapid_env.eval.report_tables import summary_table
    from rapid_env.eval.summary import summarize

    recs = [{"task": "reach", "agent": "rapid", "noise": "clean", "link": "wifi", "seed": s,
             "success": s == 0, "time_to_success_s": 1.5 if s == 0 else None,
             "stall_steps": 5 * s, "steps": 50, "latency_ms_mean": 140.0} for s in (0, 1)]
    html = summary_table(summarize(recs))
    assert "time to success s" in html and "mean over n successes" in html
    assert "1.50 <small>(n=1)</small>" in html
    assert "<td class=n>0.0500</td>" in html  # 5 stall ticks of 100
