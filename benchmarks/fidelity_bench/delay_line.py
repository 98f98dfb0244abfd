"""``--delay kernel``: the kernel delay line, an NFQUEUE reader over raw netlink.

An ``iptables`` rule in the namespace's ``mangle PREROUTING`` hands every packet for (up) or from
(down) the server's port to an NFQUEUE; this program accepts each packet ``d`` seconds after it
was queued, in order. The packets wait on the receive side, after ``tbf``, as propagation follows
serialisation on a real link, so the sender's TCP sees the real round trip.

Loss (``loss p r loss_good loss_bad seed``): each queue runs the link model's own Gilbert-Elliott
chain (:mod:`rapid_env.link.loss`, one seeded generator per direction) over the packets it sees and
drops a packet (an ``NF_DROP`` verdict, at once) when the chain says so. The benchmark sends one
TCP segment per packet while loss is on, so the chain counts the same 1500-byte packets as the
model's.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from .protocol import late_stats

_NETLINK_NETFILTER = 12
_SO_RCVBUFFORCE = 33
_NFNL_SUBSYS_QUEUE = 3
_NFQNL_MSG_PACKET, _NFQNL_MSG_VERDICT, _NFQNL_MSG_CONFIG, _NFQNL_MSG_VERDICT_BATCH = 0, 1, 2, 3
_NLM_F_REQUEST, _NLM_F_ACK, _NLMSG_ERROR = 1, 4, 2
_NFQA_PACKET_HDR, _NFQA_VERDICT_HDR = 1, 2
_NFQA_CFG_CMD, _NFQA_CFG_PARAMS, _NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
_NFQA_CFG_MASK, _NFQA_CFG_FLAGS, _NFQA_CFG_F_GSO = 4, 5, 4
_NFQNL_CFG_CMD_BIND, _NFQNL_COPY_PACKET, _NF_DROP, _NF_ACCEPT = 1, 2, 0, 1
_NFQA_PAYLOAD = 10
HEAD_BYTES = 60
"""Bytes of each packet copied to the delay line: the IPv4 and TCP headers (for its length)."""
MSS = 1448
QUEUES = {"up": 0, "down": 1}


def _nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("HH", size, kind) + payload + b"\0" * (-size % 4)


def _nfq_msg(kind: int, queue: int, attrs: Sequence[bytes], flags: int = _NLM_F_REQUEST) -> bytes:
    body = struct.pack("BB", socket.AF_UNSPEC, 0) + struct.pack("!H", queue) + b"".join(attrs)
    header = struct.pack("IHHII", 16 + len(body), (_NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0)
    return header + body


class _KernelQueue:
    """One NFQUEUE (one direction): packets are held ``delay`` seconds, then accepted, in order.

    Raw netlink (``nfnetlink_queue``), each packet's first 60 bytes copied (its IPv4 and TCP
    headers, to count its segments for loss), GSO packets whole; verdicts go in batches
    (``NFQNL_MSG_VERDICT_BATCH`` accepts every packet up to an id), drops one by one.
    """

    def __init__(self, num: int) -> None:
        self.num = num
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 32 << 20)
        self.sock.bind((0, 0))
        for attrs in (
            [_nla(_NFQA_CFG_CMD, struct.pack("BBH", _NFQNL_CFG_CMD_BIND, 0, 0))],
            [_nla(_NFQA_CFG_PARAMS, struct.pack("!IB", HEAD_BYTES, _NFQNL_COPY_PACKET))],
            [_nla(_NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 1 << 16))],
            [_nla(_NFQA_CFG_MASK, struct.pack("!I", _NFQA_CFG_F_GSO)),
             _nla(_NFQA_CFG_FLAGS, struct.pack("!I", _NFQA_CFG_F_GSO))],
        ):
            self._config(_nfq_msg(_NFQNL_MSG_CONFIG, num, attrs, _NLM_F_REQUEST | _NLM_F_ACK))
        self.pending: deque[tuple[float, int]] = deque()
        self.delay = 0.0
        self.last_due = 0.0
        self.late: list[float] = []
        self.overruns = 0
        self.channel: Any = None  # a GilbertElliottChannel while loss is on
        self.dropped = 0

    def set_loss(self, words: Sequence[str]) -> None:
        """``off``, or ``p r loss_good loss_bad seed``: this queue's own seeded chain."""
        if words[0] == "off":
            self.channel = None
            return
        import numpy as np

        from rapid_env.link.loss import GilbertElliott, GilbertElliottChannel

        p, r, good, bad = (float(w) for w in words[:4])
        rng = np.random.default_rng([int(words[4]), self.num])
        self.channel = GilbertElliottChannel(GilbertElliott(p, r, good, bad), rng)

    def _config(self, message: bytes) -> None:
        self.sock.send(message)
        reply = self.sock.recv(65536)
        if struct.unpack_from("IH", reply)[1] == _NLMSG_ERROR:
            err = struct.unpack_from("i", reply, 16)[0]
            if err:
                raise OSError(-err, f"nfqueue {self.num} config: {os.strerror(-err)}")

    def read(self, now: float) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except OSError:  # ENOBUFS: the kernel dropped what it could not hand over
            self.overruns += 1
            return
        off = 0
        while off + 16 <= len(data):
            size, kind = struct.unpack_from("IH", data, off)
            if size < 16:
                break
            if kind == (_NFNL_SUBSYS_QUEUE << 8) | _NFQNL_MSG_PACKET:
                a, end = off + 20, off + size
                pid, head = -1, b""
                while a + 4 <= end:
                    alen, atype = struct.unpack_from("HH", data, a)
                    if alen < 4:
                        break
                    if atype & 0x7FFF == _NFQA_PACKET_HDR:
                        pid = struct.unpack_from("!I", data, a + 4)[0]
                    elif atype & 0x7FFF == _NFQA_PAYLOAD:
                        head = data[a + 4:a + alen]
                    a += (alen + 3) & ~3
                if pid < 0:
                    pass
                elif self.channel is not None and self.channel.count(segments(head)):
                    self.dropped += 1
                    verdict = _nla(_NFQA_VERDICT_HDR, struct.pack("!II", _NF_DROP, pid))
                    self.sock.send(_nfq_msg(_NFQNL_MSG_VERDICT, self.num, [verdict]))
                else:
                    due = max(now + self.delay, self.last_due)
                    self.last_due = due
                    self.pending.append((due, pid))
            off += (size + 3) & ~3

    def release(self, now: float) -> None:
        last = None
        while self.pending and self.pending[0][0] <= now:
            due, last = self.pending.popleft()
            self.late.append(now - due)
        if last is not None:
            verdict = _nla(_NFQA_VERDICT_HDR, struct.pack("!II", _NF_ACCEPT, last))
            self.sock.send(_nfq_msg(_NFQNL_MSG_VERDICT_BATCH, self.num, [verdict]))


def segments(head: bytes) -> int:
    """TCP segments of payload in a packet from its first bytes (IPv4 + TCP headers); 0: none.

    A GSO packet arrives whole (up to 64 KB, IPv4 total length is its full length), so the loss
    chain advances by the segments it will be on a real link. Pure ACKs carry no payload and
    are not subject to loss: the model's chain counts the transfers' data packets only.
    """
    if len(head) < 20 or head[0] >> 4 != 4:
        return 0
    ihl = (head[0] & 0x0F) * 4
    total = struct.unpack_from("!H", head, 2)[0]
    if len(head) < ihl + 13:
        return 0
    doff = (head[ihl + 12] >> 4) * 4
    data = total - ihl - doff
    return 0 if data <= 0 else -(-data // MSS)


def nfqueue_main() -> None:
    """The kernel delay line: queues 0 (up) and 1 (down); commands on stdin as the relay's."""
    queues = {d: _KernelQueue(n) for d, n in QUEUES.items()}
    by_fd = {q.sock.fileno(): q for q in queues.values()}
    print("ready", flush=True)
    buf = b""
    while True:
        dues = [q.pending[0][0] for q in queues.values() if q.pending]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else 1.0
        ready, _, _ = select.select([*by_fd, 0], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            if fd != 0:
                by_fd[fd].read(now)
                continue
            chunk = os.read(0, 4096)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                words = line.decode().split()
                if words and words[0] == "delay":
                    queues["up"].delay, queues["down"].delay = float(words[1]), float(words[2])
                    print("ok", flush=True)
                elif words and words[0] == "loss":
                    for q in queues.values():
                        q.set_loss(words[1:])
                    print("ok", flush=True)
                elif words and words[0] == "stats":
                    late = [x for q in queues.values() for x in q.late]
                    for q in queues.values():
                        q.late.clear()
                    overruns = sum(q.overruns for q in queues.values())
                    dropped = sum(q.dropped for q in queues.values())
                    for q in queues.values():
                        q.dropped = 0
                    print(late_stats(late, overruns, dropped), flush=True)
        now = time.monotonic()
        for q in queues.values():
            q.release(now)


def iptables_rules(port: int) -> list[list[str]]:
    """Rules that queue what arrives for ``port`` (up) and from it (down), on receipt."""
    return [
        ["iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-p", "tcp", flag, str(port),
         "-j", "NFQUEUE", "--queue-num", str(QUEUES[direction])]
        for flag, direction in (("--dport", "up"), ("--sport", "down"))
    ]
