"""Refused inputs get one line naming the flag or file: never a traceback, never the file's text.

Every case runs a console script's ``main`` in this process on real files (a copy of a shipped
checkpoint, a FIFO, ``/dev/zero``, certificates made by ``openssl``) and checks the contract:
exit 2, exactly one line on stderr, the flag or file named, no ``Traceback``, and none of the
file's content echoed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rapid_env.agents.vla.checkpoint import shipped_checkpoint
from rapid_env.cli.eval import main as eval_main
from rapid_env.cli.serve import main as serve_main

SECRET = "CONTENT-MARKER-7f3a"
"""Written into every damaged file: a message that echoes file content shows it."""

FAST = ["--tasks", "reach", "--episodes", "1", "--max-episode-s", "1", "--image-size", "32",
        "--wandb", "disabled", "--no-report", "--quiet"]


def _checkpoint(tmp: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of the shipped chunk-regress checkpoint with one thing broken."""
    dest = tmp / "ckpt"
    shutil.copytree(shipped_checkpoint("chunk-regress"), dest)
    edit(dest)
    return dest


def _other_width(d: Path) -> None:
    config = d / "config.json"
    config.write_text(config.read_text().replace('"width": 128', '"width": 64'))


def _broken_json(d: Path) -> None:
    (d / "config.json").write_text('{"family": "chunk-regress",\n  "' + SECRET + '": \n')


def _sb3(tmp: Path, config: str) -> Path:
    dest = tmp / "sb3"
    dest.mkdir()
    (dest / "config.json").write_text(config)
    (dest / "policy.safetensors").write_bytes(b"")
    return dest


def _fifo(tmp: Path) -> Path:
    path = tmp / "trace.fifo"
    os.mkfifo(path)
    return path


# (id, build(tmp) -> (extra rapid-eval args, what the line must name))
EVAL_CASES: list[tuple[str, Callable[[Path], tuple[list[str], list[str]]]]] = [
    ("same-decider-empty-parens", lambda t: (["--agents", "rapid,rapid()"],
                                             ["--agents", "'rapid'", "'rapid()'", "same decider"])),
    ("same-decider-int-float", lambda t: (
        ["--agents", "rapid(high_threshold=6),rapid(high_threshold=6.0)"],
        ["--agents", "'rapid(high_threshold=6)'", "'rapid(high_threshold=6.0)'"])),
    ("same-link-float", lambda t: (["--links", "constant:20:40,constant:20.0:40"],
                                   ["--links", "'constant:20:40'", "'constant:20.0:40'",
                                    "same link"])),
    ("same-noise-spelling", lambda t: (["--noise", "fog:3,fog(severity=3)"],
                                       ["--noise", "'fog:3'", "'fog(severity=3)'", "same noise"])),
    ("trace-directory", lambda t: (["--links", f"trace:{t}"], [str(t), "is a directory"])),
    ("trace-dev-zero", lambda t: (["--links", "trace:/dev/zero"],
                                  ["/dev/zero", "not a regular file"])),
    ("trace-fifo", lambda t: (["--links", f"trace:{_fifo(t)}"],
                              [str(t / "trace.fifo"), "not a regular file"])),
    ("invalid-key", lambda t: (["--agents", "rapid(hígh_threshold=1)"],
                               ["invalid key 'hígh_threshold'", "did you mean 'high_threshold'"])),
    ("ckpt-other-width", lambda t: (
        ["--policy", f"ckpt:{_checkpoint(t, _other_width)}"],
        [str(t / "ckpt"), "weights do not match config.json", "tensors differ"])),
    ("ckpt-no-tokenizer", lambda t: (
        ["--policy", f"ckpt:{_checkpoint(t, lambda d: (d / 'tokenizer.json').unlink())}"],
        [str(t / "ckpt"), "tokenizer.json"])),
    ("ckpt-broken-config", lambda t: (
        ["--policy", f"ckpt:{_checkpoint(t, _broken_json)}"],
        [str(t / "ckpt" / "config.json"), "not valid JSON (line 3, column 1"])),
    ("sb3-null-config", lambda t: (["--agents", f"sb3:{_sb3(t, 'null')}"],
                                   [f"sb3:{t / 'sb3'}/config.json", "expected a JSON object, got "
                                    "null"])),
    ("sb3-broken-config", lambda t: (["--agents", f"sb3:{_sb3(t, '{' + SECRET + chr(10))}"],
                                     [f"sb3:{t / 'sb3'}/config.json", "not valid JSON (line 1"])),
    ("hf-broken-config", lambda t: (
        ["--policy", f"hf:{_sb3(t, '[' + chr(10) + SECRET)}"],
        [str(t / "sb3" / "config.json"), "not valid JSON (line 2, column 1"])),
]


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in err and SECRET not in err
    return lines[0]


@pytest.mark.parametrize("build", [b for _, b in EVAL_CASES], ids=[i for i, _ in EVAL_CASES])
def test_rapid_eval_refuses_in_one_line_naming_the_input(
    build: Callable[[Path], tuple[list[str], list[str]]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, needles = build(tmp_path)
    code = eval_main([*FAST, "--policy", "expert", "--out", str(tmp_path / "out"), *args])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith("rapid-eval: error: ")
    for needle in needles:
        assert needle in line


def test_a_world_readable_token_file_is_refused_by_the_client_as_by_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-of-thirty-two-characters-xx\n")
    token.chmod(0o644)
    code = eval_main([*FAST, "--policy", "chunk-regress", "--links", "remote:127.0.0.1:1",
                      "--token-file", str(token), "--out", str(tmp_path / "out")])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and f"chmod 600 {token}" in line
    code = serve_main(["--policy", "chunk-regress", "--token-file", str(token)])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and f"chmod 600 {token}" in line
    token.chmod(0o640)  # the group may read it: refused by both as well
    code = serve_main(["--policy", "chunk-regress", "--token-file", str(token)])
    assert code == 2 and f"chmod 600 {token}" in _one_line(capsys.readouterr().err)


def _pem_pair(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.parametrize("case", ["junk-cert", "junk-key", "mismatched", "log-level"])
def test_rapid_serve_names_the_file_or_flag(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("a-token-of-thirty-two-characters-xx\n")
    token.chmod(stat.S_IRUSR | stat.S_IWUSR)
    junk = tmp_path / "junk.pem"
    junk.write_text(SECRET + "\n")
    args = ["--policy", "chunk-regress", "--token-file", str(token), "--port", "0"]
    if case == "log-level":
        args += ["--log-level", "BOGUS"]
        needles = ["--log-level BOGUS", "allowed: DEBUG"]
    else:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        cert, key = _pem_pair(tmp_path, "a")
        if case == "junk-cert":
            cert = junk
            needles = [f"--tls-cert {junk}", "certificate could not be loaded"]
        elif case == "junk-key":
            key = junk
            needles = [f"--tls-key {junk}", "private key could not be loaded"]
        else:
            key = _pem_pair(tmp_path, "b")[1]
            needles = [str(cert), str(key), "could not be loaded together"]
        args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    code = serve_main(args)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "Failed to bind" not in line
    for needle in needles:
        assert needle in line


def test_rapid_paper_names_a_damaged_line_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.eval.paper import read_records

    good = b'{"task": "reach", "seed": 1}\n'
    (tmp_path / "episodes.jsonl").write_bytes(good + b"\xff\xfe" + SECRET.encode() + b"\n" + good)
    records = read_records(tmp_path)
    err = capsys.readouterr().err
    line = _one_line(err)
    assert records == [{"task": "reach", "seed": 1}] * 2
    assert f"{tmp_path / 'episodes.jsonl'}:2: not UTF-8 text" in line


def test_rapid_paper_tables_only_has_no_traceback_on_invalid_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rapid_env.cli.paper import main as paper_main
    from rapid_env.eval.paper import SETTINGS

    first = tmp_path / "runs" / SETTINGS[0].name
    first.mkdir(parents=True)
    (first / "episodes.jsonl").write_bytes(b"\xff" + SECRET.encode() + b"\n")
    code = paper_main(["--tables-only", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and SECRET not in err
    assert f"{first / 'episodes.jsonl'}:1: not UTF-8 text" in err
