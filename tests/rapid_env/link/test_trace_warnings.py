"""Implausible traces warn (one line naming the file, span and mean rate); errors quote no text."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from rapid_env.link import (
    PRESETS,
    TraceWarning,
    implausibility,
    load_5gophers,
    load_mahimahi,
    load_trace,
    load_tsv,
    parse_link,
)
from rapid_env.link.traces import BandwidthTrace

SECRET = "root:$6$s3cr3t-hash:19000:0:99999:7:::"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def trace_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TraceWarning)]


def test_a_trace_spanning_centuries_warns_once_naming_file_span_and_rate(tmp_path):
    path = write(tmp_path, "far.mahi", "10000000000000\n")
    spec = f"trace:{path}"
    with pytest.warns(TraceWarning) as record:
        link = parse_link(spec, episode_s=10.0)
    (line,) = trace_warnings(record)
    assert f"trace {spec!r} spans 317 years at a mean rate of 1.2e-06 bit/s" in line
    assert "more than a year" in line and "mean rate outside 1 kbit/s .. 1 Tbit/s" in line
    assert "\n" not in line
    # still a valid link (it runs, as a dead one), and the next episode's build says nothing more
    assert link.mean_bandwidth_bps == pytest.approx(1500 * 8 / 1e10, rel=1e-3)  # ms at 1e10 s
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        parse_link(spec)
        parse_link(spec, episode_s=10.0)


def test_an_absurdly_fast_trace_warns(tmp_path):
    path = write(tmp_path, "bps_as_mbps.tsv", "0 0\n1 20000000\n2 20000000\n")  # 20 Tbit/s
    with pytest.warns(TraceWarning, match=r"mean rate of 20 Tbit/s \(a mean rate outside"):
        parse_link(f"trace:{path}")


def test_a_trace_that_starves_an_episode_warns_only_given_the_episode(tmp_path):
    # 1.1 kbit/s: plausible on its own, but under one 1500-byte packet in a 10 s episode
    path = write(tmp_path, "slow.tsv", "0 0\n1 0.0011\n")
    tr = load_trace(path)
    assert implausibility(tr) is None
    assert implausibility(tr, episode_s=20.0) is None
    assert implausibility(tr, episode_s=10.0) == "less than one 1500-byte packet per 10 s episode"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        parse_link(f"trace:{path}")
    with pytest.warns(TraceWarning, match=r"1\.1 kbit/s \(less than one 1500-byte packet per 10 s"):
        parse_link(f"trace:{path}", episode_s=10.0)


def test_the_scale_of_the_spec_is_what_is_judged(tmp_path):
    # a bit/s file read as Mbit/s, fixed with scale 1e-6: the link is sane and says nothing
    path = write(tmp_path, "bps.tsv", "0 0\n1 20000000\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        parse_link(f"trace:{path}:1e-6")


def test_bundled_presets_and_ordinary_traces_do_not_warn(tmp_path):
    tsv = write(tmp_path, "ok.tsv", "0 0\n1 5\n2 0\n3 12\n")
    mahi = write(tmp_path, "ok.mahi", "1\n1\n3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)
        for name in PRESETS:
            parse_link(name)
        parse_link(f"trace:{tsv}", episode_s=1.0)
        parse_link(f"trace:{mahi}", episode_s=1.0)
    for preset in PRESETS:
        for trace in preset_traces(parse_link(preset)):
            assert implausibility(trace, episode_s=1.0) is None, preset


def preset_traces(link: object) -> list[BandwidthTrace]:
    return [t for t in (getattr(link, "down", None), getattr(link, "up", None)) if t is not None]


@pytest.mark.parametrize(
    ("name", "text", "loader"),
    [
        ("a.mahi", f"{SECRET}\n", load_mahimahi),
        ("b.mahi", f"1\n{SECRET}\n", load_mahimahi),
        ("c.tsv", f"0 1\n1 {SECRET}\n", load_tsv),
        ("d.tsv", f"{SECRET} 1\n", load_tsv),
        ("e.tsv", f"0 1\n{SECRET} x y\n", load_tsv),
        ("f.csv", f"seq_num,throughput_mbps\n1,{SECRET}\n", load_5gophers),
        ("g.csv", f"seq_num,throughput_mbps\n{SECRET},1\n", load_5gophers),
    ],
)
def test_parse_errors_name_the_line_number_never_its_text(tmp_path, name, text, loader):
    path = write(tmp_path, name, text)
    with pytest.raises(ValueError, match=r": line \d: ") as err:
        loader(path)
    said = str(err.value).replace(str(path), "<path>")
    for fragment in ("s3cr3t", "root", "99999", "19000"):
        assert fragment not in said, said


def test_a_numeric_file_is_not_echoed_either(tmp_path):
    # decreasing numbers (e.g. a file of ids): the error says where, not which numbers
    path = write(tmp_path, "ids.mahi", "4111111\n4000000\n")
    with pytest.raises(ValueError, match=r"ids\.mahi: line 2: timestamp is before") as err:
        load_mahimahi(path)
    assert "4111111" not in str(err.value) and "4000000" not in str(err.value)


def test_a_38_digit_timestamp_is_a_value_error_through_the_link_spec(tmp_path):
    path = write(tmp_path, "huge.mahi", "9" * 38 + "\n")
    with pytest.raises(ValueError, match=r"huge\.mahi: line 1: timestamp out of range") as err:
        parse_link(f"trace:{path}")
    assert "9" * 16 not in str(err.value)


def test_the_largest_allowed_timestamp_loads_exactly(tmp_path):
    path = write(tmp_path, "edge.mahi", "1000000000000000\n")  # 10^15 ms, the bound
    tr = load_mahimahi(path)
    assert tr.times_s[-1] == 1e12 and np.isfinite(tr.mean_bps)


def test_the_gym_env_warns_about_a_trace_that_starves_its_episodes(tmp_path):
    import gymnasium as gym

    import rapid_env

    path = write(tmp_path, "slow-gym.tsv", "0 0\n1 0.0011\n")  # 1.1 kbit/s: < 1 packet in 10 s
    with pytest.warns(TraceWarning, match=r"slow-gym\.tsv.*less than one 1500-byte packet per 10"):
        env = gym.make(rapid_env.RAPID_ENV_ID, task="reach", policy="expert", image_size=16,
                       link=f"trace:{path}", max_episode_s=10.0)
    env.close()
