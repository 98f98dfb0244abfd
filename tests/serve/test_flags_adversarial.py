"""rapid-serve refuses every out-of-range number with one line naming the flag, exit 2.

Each case runs ``main([...])`` in this process: the flags are checked before the token file is
read, torch is set up or a model loads, so a refusal returns at once and changes nothing.
"""

from __future__ import annotations

import pytest

from rapid_env.cli.serve import main
from rapid_env.serve.config import ServeConfig, UsageError
from tests.serve.conftest import TOKEN


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-request-mb", "nan"], "--max-request-mb nan; allowed: a finite number in "
                                      "0.001..2047"),
        (["--max-request-mb", "inf"], "--max-request-mb inf; allowed"),
        (["--max-request-mb", "100000"], "--max-request-mb 100000.0; allowed"),
        (["--max-request-mb", "0"], "--max-request-mb 0.0; allowed"),
        (["--torch-threads", "-1"], "--torch-threads -1; allowed: an int in 1..1024"),
        (["--torch-threads", "0"], "--torch-threads 0; allowed"),
        (["--max-concurrent", "-1"], "--max-concurrent -1; allowed: an int in 1..65536"),
        (["--max-concurrent", "0"], "--max-concurrent 0; allowed"),
        (["--max-seconds", "nan"], "--max-seconds nan; allowed: a finite number"),
        (["--max-seconds", "-1"], "--max-seconds -1.0; allowed"),
        (["--max-seconds", "inf"], "--max-seconds inf; allowed"),
        (["--max-requests", "0"], "--max-requests 0; allowed: an int in 1.."),
        (["--deadline-s", "nan"], "--deadline-s nan; allowed: a finite number in 0.001..3600"),
        (["--deadline-s", "-1"], "--deadline-s -1.0; allowed"),
        (["--deadline-s", "inf"], "--deadline-s inf; allowed"),
        (["--grace-s", "nan"], "--grace-s nan; allowed: a finite number in 0..600"),
        (["--grace-s", "-1"], "--grace-s -1.0; allowed"),
        (["--workers", "0"], "--workers 0; allowed: an int in 1..256"),
        (["--workers", "100000"], "--workers 100000; allowed"),
        (["--chunk-size", "0"], "--chunk-size 0; allowed: an int in 1..256"),
        (["--port", "70000"], "--port 70000; allowed: an int in 0..65535"),
        (["--port", "-1"], "--port -1; allowed"),
        (["--log-level", "BOGUS"], "--log-level BOGUS; allowed: DEBUG, INFO, WARNING, ERROR, "
                                   "CRITICAL"),
        (["--device", "gpu"], "--device gpu; allowed: cpu, cuda, cuda:N, mps"),
        (["--device", "cuda:x"], "--device cuda:x; allowed: cpu, cuda, cuda:N, mps"),
    ],
)
def test_out_of_range_flags_exit_2_with_one_line(token_file, capsys, args, needle):
    assert main(["--token-file", str(token_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("rapid-serve: ")


def test_a_bad_flag_is_named_before_the_token_file_is_read(tmp_path, capsys):
    assert main(["--token-file", str(tmp_path / "missing"), "--deadline-s", "nan"]) == 2
    assert "--deadline-s nan" in capsys.readouterr().err


def test_lower_case_log_levels_still_work(token_file, capsys):
    # accepted; the next problem (no split runtime for expert) is what refuses this one
    assert main(["--token-file", str(token_file), "--log-level", "debug",
                 "--policy", "expert"]) == 2
    assert "--log-level" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [("max_request_mb", float("nan"), "--max-request-mb"), ("deadline_s", -1.0, "--deadline-s"),
     ("max_concurrent", -1, "--max-concurrent"), ("max_seconds", float("inf"), "--max-seconds"),
     ("workers", 2.5, "--workers"), ("device", "gpu", "--device gpu"),
     ("dtype", "float64", "--dtype float64; allowed: float32, bfloat16, float16")],
)
def test_the_config_object_meets_the_same_checks(field, value, flag):
    with pytest.raises(UsageError, match=flag):
        ServeConfig(token=TOKEN, chunk_size=8, **{field: value})
