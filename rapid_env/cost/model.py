"""Turn a cost profile, two devices and a split point into an ordered inference plan.

The plan is what the partitioned runtime executes in simulated time: compute stages last a number
of seconds on their device, transfer stages carry a number of bytes over the simulated network
link, which charges them its own latency, bandwidth and queueing. The cost model itself knows
nothing about the link; only the planner (:meth:`CostModel.split_table`,
:meth:`CostModel.best_split`) uses a closed-form link (RTT/2 plus serialisation per transfer) to
rank split points, as Neurosurgeon does.

Two readings of how a split runs are parameters of the model, not fixed rules (RAPID's own
authors use both in their split search, RoboECC):

* the **placement**: ``"edge-prefix"`` (the default) runs the first ``k`` blocks on the edge and
  ships their output up; ``"edge-suffix"`` runs the first ``n - k`` blocks in the cloud on the
  uploaded raw input, ships the cut activation down and runs the last ``k`` blocks (the LM head
  or action head included) on the edge, which produces the action. Either way ``k`` is the
  number of blocks on the edge, so ``k == 0`` is cloud-only and ``k == n`` edge-only under both.
* the **loop cost** of a split inside the profile's loop: ``"per-pass"`` (the default) pays a
  full round trip per pass, ``"once"`` ships the cut state once and runs the rest of the loop on
  one side (compute unchanged), so the plan has the shape of a split outside the loop.

Time per block is a roofline on the device running it, pass by pass: the first (prefill) pass
(compute-bound for a 276-token prompt) and every further pass of the profile's loop -- a
single-token decode step, a flow-matching or denoising step -- are costed separately and added,
because they run one after the other. A loop block re-reads its weights and its KV cache (its own,
or the VLM prefix's it attends to) on every pass, so over an inference a decoder layer reads
``weight_bytes * (1 + decode_steps)`` bytes of weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, get_args, overload

from rapid_env.cost.devices import DEVICES, DeviceProfile
from rapid_env.cost.profiles import PROFILES, ArchProfile, BlockCost

StageKind = Literal["edge", "up", "cloud", "down"]
COMPUTE_KINDS: frozenset[str] = frozenset({"edge", "cloud"})
TRANSFER_KINDS: frozenset[str] = frozenset({"up", "down"})

Placement = Literal["edge-prefix", "edge-suffix"]
"""Which end of the model the edge holds: its first ``k`` blocks, or its last ``k``."""
PLACEMENTS: tuple[str, ...] = get_args(Placement)

LoopCost = Literal["per-pass", "once"]
"""What a split inside the profile's loop costs on the link: a round trip per pass, or one."""
LOOP_COSTS: tuple[str, ...] = get_args(LoopCost)


@dataclass(frozen=True)
class Stage:
    """One step of an inference plan, executed in order.

    Attributes:
        kind: ``"edge"``/``"cloud"``: compute for ``seconds`` on that device; ``"up"``/``"down"``:
            send ``nbytes`` edge->cloud / cloud->edge over the link.
        seconds: Compute time; 0 for transfer stages (the link decides their time).
        nbytes: Bytes transferred; 0 for compute stages.
    """

    kind: StageKind
    seconds: float
    nbytes: int

    def __post_init__(self) -> None:
        if self.kind in COMPUTE_KINDS:
            if not self.seconds >= 0 or self.nbytes != 0:
                raise ValueError(f"compute stage needs seconds >= 0 and nbytes == 0: {self}")
        elif self.kind in TRANSFER_KINDS:
            if self.seconds != 0 or self.nbytes < 0:
                raise ValueError(f"transfer stage needs seconds == 0 and nbytes >= 0: {self}")
        else:
            raise ValueError(f"unknown stage kind {self.kind!r}; allowed: edge, up, cloud, down")


@dataclass(frozen=True)
class InferencePlan:
    """The ordered stages of one inference at split point ``split``; behaves like a tuple.

    Attributes:
        split: The number of blocks on the edge: ``[0, split)`` under ``edge-prefix``,
            ``[n - split, n)`` under ``edge-suffix``; the rest run in the cloud.
        stages: The stages, in execution order.
        placement: Which end of the model the edge holds (:data:`Placement`); an early exit
            (:func:`rapid_env.transport.early_exit`) needs to know it.
    """

    split: int
    stages: tuple[Stage, ...]
    placement: Placement = "edge-prefix"

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    @overload
    def __getitem__(self, index: int) -> Stage: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Stage, ...]: ...
    def __getitem__(self, index: int | slice) -> Stage | tuple[Stage, ...]:
        return self.stages[index]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The stage kinds in order, e.g. ``("up", "cloud", "down")``."""
        return tuple(s.kind for s in self.stages)

    @property
    def edge_seconds(self) -> float:
        """Total edge compute time."""
        return sum(s.seconds for s in self.stages if s.kind == "edge")

    @property
    def cloud_seconds(self) -> float:
        """Total cloud compute time."""
        return sum(s.seconds for s in self.stages if s.kind == "cloud")

    @property
    def up_bytes(self) -> int:
        """Total bytes sent edge -> cloud."""
        return sum(s.nbytes for s in self.stages if s.kind == "up")

    @property
    def down_bytes(self) -> int:
        """Total bytes sent cloud -> edge."""
        return sum(s.nbytes for s in self.stages if s.kind == "down")

    @property
    def n_transfers(self) -> int:
        """Number of transfer stages (each pays the link's one-way latency)."""
        return sum(1 for s in self.stages if s.kind in TRANSFER_KINDS)

    def latency_s(self, bandwidth_bps: float, rtt_s: float) -> float:
        """Closed-form end-to-end latency on an idle symmetric link, for ranking splits.

        Each transfer costs ``rtt_s / 2 + 8 * nbytes / bandwidth_bps``; stages run back to back.
        The simulated link used by the runtime replaces this with its own model.
        """
        if bandwidth_bps <= 0 or rtt_s < 0:
            raise ValueError(f"need bandwidth_bps > 0 and rtt_s >= 0, got {bandwidth_bps}, {rtt_s}")
        total = 0.0
        for stage in self.stages:
            if stage.kind in TRANSFER_KINDS:
                total += rtt_s / 2 + 8.0 * stage.nbytes / bandwidth_bps
            else:
                total += stage.seconds
        return total


class CostModel:
    """Latency and memory of one VLA architecture split between an edge and a cloud device.

    Split points ``k`` run from 0 to ``n_blocks`` and count the blocks on the edge: blocks
    ``[0, k)`` under ``edge-prefix`` (the cloud runs ``[k, n)``), ``[n - k, n)`` under
    ``edge-suffix`` (the cloud runs ``[0, n - k)``). ``k == 0`` is cloud-only (the raw input goes
    up), ``k == n_blocks`` is edge-only (no transfers at all), whatever the placement.

    Args:
        profile: The architecture's cost profile.
        edge: The device on the robot.
        cloud: The remote device.
        placement: Which end of the model the edge holds (:data:`PLACEMENTS`).
        loop_cost: What a split inside the loop costs on the link (:data:`LOOP_COSTS`).
    """

    def __init__(
        self,
        profile: ArchProfile,
        edge: DeviceProfile,
        cloud: DeviceProfile,
        placement: Placement = "edge-prefix",
        loop_cost: LoopCost = "per-pass",
    ) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r}; allowed: {', '.join(PLACEMENTS)}")
        if loop_cost not in LOOP_COSTS:
            raise ValueError(f"loop_cost={loop_cost!r}; allowed: {', '.join(LOOP_COSTS)}")
        self.profile = profile
        self.edge = edge
        self.cloud = cloud
        self.placement: Placement = placement
        self.loop_cost: LoopCost = loop_cost
        steps = profile.decode_steps
        # Per block and device: (prefill seconds, one decode step's seconds).
        self._edge_times = tuple(_block_times(b, edge, steps) for b in profile.blocks)
        self._cloud_times = tuple(_block_times(b, cloud, steps) for b in profile.blocks)

    def __repr__(self) -> str:
        readings = "".join(
            f", {name}={value!r}"
            for name, value, default in (("placement", self.placement, "edge-prefix"),
                                         ("loop_cost", self.loop_cost, "per-pass"))
            if value != default
        )
        return (
            f"CostModel(profile={self.profile.name!r}, edge={self.edge.name!r}, "
            f"cloud={self.cloud.name!r}{readings})"
        )

    def with_readings(
        self, placement: Placement | None = None, loop_cost: LoopCost | None = None
    ) -> CostModel:
        """The same profile and devices under another placement and/or loop cost.

        Example:
            >>> model = build_cost_model()
            >>> model.with_readings(placement="edge-suffix").deepest_split_within(2.4 * 2**30)
            6
        """
        return CostModel(
            self.profile,
            self.edge,
            self.cloud,
            self.placement if placement is None else placement,
            self.loop_cost if loop_cost is None else loop_cost,
        )

    @property
    def n_blocks(self) -> int:
        """Number of blocks; valid split points are ``0..n_blocks``."""
        return self.profile.n_blocks

    @property
    def splits(self) -> range:
        """All split points, ``range(n_blocks + 1)``."""
        return range(self.n_blocks + 1)

    def _check_split(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= self.n_blocks:
            raise ValueError(f"split point must be an int in 0..{self.n_blocks}, got {k!r}")
        return k

    def cut(self, k: int) -> int:
        """The block index where split ``k`` cuts the model: ``k`` (edge-prefix), ``n - k``.

        Blocks before the cut run on one side, the rest on the other; ``cut - 1`` is the block
        whose output crosses the link.
        """
        self._check_split(k)
        return k if self.placement == "edge-prefix" else self.n_blocks - k

    def edge_blocks(self, k: int) -> range:
        """Indices of the blocks the edge runs at split ``k`` (``k`` of them)."""
        cut = self.cut(k)
        return range(0, cut) if self.placement == "edge-prefix" else range(cut, self.n_blocks)

    def cloud_blocks(self, k: int) -> range:
        """Indices of the blocks the cloud runs at split ``k`` (``n_blocks - k`` of them)."""
        cut = self.cut(k)
        return range(cut, self.n_blocks) if self.placement == "edge-prefix" else range(0, cut)

    def splits_decoder(self, k: int) -> bool:
        """Tell whether ``k`` cuts the profile's loop (loop blocks on both sides of the cut).

        The loop is the autoregressive decoder, the flow-matching expert or the diffusion head
        (``ArchProfile.loop``); under ``loop_cost="per-pass"`` cutting it costs a round trip per
        pass. A structural fact: it does not depend on the loop cost.
        """
        cut = self.cut(k)
        blocks = self.profile.blocks
        return 0 < k < self.n_blocks and blocks[cut - 1].per_token and blocks[cut].per_token

    def _seconds(self, times: tuple[tuple[float, float], ...], lo: int, hi: int) -> float:
        """Whole-inference time of blocks ``[lo, hi)``: prefill plus all decode steps."""
        steps = self.profile.decode_steps
        return sum(pre + steps * step for pre, step in times[lo:hi])

    def compute_seconds(self, k: int) -> tuple[float, float]:
        """Edge and cloud compute seconds of one inference at split ``k`` (no transfers)."""
        cut, n = self.cut(k), self.n_blocks
        if self.placement == "edge-prefix":
            return self._seconds(self._edge_times, 0, cut), self._seconds(self._cloud_times, cut, n)
        return self._seconds(self._edge_times, cut, n), self._seconds(self._cloud_times, 0, cut)

    def plan(self, k: int) -> InferencePlan:
        """Return the ordered stages of one inference at split ``k``.

        Shapes under ``edge-prefix`` (the cut activation is the output of block ``k - 1``):
            * ``k == n_blocks``: ``[edge]``.
            * ``k == 0``: ``[up(input_bytes), cloud, down(output_bytes)]``.
            * split outside the loop: ``[edge, up(activation), cloud, down(output)]``.
            * split inside the loop, ``loop_cost="per-pass"``: the prefill round ``[edge, up(cut
              activation), cloud, down(token_bytes)]`` followed by ``decode_steps`` rounds
              ``[edge, up(one pass's activation), cloud, down(token_bytes)]``; the last ``down``
              carries the action output instead. ``token_bytes`` is a token id
              (autoregressive) or a velocity / denoised sample (flow / diffusion), whatever the
              edge half needs for its next pass. Every pass pays a full round trip; that is the
              honest price of cutting a loop, and why such splits rarely win on real links.
            * split inside the loop, ``loop_cost="once"``: the shape of a split outside it (the
              cut state crosses once, the rest of the loop runs on one side; compute unchanged).

        Under ``edge-suffix`` (the cut activation is the output of block ``n - k - 1``) the
        cloud goes first and the edge produces the action, so nothing comes down at the end:
            * ``k == n_blocks`` and ``k == 0``: as above.
            * split outside the loop, or ``loop_cost="once"``: ``[up(input_bytes), cloud,
              down(cut activation), edge]``.
            * split inside the loop, ``loop_cost="per-pass"``: ``[up(input_bytes), cloud,
              down(cut activation), edge]`` followed by ``decode_steps`` rounds
              ``[up(token_bytes), cloud, down(one pass's activation), edge]``: the cloud's
              blocks need the token the edge's head just produced.
        """
        prof = self.profile
        n = self.n_blocks
        cut = self.cut(k)
        placement = self.placement
        if k == n:
            edge_s = self._seconds(self._edge_times, 0, n)
            return InferencePlan(k, (Stage("edge", edge_s, 0),), placement)
        edge_s, cloud_s = self.compute_seconds(k)
        stages: tuple[Stage, ...]
        if k == 0:
            stages = (
                Stage("up", 0.0, prof.input_bytes),
                Stage("cloud", cloud_s, 0),
                Stage("down", 0.0, prof.output_bytes),
            )
            return InferencePlan(k, stages, placement)
        block = prof.blocks[cut - 1]  # its output crosses the link
        if not self.splits_decoder(k) or self.loop_cost == "once":
            activation = _ceil_bytes(block.activation_bytes)
            if placement == "edge-prefix":
                stages = (
                    Stage("edge", edge_s, 0),
                    Stage("up", 0.0, activation),
                    Stage("cloud", cloud_s, 0),
                    Stage("down", 0.0, prof.output_bytes),
                )
            else:
                stages = (
                    Stage("up", 0.0, prof.input_bytes),
                    Stage("cloud", cloud_s, 0),
                    Stage("down", 0.0, activation),
                    Stage("edge", edge_s, 0),
                )
            return InferencePlan(k, stages, placement)
        return InferencePlan(k, self._loop_rounds(k, block), placement)

    def _loop_rounds(self, k: int, block: BlockCost) -> tuple[Stage, ...]:
        """The per-pass rounds of a split inside the loop (see :meth:`plan`)."""
        prof = self.profile
        edge, cloud = self.edge_blocks(k), self.cloud_blocks(k)
        edge_prefill = sum(self._edge_times[i][0] for i in edge)
        cloud_prefill = sum(self._cloud_times[i][0] for i in cloud)
        edge_step = sum(self._edge_times[i][1] for i in edge)
        cloud_step = sum(self._cloud_times[i][1] for i in cloud)
        rounds = prof.decode_steps + 1
        out: list[Stage] = []
        for r in range(rounds):
            first = r == 0
            crossing = _ceil_bytes(
                block.activation_bytes if first else block.decode_activation_bytes
            )
            edge_stage = Stage("edge", edge_prefill if first else edge_step, 0)
            cloud_stage = Stage("cloud", cloud_prefill if first else cloud_step, 0)
            if self.placement == "edge-prefix":
                last = r == rounds - 1
                out += [
                    edge_stage,
                    Stage("up", 0.0, crossing),
                    cloud_stage,
                    Stage("down", 0.0, prof.output_bytes if last else prof.token_bytes),
                ]
            else:
                out += [
                    Stage("up", 0.0, prof.input_bytes if first else prof.token_bytes),
                    cloud_stage,
                    Stage("down", 0.0, crossing),
                    edge_stage,
                ]
        return tuple(out)

    def cloud_stage_seconds(self, k: int, batch: int = 1) -> tuple[float, ...]:
        """Seconds of each cloud stage of :meth:`plan` ``(k)`` when ``batch`` requests share it.

        In plan order: one entry for a split outside the loop, ``decode_steps + 1`` for a
        per-pass split inside it. At ``batch=1`` they are exactly the plan's cloud stages; a
        shared cloud (:mod:`rapid_env.fleet`) times a batch with them.

        Example:
            >>> model = build_cost_model()
            >>> one, eight = model.cloud_stage_seconds(0)[0], model.cloud_stage_seconds(0, 8)[0]
            >>> round(one * 1e3, 1), round(eight / one, 2)
            (72.3, 3.55)
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch={batch!r}; allowed: an int >= 1")
        if batch == 1:
            return tuple(s.seconds for s in self.plan(k).stages if s.kind == "cloud")
        steps = self.profile.decode_steps
        times = tuple(_block_times(b, self.cloud, steps, batch) for b in self.profile.blocks)
        blocks = self.cloud_blocks(k)
        if self.splits_decoder(k) and self.loop_cost == "per-pass":
            prefill = sum(times[i][0] for i in blocks)
            step = sum(times[i][1] for i in blocks)
            return (prefill, *([step] * steps))
        if k == self.n_blocks:
            return ()
        return (self._seconds(times, blocks.start, blocks.stop),)

    def cloud_memory_bytes(self) -> tuple[float, float]:
        """GPU memory of a cloud that serves every split: (weights, one request's state).

        The cloud holds the whole model, since a cloud-only request needs every block; each
        request in service adds its KV cache and two buffers of the largest activation (the
        reading :meth:`edge_memory_bytes` uses on the edge). Memory admission divides the
        device's memory left after the weights by the second number.
        """
        blocks = self.profile.blocks
        weights = sum(b.weight_bytes for b in blocks)
        state = sum(b.kv_cache_bytes for b in blocks) + 2.0 * max(
            [b.activation_bytes for b in blocks] + [float(self.profile.input_bytes)]
        )
        return weights, state

    def edge_memory_bytes(self, k: int) -> float:
        """Edge memory at split ``k``: resident weights, KV cache, and an activation estimate.

        The activation term is twice the largest tensor crossing a block boundary on the edge
        (an input and an output buffer alive at once), the cut included: under ``edge-suffix``
        the edge's first input is the cut activation it receives. Weights dominate by orders of
        magnitude.
        """
        edge_blocks = [self.profile.blocks[i] for i in self.edge_blocks(k)]
        if not edge_blocks:
            return 0.0
        weights = sum(b.weight_bytes for b in edge_blocks)
        kv = sum(b.kv_cache_bytes for b in edge_blocks)
        largest = max(b.activation_bytes for b in edge_blocks)
        if self.placement == "edge-suffix" and k < self.n_blocks:
            largest = max(largest, self.profile.blocks[self.cut(k) - 1].activation_bytes)
        return weights + kv + 2.0 * largest

    def deepest_split_within(self, memory_budget_bytes: float) -> int:
        """The deepest split whose edge share fits in ``memory_budget_bytes`` (a fixed partition).

        Works per placement: under ``edge-suffix`` it is the longest tail that fits.

        Example:
            >>> model = build_cost_model("openvla-7b", "jetson-agx-orin", "a100")
            >>> model.deepest_split_within(2.4 * 2**30), model.deepest_split_within(4.7 * 2**30)
            (5, 11)
            >>> tail = model.with_readings(placement="edge-suffix")
            >>> tail.deepest_split_within(2.4 * 2**30), tail.deepest_split_within(4.7 * 2**30)
            (6, 12)
        """
        budget = self._budget(memory_budget_bytes)
        return max(k for k in self.splits if self.edge_memory_bytes(k) <= budget)

    def fits_edge(self, k: int, memory_budget_bytes: float | None = None) -> bool:
        """Whether the edge can hold its share of the model at split ``k``.

        Args:
            k: Split point.
            memory_budget_bytes: Edge memory available to the model; default: the edge device's
                whole memory. Pass less to leave room for the OS, the camera pipeline, a
                controller.
        """
        return self.edge_memory_bytes(k) <= self._budget(memory_budget_bytes)

    def _budget(self, memory_budget_bytes: float | None) -> float:
        """The edge memory budget: the given one (validated) or the device's memory."""
        if memory_budget_bytes is None:
            return self.edge.memory_bytes
        if not memory_budget_bytes >= 0:
            raise ValueError(f"memory_budget_bytes must be >= 0, got {memory_budget_bytes!r}")
        return float(memory_budget_bytes)

    def latency_s(self, k: int, bandwidth_bps: float, rtt_s: float) -> float:
        """Closed-form latency of split ``k`` on an idle link (see ``InferencePlan.latency_s``)."""
        return self.plan(k).latency_s(bandwidth_bps, rtt_s)

    def split_cost(
        self, k: int, bandwidth_bps: float, rtt_s: float, memory_budget_bytes: float | None = None
    ) -> SplitCost:
        """One row of :meth:`split_table`: latency, memory and traffic of split ``k``."""
        plan = self.plan(k)
        memory = self.edge_memory_bytes(k)
        return SplitCost(
            split=k,
            latency_s=plan.latency_s(bandwidth_bps, rtt_s),
            edge_memory_bytes=memory,
            fits=memory <= self._budget(memory_budget_bytes),
            edge_s=float(plan.edge_seconds),
            cloud_s=float(plan.cloud_seconds),
            up_bytes=plan.up_bytes,
            down_bytes=plan.down_bytes,
            n_transfers=plan.n_transfers,
        )

    def split_table(
        self, bandwidth_bps: float, rtt_s: float, memory_budget_bytes: float | None = None
    ) -> tuple[SplitCost, ...]:
        """Neurosurgeon's table: for every split ``k = 0..n_blocks``, its latency and edge memory.

        Args:
            bandwidth_bps: Link bandwidth in bits per second (both directions).
            rtt_s: Round-trip time in seconds; each transfer pays half of it.
            memory_budget_bytes: Edge memory budget for the ``fits`` column; default: the edge
                device's memory.

        Returns:
            One :class:`SplitCost` per split point, in order (``table[k].split == k``).
        """
        self._budget(memory_budget_bytes)  # validate once, before the loop
        return tuple(
            self.split_cost(k, bandwidth_bps, rtt_s, memory_budget_bytes) for k in self.splits
        )

    def best_split(
        self, bandwidth_bps: float, rtt_s: float, memory_budget_bytes: float | None = None
    ) -> int:
        """Neurosurgeon-style latency-optimal split among those whose edge share fits in memory.

        Args:
            bandwidth_bps: Link bandwidth in bits per second (both directions).
            rtt_s: Round-trip time in seconds; each transfer pays half of it.
            memory_budget_bytes: Edge memory available to the model; default: the edge device's
                memory. A 7B model on an 8 GB Jetson therefore never comes out edge-only.

        Returns:
            The split point with the lowest closed-form latency among those that fit; ties go to
            the smaller ``k`` (less edge memory). ``k == 0`` needs no edge memory, so there is
            always an answer.
        """
        table = self.split_table(bandwidth_bps, rtt_s, memory_budget_bytes)
        fitting = [row for row in table if row.fits]
        return min(fitting, key=lambda row: (row.latency_s, row.split)).split


@dataclass(frozen=True)
class SplitCost:
    """What one split point costs on a given link: a row of :meth:`CostModel.split_table`.

    Attributes:
        split: The split point ``k`` (``k`` blocks on the edge, see :class:`CostModel`).
        latency_s: Closed-form end-to-end latency on an idle link (``InferencePlan.latency_s``).
        edge_memory_bytes: Edge memory needed (``CostModel.edge_memory_bytes``).
        fits: Whether ``edge_memory_bytes`` is within the edge memory budget.
        edge_s: Edge compute seconds.
        cloud_s: Cloud compute seconds.
        up_bytes: Bytes sent edge -> cloud over the inference.
        down_bytes: Bytes sent cloud -> edge over the inference.
        n_transfers: Transfers, each paying half the RTT (a split inside a loop pays per pass).
    """

    split: int
    latency_s: float
    edge_memory_bytes: float
    fits: bool
    edge_s: float
    cloud_s: float
    up_bytes: int
    down_bytes: int
    n_transfers: int

    @property
    def transfer_s(self) -> float:
        """Seconds on the link: latency minus compute."""
        return self.latency_s - self.edge_s - self.cloud_s


def _block_times(
    block: BlockCost, device: DeviceProfile, decode_steps: int, batch: int = 1
) -> tuple[float, float]:
    """Roofline seconds of a block's first (prefill) pass and of one further loop pass.

    A loop block reads its KV cache on every pass, the first included: an action expert's first
    flow step attends to the whole prefix cache like the others (for an autoregressive layer the
    prefill writes about as many bytes of KV as the loop ends with, and is compute-bound anyway).

    A ``batch`` of requests runs the block once over all of them: FLOPs and each request's KV
    cache scale with the batch, the weights are read once. That is why batching pays on a
    memory-bound decode step and hardly on a compute-bound prefill.
    """
    kv = block.kv_cache_bytes * batch if block.per_token else 0.0
    prefill = device.time_s(block.prefill_flops(decode_steps) * batch, block.streamed_bytes + kv)
    if not block.per_token or decode_steps == 0:
        return prefill, 0.0
    step = device.time_s(block.decode_flops * batch, block.streamed_bytes + kv)
    return prefill, step


def _ceil_bytes(nbytes: float) -> int:
    """Whole bytes on the wire."""
    return int(-(-nbytes // 1))


def build_cost_model(
    profile: str = "openvla-7b",
    edge: str = "jetson-agx-orin",
    cloud: str = "a100",
    *,
    placement: Placement = "edge-prefix",
    loop_cost: LoopCost = "per-pass",
) -> CostModel:
    """Build a cost model from registry names (unknown names raise with the allowed ones)."""
    return CostModel(
        PROFILES.create(profile), DEVICES.create(edge), DEVICES.create(cloud), placement, loop_cost
    )


def split_table(
    profile: str,
    edge: str,
    cloud: str,
    *,
    bandwidth_bps: float,
    rtt_s: float,
    memory_budget_bytes: float | None = None,
) -> tuple[SplitCost, ...]:
    """Neurosurgeon's per-split table for registry names: ``(latency, edge memory, ...)`` per k.

    Example:
        >>> rows = split_table("pi0", "jetson-orin-nano", "a100", bandwidth_bps=20e6, rtt_s=0.04)
        >>> rows[0].split, rows[0].edge_memory_bytes
        (0, 0.0)
    """
    model = build_cost_model(profile, edge, cloud)
    return model.split_table(bandwidth_bps, rtt_s, memory_budget_bytes)
