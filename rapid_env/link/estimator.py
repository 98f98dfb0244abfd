"""What a decider may know of the link: bandwidth and RTT estimated from completed transfers."""

from __future__ import annotations

from rapid_env.link.base import TransferResult
from rapid_env.link.traces import MTU_BYTES


class LinkEstimator:
    """Bandwidth and RTT estimated only from transfers that have already completed.

    Deciders must not read the link's future, so this sees a transfer only once its arrival time
    has passed (``observe`` is called by the controller at delivery time, and with ``now`` it
    refuses anything that arrives after ``now``). Bandwidth is the harmonic mean of the last
    ``window`` goodput samples (robust to one lucky fast sample, as in robustMPC, Yin et al.,
    SIGCOMM 2015); a goodput sample is bytes over the transfer's time on the wire
    (arrival - start - time queued - RTT / 2). A transfer given up at ``now`` contributes the
    goodput it at best achieved (bytes over ``now - start``), so an outage pulls the estimate
    down while it lasts. RTT is an EWMA (``alpha``) of twice the one-way delay of one-packet
    transfers.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        prior_bps: float = 10e6,
        prior_rtt_s: float = 0.05,
        window: int = 5,
        small_bytes: int = MTU_BYTES,
    ):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.alpha = alpha
        self.prior_bps = prior_bps
        self.prior_rtt_s = prior_rtt_s
        self.window = window
        self.small_bytes = small_bytes
        self.reset()

    def reset(self) -> None:
        """Back to the priors at episode start."""
        self.bandwidth_bps = self.prior_bps
        self.rtt_s = self.prior_rtt_s
        self.samples = 0
        self._goodput: list[float] = []

    def _add_goodput(self, bps: float) -> None:
        self._goodput.append(bps)
        if len(self._goodput) > self.window:
            del self._goodput[0]
        self.bandwidth_bps = len(self._goodput) / sum(1.0 / g for g in self._goodput)

    def observe(self, result: TransferResult, now: float | None = None) -> None:
        """Fold one finished transfer into the estimates (nothing that arrives after ``now``)."""
        if result.arrival is None:
            if now is None or result.nbytes <= self.small_bytes or now <= result.start:
                return  # a lost small transfer says nothing about bandwidth
            self._add_goodput(max(8.0 * result.nbytes / (now - result.start), 1.0))
            self.samples += 1
            return
        if now is not None and result.arrival > now:
            return  # not delivered yet: that would be reading the link's future
        duration = result.arrival - result.start - result.wait_s
        if result.nbytes <= self.small_bytes:  # one packet: duration is ~ one-way delay
            self.rtt_s += self.alpha * (2.0 * duration - self.rtt_s)
        elif result.nbytes > 0:
            serial = max(duration - self.rtt_s / 2.0, 1e-6)
            self._add_goodput(8.0 * result.nbytes / serial)
        self.samples += 1
