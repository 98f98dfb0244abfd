"""Named links (``wifi``, ``5g-driving``, ...): how each is built and where its numbers come from.

:data:`PRESETS` keeps each preset's description, source and licence as data, for the docs and
W&B; the spec registry (:mod:`rapid_env.link.spec`) builds them by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rapid_env.link.base import Link
from rapid_env.link.latency import Latency
from rapid_env.link.loss import GilbertElliott
from rapid_env.link.models import TraceLink
from rapid_env.link.traces import BandwidthTrace, bundled, load_rtt_samples, load_trace


@dataclass(frozen=True)
class LinkPreset:
    """A named link: how to build it and where its numbers come from (for docs and W&B)."""

    name: str
    description: str
    source: str
    licence: str
    build: Callable[[], Link]


def _rtt_5g() -> Latency:
    # 5Gophers round-trip-times.csv: Verizon (the mmWave carrier of the paper), US-East server.
    path = bundled("5gophers/round-trip-times.csv")
    return Latency.empirical(load_rtt_samples(path, carrier="VERIZON", server_location="US-East"))


def _rtt_4g() -> Latency:
    # 5Gophers ping-trace-02.log: 4G ICMP probes to a US-East server (first-hop logs excluded:
    # a cloud is not the first hop).
    return Latency.empirical(load_rtt_samples(bundled("5gophers/ping-trace-02.log")))


def _tsv_preset(file: str, ratio: float, base_rtt_s: float, jitter_s: float, name: str) -> Link:
    return TraceLink(
        load_trace(bundled(file)),
        uplink_ratio=ratio,
        latency=Latency(base_rtt_s, jitter_s),
        name=name,
    )


def _wifi(name: str, rate_bps: float, base_rtt_s: float, jitter_s: float, loss: float) -> Link:
    """A parametric Wi-Fi link: one shared rate both ways, jittered RTT, bursty loss (2 packets)."""
    return TraceLink(
        BandwidthTrace.constant(rate_bps, name),
        latency=Latency(base_rtt_s, jitter_s),
        loss=GilbertElliott.from_loss(loss, 2.0),
        random_start=False,
        name=name,
    )


PRESETS: dict[str, LinkPreset] = {
    p.name: p
    for p in (
        LinkPreset(
            "wifi",
            "parametric home/lab Wi-Fi: 40 Mbit/s both ways (802.11 shares one channel, so the "
            "same rate up and down), base RTT 20 ms + exponential jitter (mean 2 ms per "
            "direction), Gilbert-Elliott loss 1% in bursts of 2 packets (mean), TCP repair",
            "no trace bundled; bursty-loss shape after Carvalho et al., 'A New Packet Loss Model "
            "of the IEEE 802.11g Wireless Network for Multimedia Communications' (IEEE Trans. "
            "Consumer Electronics 2005); the numbers are this project's assumptions",
            "n/a (parametric)",
            lambda: _wifi("wifi", 40e6, 0.020, 0.002, 0.01),
        ),
        LinkPreset(
            "lab-wifi6",
            "parametric lab Wi-Fi 6 to an on-site GPU server (the paper's regime, docs/paper.md): "
            "300 Mbit/s both ways, base RTT 8 ms + exponential jitter (mean 1 ms per "
            "direction), Gilbert-Elliott loss 0.2% in bursts of 2 packets (mean), TCP repair",
            "no trace bundled; a typical 802.11ax single-client TCP rate and LAN round trip. The "
            "paper does not describe its network; the numbers are this project's assumptions",
            "n/a (parametric)",
            lambda: _wifi("lab-wifi6", 300e6, 0.008, 0.001, 0.002),
        ),
        LinkPreset(
            "5g-driving",
            "Verizon mmWave 5G while driving (5Gophers car-driving-trace-1, Verizon column, "
            "120 s, mean 275 Mbit/s down, outages to 0); uplink = 0.1 x downlink; RTT sampled "
            "from 5Gophers Verizon US-East RTTs (mean 62 ms)",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/car-driving-trace-1.csv"), carrier="Verizon"),
                uplink_ratio=0.1,
                latency=_rtt_5g(),
                name="5g-driving",
            ),
        ),
        LinkPreset(
            "5g-walking",
            "mmWave 5G while walking (5Gophers walking-trace, 603 s, 4G/5G hand-offs, mean "
            "333 Mbit/s down); uplink = 0.1 x downlink; RTT as 5g-driving",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/walking-trace.csv")),
                uplink_ratio=0.1,
                latency=_rtt_5g(),
                name="5g-walking",
            ),
        ),
        LinkPreset(
            "4g",
            "LTE: the 4G-radio rows of the 5Gophers walking trace joined (315 s, mean "
            "159 Mbit/s down, drops to 0); uplink = 0.25 x downlink; RTT sampled from the 4G "
            "ping log to US-East (ping-trace-02, mean 57 ms)",
            "5Gophers 1.0, Narayanan et al., WWW 2020",
            "CC BY 4.0",
            lambda: TraceLink(
                load_trace(bundled("5gophers/walking-trace.csv"), radio="4G"),
                uplink_ratio=0.25,
                latency=_rtt_4g(),
                name="4g",
            ),
        ),
        LinkPreset(
            "3g-train",
            "HSDPA 3G on a commuter train (hsdpa3g_train_1, 299 s, time-weighted mean "
            "1.19 Mbit/s, deep fades); uplink = 0.5 x downlink; RTT 90 ms base + exponential "
            "jitter 15 ms/direction",
            "Riiser et al., MMSys 2013 (Telenor, Oslo), via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("hsdpa3g_train_1.tsv", 0.5, 0.090, 0.015, "3g-train"),
        ),
        LinkPreset(
            "3g-bus",
            "HSDPA 3G on a bus (hsdpa3g_bus_1, 155 s, mean 2.91 Mbit/s); uplink = 0.5 x "
            "downlink; RTT as 3g-train",
            "Riiser et al., MMSys 2013 (Telenor, Oslo), via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("hsdpa3g_bus_1.tsv", 0.5, 0.090, 0.015, "3g-bus"),
        ),
        LinkPreset(
            "broadband-slow",
            "slow fixed broadband (fcc_broadband_3, 1675 s, mean 0.49 Mbit/s, 9 zero-rate "
            "samples); uplink = 0.25 x downlink (asymmetric DSL); RTT 30 ms + jitter 2 ms",
            "FCC Measuring Broadband America 2016, filtered by Pensieve, via "
            "Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("fcc_broadband_3.tsv", 0.25, 0.030, 0.002, "broadband-slow"),
        ),
        LinkPreset(
            "puffer",
            "residential access seen by a Puffer video client (puffer_1, 1248 s, mean "
            "2.02 Mbit/s, near-zero dips); uplink = 0.25 x downlink; RTT 40 ms + jitter 5 ms",
            "Puffer (Yan et al., NSDI 2020), 2022-02-18 sessions, via Real-world-bandwidth-traces",
            "MIT (c) 2023 Nuowen Kan (collection)",
            lambda: _tsv_preset("puffer_1.tsv", 0.25, 0.040, 0.005, "puffer"),
        ),
    )
}
