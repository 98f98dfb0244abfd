import io
import re

import pytest

from rapid_env.progress import Progress, format_duration, format_rate


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def plain_lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_non_tty_stream_gets_rounded_plain_lines_without_carriage_returns():
    clock, stream = Clock(), io.StringIO()
    with Progress(total=120, desc="rapid-eval", stream=stream, clock=clock) as bar:
        assert not bar.is_tty
        for i in range(37):
            clock.t += 2.0
            bar.update(success=i % 5 != 0, error=i in (3, 7))
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    first = plain_lines(stream)[0]
    # the first line after 10 s: 5 episodes at 2 s each
    assert first == ("rapid-eval: 5/120 episodes (4.2%), 0.50/s, elapsed 10s, ETA 3m50s, "
                     "success 4, errors 1")
    last = plain_lines(stream)[-1]
    assert last == ("rapid-eval: 37/120 episodes (30.8%), 0.50/s, elapsed 1m14s, "
                    "success 29, errors 2")
    assert len(plain_lines(stream)) == 8  # at 10, 20, .. 70 s, and the final one


def test_plain_lines_are_throttled_to_one_per_interval_plus_a_final_one():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(total=810, desc="job", unit="step", stream=stream, interval_s=10, clock=clock)
    for _ in range(810):
        clock.t += 0.125  # 101.25 s in all: 10 full intervals
        bar.update()
    assert len(plain_lines(stream)) == 10
    bar.close()
    bar.close()  # idempotent
    lines = plain_lines(stream)
    assert len(lines) == 11 and lines[-1] == "job: 810/810 steps (100.0%), 8.00/s, elapsed 1m41s"
    assert [int(re.search(r": (\d+)/", ln).group(1)) for ln in lines[:3]] == [80, 160, 240]


def test_final_line_is_not_repeated_when_the_last_update_printed_it():
    clock, stream = Clock(), io.StringIO()
    with Progress(total=2, desc="d", stream=stream, interval_s=0, clock=clock) as bar:
        clock.t += 1
        bar.update()
        clock.t += 1
        bar.update()
    assert len(plain_lines(stream)) == 2
    stream = io.StringIO()
    with Progress(total=9, desc="d", stream=stream, interval_s=0, clock=clock) as bar:
        clock.t += 1
        bar.update()  # stopped early: the final line says so, without an ETA
    assert plain_lines(stream) == ["d: 1/9 episodes (11.1%), 1.00/s, elapsed 1s, ETA 8s",
                                   "d: 1/9 episodes (11.1%), 1.00/s, elapsed 1s"]


def test_quiet_prints_nothing_at_all(capsys: pytest.CaptureFixture[str]):
    stream, tty = io.StringIO(), FakeTTY()
    for s in (stream, tty):
        with Progress(total=5, desc="q", quiet=True, stream=s, interval_s=0) as bar:
            for _ in range(5):
                bar.update(success=True, loss=0.5)
            bar.write("progress chatter")
        assert s.getvalue() == ""
    assert capsys.readouterr().out == ""
    Progress(total=1, desc="q", quiet=True, stream=stream).write("result", always=True)
    assert capsys.readouterr().out == "result\n"


def test_initial_resumes_the_count_and_the_rate_counts_only_new_work():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(total=120, desc="rapid-eval", initial=37, stream=stream, clock=clock)
    bar.record(successes=30, errors=1)  # the resumed run's earlier outcomes
    clock.t += 10
    bar.update(5, success=True)
    assert bar.done == 42 and bar.rate == pytest.approx(0.5)
    assert bar.eta_s == pytest.approx(156.0)
    bar.close()
    assert plain_lines(stream) == [
        "rapid-eval: 42/120 episodes (35.0%), 0.50/s, elapsed 10s, ETA 2m36s, success 35, errors 1",
        "rapid-eval: 42/120 episodes (35.0%), 0.50/s, elapsed 10s, success 35, errors 1",
    ]


def test_postfix_values_are_rounded_and_outcomes_hidden_until_reported():
    clock, stream = Clock(), io.StringIO()
    bar = Progress(total=10, desc="rapid-train", unit="step", stream=stream, interval_s=0,
                   clock=clock)
    clock.t += 2
    bar.update(4, loss=0.0123456789, task="reach")
    assert plain_lines(stream)[-1] == (
        "rapid-train: 4/10 steps (40.0%), 2.00/s, elapsed 2s, ETA 3s, loss 0.01235, task reach"
    )
    bar.set_total(8)
    bar.set_postfix(loss=0.5)
    assert plain_lines(stream)[-1].startswith("rapid-train: 4/8 steps (50.0%)")
    assert plain_lines(stream)[-1].endswith("loss 0.5, task reach")


def test_a_terminal_gets_a_tqdm_bar_with_counts_and_outcomes(capsys: pytest.CaptureFixture[str]):
    tty = FakeTTY()
    with Progress(total=120, desc="rapid-eval", initial=37, stream=tty) as bar:
        assert bar.is_tty
        bar.update(success=True)
        bar.update(success=False, error=True, loss=0.25)
        bar.write("a result line")
    text = tty.getvalue()
    assert "rapid-eval" in text and "37/120" in text and "39/120" in text
    assert "success=1 errors=1 loss=0.25" in text
    assert "episode/s" in text
    assert capsys.readouterr().out == "a result line\n"


def test_default_stream_is_stderr_and_write_goes_to_stdout(capsys: pytest.CaptureFixture[str]):
    with Progress(total=3, desc="d", interval_s=0) as bar:
        bar.update(3)
        bar.write("result")
    captured = capsys.readouterr()
    assert captured.out == "result\n"
    assert captured.err.startswith("d: 3/3 episodes (100.0%)")


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="total and initial"):
        Progress(total=-1, desc="x", quiet=True)
    with pytest.raises(ValueError, match="interval_s"):
        Progress(total=1, desc="x", interval_s=-1, quiet=True)


def test_formatting_helpers():
    assert [format_duration(s) for s in (0.4, 45, 160, 3900, None, float("inf"))] == [
        "0s", "45s", "2m40s", "1h05m", "?", "?"
    ]
    assert [format_rate(r) for r in (1234.4, 12.34, 1.234, 0.5, 0.05234, None)] == [
        "1234", "12.3", "1.23", "0.50", "0.052", "?"
    ]


def test_a_terminal_of_width_zero_still_gets_a_bar(monkeypatch: pytest.MonkeyPatch):
    import rapid_env.progress as progress

    monkeypatch.setattr(progress, "_columns", lambda stream: 0)  # a 0x0 pty: `script`, docker -t
    tty = FakeTTY()
    with Progress(total=120, desc="rapid-eval", initial=37, stream=tty) as bar:
        bar.update(success=True)
    assert "38/120" in tty.getvalue() and "success=1 errors=0" in tty.getvalue()
