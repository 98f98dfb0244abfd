"""The results store under abuse: two writers, a wrong --out, edited and damaged lines, a full disk.

Every case runs the real ``rapid-eval`` (its ``main``, or a second process where two are needed)
on a real sweep, and checks what a user sees (exit code, one line on stderr) and what the store
holds afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rapid_env.cli.eval import main as rapid_eval
from rapid_env.cli.report import main as rapid_report
from rapid_env.eval import store as store_module
from rapid_env.eval.store import DIGEST_FIELD, ResultsStore, StoreLocked

SWEEP = ["--tasks", "reach", "--agents", "rapid,cloud-only", "--noise", "clean", "--links",
         "ideal", "--episodes", "2", "--max-episode-s", "1", "--policy", "expert",
         "--image-size", "32", "--wandb", "disabled", "--no-report", "--quiet"]
N = 4  # episodes of SWEEP


def lines(out: Path) -> list[bytes]:
    return (out / "episodes.jsonl").read_bytes().splitlines()


def keys(out: Path) -> list[str]:
    return [json.loads(line)["episode_key"] for line in lines(out)]


def summary(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "out"
    assert rapid_eval([*SWEEP, "--out", str(out)]) == 0
    return out


@pytest.fixture
def store(finished: Path, tmp_path: Path) -> Path:
    """A copy of a finished sweep's store, to damage."""
    return Path(shutil.copytree(finished, tmp_path / "out"))


# ---------------------------------------------------------------------------- one writer
def _rapid_eval_process(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    code = "import sys; from rapid_env.cli.eval import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *extra, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "MUJOCO_GL": "egl"})


@pytest.mark.slow
def test_a_second_rapid_eval_on_the_same_out_exits_2_naming_the_first(tmp_path: Path):
    out = tmp_path / "out"
    sweep = [*SWEEP[:SWEEP.index("--tasks") + 1], "reach,push", *SWEEP[2:]]
    sweep[sweep.index("--episodes") + 1] = "3"  # 12 episodes
    first = _rapid_eval_process(out, *sweep)
    try:
        hang_guard = time.monotonic() + 600  # only stops a hang; no claim about speed
        while not ((out / "episodes.jsonl").exists() and lines(out)):
            assert first.poll() is None, "the first rapid-eval ended before its first record"
            assert time.monotonic() < hang_guard, "no first record after 600 s"
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # it holds the store, mid-sweep, for as long as we like
        second = _rapid_eval_process(out, *sweep)
        _, err = second.communicate(timeout=300)
        assert second.returncode == 2, err.decode()
        text = err.decode()
        assert text.count("\n") == 1 and f"in use by pid {first.pid} (rapid-eval " in text
        assert "--out" in text
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()
    assert sorted(keys(out)) == sorted(set(keys(out))) and len(keys(out)) == 12
    assert sum(row["episodes"] for row in summary(out)) == 12


def test_the_lock_names_its_holder_and_goes_with_it(tmp_path: Path):
    from rapid_env.config import EnvConfig
    from rapid_env.eval.jobs import SweepSpec

    spec = SweepSpec(tasks=("reach",), agents=("rapid",), episodes=1, seed=1000,
                     base=EnvConfig(policy="expert", image_size=16, max_episode_s=1.0))
    holder = ResultsStore(tmp_path)
    holder.open(spec, extra={"command": "rapid-eval --out here"})
    with pytest.raises(StoreLocked, match=rf"in use by pid {os.getpid()} \(rapid-eval --out here"):
        ResultsStore(tmp_path).open(spec)
    holder.close()
    with ResultsStore(tmp_path) as again:
        again.open(spec)  # released on close
    # a holder that dies without closing: the operating system releases its lock
    code = ("import sys, time; from pathlib import Path; from rapid_env.eval.store import "
            "ResultsStore; from rapid_env.eval.jobs import SweepSpec; from rapid_env.config "
            "import EnvConfig; s = ResultsStore(Path(sys.argv[1])); s.open(SweepSpec(tasks="
            "('reach',), agents=('rapid',), episodes=1, seed=1000, base=EnvConfig(policy="
            "'expert', image_size=16, max_episode_s=1.0))); print('held', flush=True); "
            "time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
        with pytest.raises(StoreLocked, match=f"pid {proc.pid}"):
            ResultsStore(tmp_path).open(spec)
    finally:
        proc.kill()
        proc.wait()
    with ResultsStore(tmp_path) as after:
        after.open(spec)


# --------------------------------------------------------------------------- --out, --overwrite
def test_an_empty_out_exits_2_and_touches_nothing(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "manifest.json").write_text('{"mine": true}\n')
    (tmp_path / "summary.csv").write_text("a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    for out in ("", "  "):
        assert rapid_eval([*SWEEP, "--out", out, "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err and "empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "summary.csv"]
    assert (tmp_path / "manifest.json").read_text() == '{"mine": true}\n'


FOREIGN: dict[str, dict[str, str]] = {
    "unrelated manifest and summary": {"manifest.json": '{"mine": true}\n',
                                       "summary.csv": "a,b\n1,2\n"},
    "a manifest of another format": {"manifest.json": '{"format": "x/1", "sweep": {}}\n'},
    "files, no manifest": {"notes.txt": "keep me\n", "data.json": "[]\n"},
    "records, no manifest": {"episodes.jsonl": '{"task": "reach"}\n'},
}


@pytest.mark.parametrize("files", FOREIGN.values(), ids=FOREIGN.keys())
def test_overwrite_refuses_a_folder_it_did_not_write_and_deletes_nothing(
    tmp_path: Path, capsys, files: dict[str, str]
):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert rapid_eval([*SWEEP, "--out", str(tmp_path), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rapid-eval: error:" in err
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == files  # no .lock left either


def test_overwrite_deletes_only_what_the_sweep_wrote(store: Path):
    (store / "notes.txt").write_text("my notes\n")
    (store / "videos" / "reach").mkdir(parents=True)
    (store / "videos" / "reach" / "old.png").write_bytes(b"png")
    (store / ".summary.csv.abc.tmp").write_text("half")
    (store / "episodes.jsonl").write_bytes(b"")  # an overwrite must not keep or need these
    assert rapid_eval([*SWEEP, "--episodes", "1", "--out", str(store), "--overwrite"]) == 0
    assert (store / "notes.txt").read_text() == "my notes\n"
    assert not (store / "videos").exists() and not (store / ".summary.csv.abc.tmp").exists()
    assert len(keys(store)) == 2 and json.loads((store / "manifest.json").read_text())[
        "sweep"]["episodes"] == 1


# ------------------------------------------------------------------- damaged and edited lines
def _flip_success(path: Path) -> int:
    rows = path.read_bytes().splitlines()
    record = json.loads(rows[1])
    record["success"] = not record["success"]
    rows[1] = json.dumps(record).encode()
    path.write_bytes(b"\n".join(rows) + b"\n")
    return 2


def _other_cells_key(path: Path) -> int:
    rows = path.read_bytes().splitlines()
    first, second = json.loads(rows[0]), json.loads(rows[2])  # two cells
    first["episode_key"] = second["episode_key"]
    first[DIGEST_FIELD] = store_module.record_digest(first)  # sealed again: still caught
    rows[0] = json.dumps(first).encode()
    path.write_bytes(b"\n".join(rows) + b"\n")
    return 1


def _digest_removed(path: Path) -> int:
    rows = path.read_bytes().splitlines()
    record = json.loads(rows[3])
    record["success"] = not record["success"]
    del record[DIGEST_FIELD]
    rows[3] = json.dumps(record).encode()
    path.write_bytes(b"\n".join(rows) + b"\n")
    return 4


def _insert(line: bytes) -> Callable[[Path], int]:
    def damage(path: Path) -> int:
        rows = path.read_bytes().splitlines()
        rows.insert(2, line)
        path.write_bytes(b"\n".join(rows) + b"\n")
        return 3

    return damage


DAMAGE: dict[str, tuple[Callable[[Path], int], str]] = {
    "success flipped by hand": (_flip_success, "record_digest does not match"),
    "digest removed": (_digest_removed, "no record_digest"),
    "the key of another cell": (_other_cells_key, "not the key of its own cell and seed"),
    "a bogus key": (_insert(b'{"episode_key": "bogus"}'), "'bogus' is not an episode of"),
    "a JSON array": (_insert(b"[1, 2, 3]"), "a JSON array, not a record"),
    "invalid UTF-8": (_insert(b'{"task": "\xff\xfe"}'), "not UTF-8"),
    "not JSON": (_insert(b'{"task": reach}'), "not JSON"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_or_edited_line_is_named_and_not_counted(
    store: Path, finished: Path, capsys, damage: tuple[Callable[[Path], int], str]
):
    hurt, why = damage
    number = hurt(store / "episodes.jsonl")
    capsys.readouterr()
    assert rapid_report([str(store)]) == 0  # the report: named, left out, no traceback
    err = capsys.readouterr().err
    assert f"rapid-report: {store / 'episodes.jsonl'}:{number}: " in err and why in err
    page = (store / "report.html").read_text()
    assert "1 unreadable line(s)" in page

    assert rapid_eval([*SWEEP, "--out", str(store)]) == 0  # rapid-eval: named, rerun
    err = capsys.readouterr().err
    assert f"rapid-eval: {store / 'episodes.jsonl'}:{number}: " in err and why in err
    assert "not counted" in err and "Traceback" not in err
    # the summary counts each episode once, as the untouched sweep did
    assert [(r["episodes"], r["successes"]) for r in summary(store)] == [
        (r["episodes"], r["successes"]) for r in summary(finished)]


def test_a_store_written_before_digests_is_read_but_its_keys_checked(store: Path, capsys):
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest[DIGEST_FIELD], manifest["recorded"]
    (store / "manifest.json").write_text(json.dumps(manifest))
    rows = [json.loads(line) for line in lines(store)]
    for row in rows:
        del row[DIGEST_FIELD]
    rows.append({"episode_key": "bogus"})
    (store / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert rapid_eval([*SWEEP, "--out", str(store)]) == 0
    err = capsys.readouterr().err
    assert f"resuming: {N} of {N} episodes done" in err
    assert f"episodes.jsonl:{N + 1}: episode_key 'bogus'" in err and err.count("not counted") == 1


def test_a_torn_last_line_is_cut_and_its_episode_rerun(store: Path, capsys):
    rows = lines(store)
    (store / "episodes.jsonl").write_bytes(b"\n".join(rows[:-1]) + b"\n" + rows[-1][:40])
    capsys.readouterr()
    assert rapid_report([str(store)]) == 0
    assert f"episodes.jsonl:{N}: torn last line" in capsys.readouterr().err
    assert rapid_eval([*SWEEP, "--out", str(store)]) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    assert keys(store) == [json.loads(row)["episode_key"] for row in rows]
    # the rerun episode is sealed as before: the digest leaves the wall-clock fields out
    assert [json.loads(x)[DIGEST_FIELD] for x in lines(store)] == [
        json.loads(x)[DIGEST_FIELD] for x in rows]


# ------------------------------------------------------------ resuming with more to record
@pytest.mark.parametrize("flags", [("--oracle",), ("--oracle", "0.3"), ("--videos", "1")],
                         ids=["oracle", "oracle-0.3", "videos"])
def test_resuming_with_more_to_record_exits_2_naming_the_flag(store: Path, capsys, flags):
    before = (store / "episodes.jsonl").read_bytes()
    assert rapid_eval([*SWEEP, *flags, "--out", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flags[0] in err and "--overwrite" in err
    assert (store / "episodes.jsonl").read_bytes() == before


def test_the_manifest_says_what_was_recorded(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert rapid_eval([*SWEEP, "--episodes", "1", "--oracle", "0.1", "--out", str(out)]) == 0
    recorded = json.loads((out / "manifest.json").read_text())["recorded"]
    assert recorded == {"oracle": [0.1], "videos": 0}
    assert rapid_eval([*SWEEP, "--episodes", "1", "--oracle", "0.1", "--out", str(out)]) == 0
    # dropping the oracle is fine while nothing is left to run; with episodes to go it is not
    assert rapid_eval([*SWEEP, "--episodes", "1", "--out", str(out)]) == 0
    assert rapid_eval([*SWEEP, "--episodes", "2", "--extend", "--out", str(out)]) == 2
    assert "add --oracle 0.1 to resume" in capsys.readouterr().err


# --------------------------------------------------------------------------------- disk full
def _full_after(n_writes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's writes succeed ``n_writes`` times, then write half and hit ENOSPC."""
    real = store_module._write_all
    calls = {"n": 0}

    def write_all(fd: int, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > n_writes:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(store_module, "_write_all", write_all)


def test_disk_full_while_appending_leaves_a_resumable_store(
    tmp_path: Path, monkeypatch, capsys
):
    out = tmp_path / "out"
    _full_after(1 + 3, monkeypatch)  # the manifest, then 3 records
    assert rapid_eval([*SWEEP, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"rapid-eval: error: disk full writing {out / 'episodes.jsonl'}: 3 episodes "
                   "are stored; free space and rerun to resume\n")
    assert len(lines(out)) == 3 and (out / "episodes.jsonl").read_bytes().endswith(b"\n")
    assert not (out / "manifest.json.tmp").exists()
    monkeypatch.undo()
    assert rapid_eval([*SWEEP, "--out", str(out)]) == 0
    assert "resuming: 3 of 4 episodes done" in capsys.readouterr().err
    assert len(set(keys(out))) == len(keys(out)) == N


@pytest.mark.parametrize("existing", [False, True], ids=["new store", "resumed store"])
def test_disk_full_while_writing_the_manifest_leaves_it_whole(
    store: Path, monkeypatch, capsys, existing: bool
):
    if not existing:
        shutil.rmtree(store)
    before = (store / "manifest.json").read_bytes() if existing else None
    _full_after(0, monkeypatch)
    assert rapid_eval([*SWEEP, "--out", str(store)]) == 2
    stored = N if existing else 0
    assert capsys.readouterr().err == (
        f"rapid-eval: error: disk full writing {store / 'manifest.json'}: {stored} episodes "
        "are stored; free space and rerun to resume\n")
    assert not (store / "manifest.json.tmp").exists()
    if existing:
        assert (store / "manifest.json").read_bytes() == before
    else:
        assert not (store / "manifest.json").exists()
