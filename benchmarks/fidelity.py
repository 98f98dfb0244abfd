"""Measured vs modelled: real gRPC requests through a shaped path against the link model.

For each case (a link spec) and payload, the script sends real requests through a path shaped to
that spec on this machine and compares each request's measured transfer time (the client's round
trip minus the server's own compute) with what the simulated link predicts for the same bytes at
the same moment: a fresh link from the spec, ``transfer(up_bytes, t, "up")`` then
``transfer(down_bytes, arrival, "down")``, ``arrival - t``.

**The path.** Everything is on loopback in a private network namespace: the script re-executes
itself under ``unshare -n`` (``-rn`` where plain ``-n`` is refused), so nothing it does touches the
host's network, and the namespace goes away with its last process. Client and servers talk over
``127.0.0.1``; one TCP connection per row, end to end::

    client --[tbf "up"]--> lo --[delay d_up]--> server          (request)
    client <--[delay d_down]-- lo <--[tbf "down"]-- server      (reply)

* **Bandwidth: ``tbf``, one per direction.** ``netem`` is not in this kernel; ``tbf`` and ``htb``
  are. The root qdisc of ``lo`` is an ``htb`` that only classifies (three classes at 10 Gbit/s,
  ``u32`` filters on the server's port): packets *to* the server go to a ``tbf`` leaf "up", packets
  *from* it to a ``tbf`` leaf "down" (so the request's ACKs share the downlink, as on a real
  link), anything else is unshaped. ``lo``'s MTU is set to 1500, so segments are Ethernet-sized
  (MSS 1448). ``tbf`` meters wire bytes (IP, TCP and the 14-byte link header), while the model's
  bandwidth is a rate of payload bytes (the trace presets are measured TCP goodput), so the
  ``tbf`` rate is the spec's x 1514/1448 (``--rate-mode goodput``, default; ``wire`` gives ``tbf``
  the spec's rate). The bucket (``burst``) lasts 2 ms of the rate (``--bucket-ms``), in whole
  frames, at least 1600 bytes: a one-frame bucket is refilled within 40 us at 300 Mbit/s, faster
  than the kernel schedules the dequeue, and the shaper then runs far below its rate. The queue
  limit is 32 MiB or 250 ms of the rate, whichever is more: the shaper itself never drops.
* **Delay, ``--delay kernel`` (default where ``iptables`` exists):** an ``iptables`` rule in the
  namespace's ``mangle PREROUTING`` hands every packet for (up) or from (down) the server's port
  to an ``NFQUEUE``; a small netlink program (``--nfqueue`` mode of this script, raw netlink)
  accepts each packet ``d`` seconds after it was queued, in order. The packets wait on the
  receive side, after ``tbf``, as propagation follows serialisation on a real link; the sender's
  TCP sees the real round trip (slow start, the congestion window, BBR's estimates and gRPC's
  HTTP/2 flow control all run over it). Holding packets on the *send* side instead (``OUTPUT``)
  would stall TCP: packets not yet transmitted count against TCP Small Queues.
* **Delay, ``--delay relay``:** a user-space TCP relay (``--relay`` mode, asyncio) between client
  and server delays every chunk it reads by the direction's delay. The relay terminates TCP on
  both sides (split TCP): the client's connection, the one through ``tbf``, has a round trip of
  about zero, so TCP's own dynamics over the delay are not reproduced; HTTP/2 flow control is.
* The delay of each round trip is the one the model draws for it (half the RTT for a constant
  link; the link's own jitter or RTT sample per direction and transfer otherwise, read from the
  model's draw), set before the round trip; each row's connection is opened across the delayed
  path, as a real one is. Jitter is thus one draw per transfer, as the model defines it.
* **Loss** (``lab-wifi6``; ``--delay kernel`` only): each direction's queue of the delay line runs
  the link model's Gilbert-Elliott chain, seeded, over the data segments it sees (a GSO packet
  counts as its segments; pure ACKs are not subject to loss) and drops the packet when the chain
  loses one of them (``NF_DROP``). ``iptables -m statistic`` would drop at random too, but with
  Bernoulli losses and the kernel's unseeded generator, not the model's bursts.
* **Traces**: a thread follows the trace in wall time from ``--trace-offset`` and changes both
  ``tbf`` rates (``tc qdisc change``) at every step; the model's link gets the same start offset
  (instead of its random one) and no timeout (a slow transfer is measured, not lost).

**Payloads.** ``image``: the executable ``chunk-regress`` model's split-0 boundary (its
safetensors bytes, what the edge sends when it runs nothing), as a real ``Infer`` to
``rapid-serve``. ``large``: the ``openvla-7b`` profile's boundary after block 3, inside its
language model (about 2.26 MB). ``rapid-serve`` validates boundary tensors against its own small
model, so these bytes go to an **echo** method instead: a gRPC server this script starts (the
same grpcio, the same channel and server options, the same ``InferRequest``/``InferReply``
messages and metadata) whose handler answers at once with a reply of the real reply's size. The
timed part, the client's round trip minus the handler's time, is the same gRPC transfer as an
``Infer``'s (HTTP/2 framing, flow control, TCP, the shaped path); only the handler differs, and
its time is subtracted on both. As a check, the ``image`` payload also goes through the echo
method (rows marked ``check``): they should agree with the real ``Infer`` rows.

**Requests.** ``image``, ``large``: one round trip. ``loop`` (``--loop-cases``): a split inside
the decoding loop, the round trips of the cost model's plan for ``--loop-split`` (5: OpenVLA's
state after block 3, then six 8 KB per-pass activations), each an echo call; measured is the sum
of the round trips minus the server's times, modelled is ``SimulatedTransport`` over a fresh link
with the plan's transfers (compute stages left out: the comparison is of the link).

Before each case: a raw TCP transfer of 0.4 s of the case's rate through the "up" ``tbf`` checks
that it limits as configured (``bytes / rate`` within ``--check-tolerance``, 3 %). If it does not,
the ``tbf`` rate is scaled by the measured ratio and checked again (``--no-calibrate``: not);
a case whose check still fails is marked UNTRUSTED, left out of the headline, and the script
exits with 1. ``loopback`` rows (no delay, ``tbf`` at 10 Gbit/s) show what the stack itself costs
(client, delay line, server); their small-payload rows give the fixed cost of one round trip.

Output: one row per (case, payload, path) with the median measured and modelled milliseconds, the
median signed and absolute relative error over the row's requests, the same after subtracting the
stack's fixed cost per round trip (``net err``), the first (cold) request's error (a new
connection: TCP slow start, HTTP/2 set-up), how late the delay line released packets on average
and how many it dropped (loss); the last line is ``fidelity: median |measured-modelled|/modelled =
X %`` over the ``net`` errors of all requests of the ``infer``/``echo``/``loop`` rows of trusted
cases (``check`` rows and cold requests excluded); the line before it has the same without the
stack subtracted.
``docs/fidelity.md`` has the results and the explanation of the biases. The parts (relay, kernel
delay line, shaper, echo server, child processes, sessions, the run) are the modules of
``benchmarks/fidelity_bench/``; this file is the command.

Usage (as root or where ``unshare -rn`` works; ``tc`` from ``iproute2``, ``iptables``)::

    python benchmarks/fidelity.py                      # about 3 minutes on 2 cores
    python benchmarks/fidelity.py --requests 4         # quicker
    python benchmarks/fidelity.py --delay relay        # user-space relay instead of NFQUEUE
    python benchmarks/fidelity.py --cc reno            # loss-based TCP instead of the default
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from fidelity_bench.delay_line import nfqueue_main
from fidelity_bench.echo import echo_main
from fidelity_bench.relay import relay_main
from fidelity_bench.run import inside

INSIDE_FLAG = "--inside-netns"
DEFAULT_CASES = ("constant:20:40,constant:5:80,5g-driving,constant:300:10,constant:1000:2,"
                 "jitter:300:8:1,lab-wifi6")
DEFAULT_LOOP_CASES = "constant:20:40,constant:300:10,constant:1000:2,jitter:300:8:1,lab-wifi6"


def parser() -> argparse.ArgumentParser:
    """The flags (internal modes are hidden)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT_CASES,
                    help="comma-separated link specs (constant, presets, or the benchmark's "
                         "jitter:<Mbit/s>:<rtt ms>:<jitter ms>: lab-wifi6 without loss)")
    ap.add_argument("--loop-cases", default=DEFAULT_LOOP_CASES,
                    help="cases that also get 'loop' rows (a split inside the decoding loop)")
    ap.add_argument("--loop-split", type=int, default=5,
                    help="the cost model's split whose round trips a 'loop' request makes")
    ap.add_argument("--bucket-ms", type=float, default=2.0,
                    help="tbf bucket: this many ms of the rate, whole frames, >= 1600 bytes")
    ap.add_argument("--check-tolerance", type=float, default=3.0,
                    help="shaper check: raw TCP must take bytes/rate within this many %%")
    ap.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                    help="when the shaper check is off, scale the tbf rate by what it measured "
                         "and check again (--no-calibrate: mark the case untrusted at once)")
    ap.add_argument("--requests", type=int, default=10, help="measured requests per row")
    ap.add_argument("--warmup", type=int, default=2,
                    help="requests before them on the row's new connection (the first: cold)")
    ap.add_argument("--large-bytes", type=int, default=0,
                    help="size of the large payload (default: openvla-7b's block-3 boundary)")
    ap.add_argument("--trace-offset", type=float, default=13.0,
                    help="trace time (s) where a trace case starts (13: 5g-driving's 42 s "
                         "without an outage)")
    ap.add_argument("--rate-mode", choices=("goodput", "wire"), default="goodput",
                    help="tbf rate = spec x 1514/1448 (payload rate = spec) or = spec")
    ap.add_argument("--gap", type=float, default=0.1,
                    help="idle seconds between two requests of a row")
    ap.add_argument("--cc", default="",
                    help="TCP congestion control in the namespace (default: the kernel's; a "
                         "namespace may only pick tcp_allowed_congestion_control, e.g. reno)")
    ap.add_argument("--one-segment", action="store_true",
                    help="diagnostic: one TCP segment per packet on every row (no GSO), to see "
                         "what per-packet handling costs the delay line")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print every request (stderr)")
    ap.add_argument("--delay", choices=("kernel", "relay"), default=None,
                    help="kernel: NFQUEUE holds packets on receipt (needs iptables; default "
                         "when present); relay: a user-space TCP relay delays chunks")
    ap.add_argument(INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nfqueue", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    ap.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--max-requests", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run a hidden child mode, or re-execute in a new network namespace and run there."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.relay:
        asyncio.run(relay_main([int(p) for p in args.upstream.split(",")]))
        return 0
    if args.echo_server:
        echo_main(args.max_requests, args.max_seconds, reply_values=32)
        return 0
    if args.nfqueue:
        nfqueue_main()
        return 0
    if args.inside_netns:
        return inside(args)
    return in_namespace(args, argv)


def in_namespace(args: argparse.Namespace, argv: list[str]) -> int:
    """Check the cases and the tools, then run this script again under ``unshare -n`` (``-rn``)."""
    from fidelity_bench.model import build_link

    for case in [c for c in args.cases.split(",") if c]:
        try:
            build_link(case)
        except ValueError as err:
            extra = "" if case.startswith("jitter:") else (
                " (the benchmark also takes jitter:<Mbit/s>:<rtt ms>:<jitter ms>)")
            print(f"fidelity: --cases: {err}{extra}", file=sys.stderr)
            return 2
    if args.delay is None:
        args.delay = "kernel" if shutil.which("iptables") else "relay"
        argv += ["--delay", args.delay]
    if args.delay == "kernel" and shutil.which("iptables") is None:
        print("fidelity: --delay kernel needs iptables (apt-get install -y iptables)",
              file=sys.stderr)
        return 2
    for tool in ("tc", "ip", "unshare"):
        if shutil.which(tool) is None:
            print(f"fidelity: needs '{tool}' (apt-get install -y iproute2 util-linux)",
                  file=sys.stderr)
            return 2
    cmd = [sys.executable, os.path.abspath(__file__), *argv, INSIDE_FLAG]
    for unshare in (["unshare", "-n"], ["unshare", "-rn"]):
        probe = subprocess.run([*unshare, "true"], capture_output=True)
        if probe.returncode == 0:
            return subprocess.run([*unshare, "--", *cmd]).returncode
    print("fidelity: cannot create a network namespace (unshare -n / -rn failed)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
