"""Link spec strings: ``trace:<path>[:scale[:rtt_ms]]`` parsing and the errors bad specs raise."""

from __future__ import annotations

import numpy as np
import pytest

from rapid_env.link.spec import parse_link
from rapid_env.link.traces import TRACE_DIR


def test_trace_spec_with_path_and_scale(tmp_path):
    p = tmp_path / "my.tsv"
    p.write_text("0 1\n2 3\n4 1\n")
    link = parse_link(f"trace:{p}")
    assert link.mean_bandwidth_bps == pytest.approx(2e6)
    scaled = parse_link(f"trace:{p}:2.5")
    assert scaled.mean_bandwidth_bps == pytest.approx(5e6) and scaled.name == f"trace:{p}:2.5"
    bundled = parse_link(f"trace:{TRACE_DIR / 'hsdpa3g_bus_1.tsv'}")
    assert bundled.mean_bandwidth_bps > 0
    assert link.mean_rtt_s == pytest.approx(0.04)  # the default base RTT
    far = parse_link(f"trace:{p}:2.5:120")
    assert far.mean_bandwidth_bps == pytest.approx(5e6) and far.mean_rtt_s == pytest.approx(0.12)
    far.reset(np.random.default_rng(0))
    small = far.transfer(1, 0.0, "up")  # one byte: arrival is half the RTT after sending
    assert small.arrival == pytest.approx(0.06, abs=1e-5)
    odd_dir = tmp_path / "a:b"
    odd_dir.mkdir()
    (odd_dir / "t.tsv").write_text("0 1\n2 3\n4 1\n")
    assert parse_link(f"trace:{odd_dir / 't.tsv'}:2").mean_bandwidth_bps == pytest.approx(4e6)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("dialup", "unknown link 'dialup'; allowed: ideal, constant:<Mbps>:<rtt_ms>, wifi, "
                   "lab-wifi6, 5g-driving, 5g-walking, 4g, 3g-train, 3g-bus, broadband-slow, "
                   "puffer, "
                   r"trace:<path>\[:scale\[:rtt_ms\]\]"),
        ("constant:abc:10", "malformed link 'constant:abc:10'"),
        ("constant:10", "malformed link 'constant:10'"),
        ("constant:-1:10", "Mbps must be > 0"),
        ("trace:/nonexistent/x.tsv", r"link 'trace:/nonexistent/x.tsv': trace file .* not exist"),
        ("trace:/nonexistent/x.tsv:0", "scale must be a finite number > 0"),
        ("trace:/nonexistent/x.tsv:1:-5", "rtt_ms must be a finite number >= 0"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(ValueError, match=needle):
        parse_link(spec)


def test_transport_links_are_registry_entries_with_hooks():
    from rapid_env.link import LINKS, check_link, link_transport
    from rapid_env.serve import remote_link

    assert "remote:<host:port>" in LINKS.names()
    assert link_transport("remote:127.0.0.1:50051") is remote_link.REMOTE_TRANSPORT
    assert link_transport("wifi") is None and link_transport("constant:1:2") is None
    check_link("remote:127.0.0.1:50051")  # the form only: nothing connects
    with pytest.raises(ValueError, match="expected remote:<host:port>"):
        check_link("remote:nohost")
    with pytest.raises(ValueError, match="is not simulated"):
        parse_link("remote:127.0.0.1:50051")
    with pytest.raises(ValueError, match=r"did you mean 'wifi'\?$"):
        check_link("wiffi")
