"""What pi0 and SmolVLA share: a VLM prefix encoded once, then a flow-matching action expert.

Both run their VLM over the prefix (images, instruction, and for SmolVLA the state) once, keeping
each layer's keys/values; then, for every one of the flow-matching integration steps, an action
expert embeds the noisy action chunk (plus the flow time, and for pi0 the state), runs its layers
over it while attending to the cached prefix, and projects out a velocity that the integrator
adds to the chunk. This module turns those counted pieces into blocks with the loop semantics of
:class:`~rapid_env.cost.profiles.BlockCost`: the expert blocks are ``per_token`` (the loop tail),
their first pass belongs to the prefill and the other ``steps - 1`` are "decode" passes.

It also holds the LIBERO-like observation both are costed with, so the profiles stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapid_env.cost.profiles import BlockCost
from rapid_env.profiler.counting import FLOAT32_BYTES, param_bytes

CAMERA_SIZE = 256
"""LIBERO's rendered camera resolution; images are never upsampled before sending."""
LIBERO_CAMERAS = 2
"""Third-person (agentview) + wrist camera, what LIBERO provides and OFT / SmolVLA use."""
LIBERO_STATE_DIM = 8
"""End-effector position (3) + axis-angle (3) + gripper joints (2)."""
LIBERO_ACTION_DIM = 7
"""Delta end-effector pose (6) + gripper (1)."""
STATE_BYTES = LIBERO_STATE_DIM * FLOAT32_BYTES
FLOW_STEPS = 10
"""Flow-matching integration steps at inference (pi0: 10 Euler steps; SmolVLA: ``num_steps=10``)."""
FLOW_CHUNK = 50
"""Actions per chunk (pi0: H = 50; SmolVLA: ``chunk_size=50``)."""
PADDED_ACTION_DIM = 32
"""Both pad actions and state to 32 dimensions inside the model (the velocity is 32-d)."""


@dataclass(frozen=True)
class FlowCount:
    """Counted pieces of a VLM-prefix + flow-matching-expert model (all FLOPs are totals).

    Attributes:
        vlm_layers: The VLM decoder layers that run over the prefix (for weight bytes).
        vlm_layer_flops: FLOPs of each VLM layer over the prefix (run once).
        prefix_bytes: Bytes of the prefix hidden states between two VLM layers.
        layer_kv_bytes: Bytes of each VLM layer's cached keys/values (read by expert layer i).
        carried_bytes: Bytes that cross any cut between the VLM layers and the expert besides
            hidden states and KV (pi0: the robot state, which the expert embeds; SmolVLA: 0).
        expert_in: Modules embedding the noisy chunk, time (and state) into suffix tokens.
        expert_in_flops: Their FLOPs over all steps.
        expert_layers: The expert decoder layers.
        expert_layer_flops: FLOPs of each expert layer over all steps.
        expert_out: Modules projecting the expert output to a velocity (final norm, out-proj).
        expert_out_flops: Their FLOPs over all steps.
        suffix_bytes: Bytes of the expert's hidden states for one step.
        action_hidden_bytes: Bytes of the hidden states the out-projection reads (action tokens).
        steps: Flow-matching integration steps.
        output_bytes: Bytes of the action chunk sent down at the end.
        velocity_bytes: Bytes of one step's velocity (sent down per round of a split loop).
    """

    vlm_layers: Sequence[Any]
    vlm_layer_flops: Sequence[float]
    prefix_bytes: float
    layer_kv_bytes: Sequence[float]
    carried_bytes: float
    expert_in: Sequence[Any]
    expert_in_flops: float
    expert_layers: Sequence[Any]
    expert_layer_flops: Sequence[float]
    expert_out: Sequence[Any]
    expert_out_flops: float
    suffix_bytes: float
    action_hidden_bytes: float
    steps: int
    output_bytes: int
    velocity_bytes: int

    @property
    def decode_steps(self) -> int:
        """Steps after the first: the first one runs right after the prefix, in the prefill."""
        return self.steps - 1


def _kv_after(count: FlowCount, i: int) -> float:
    """KV bytes of VLM layers ``i..`` (what expert layers from ``i`` on still need)."""
    return float(sum(count.layer_kv_bytes[i:]))


def vlm_layer_blocks(count: FlowCount) -> list[BlockCost]:
    """The VLM decoder layers over the prefix, run once.

    Splitting after VLM layer ``i`` ships the prefix hidden states (for layer ``i + 1``), the KV
    of layers ``0..i`` (the expert, on the other side, attends to every layer's prefix KV) and the
    carried state. After the last layer the prefix hidden states are dead: only the KV travels.
    """
    blocks = []
    n = len(count.vlm_layers)
    for i, layer in enumerate(count.vlm_layers):
        kv_so_far = float(sum(count.layer_kv_bytes[: i + 1]))
        hidden = count.prefix_bytes if i < n - 1 else 0.0
        blocks.append(
            BlockCost(
                name=f"llm.layer.{i:02d}",
                flops=count.vlm_layer_flops[i],
                weight_bytes=param_bytes(layer),
                activation_bytes=hidden + kv_so_far + count.carried_bytes,
            )
        )
    return blocks


def expert_blocks(count: FlowCount) -> list[BlockCost]:
    """The flow-matching loop: ``expert.in``, ``expert.layer.NN``, ``expert.out``, all per-step.

    Expert layer ``i`` holds the prefix KV of VLM layer ``i`` (``kv_cache_bytes``): it re-reads it
    every step, so it lives wherever that layer runs. A split inside the loop ships, in the first
    round, the suffix hidden states plus the prefix KV the cloud-side layers need; in every later
    round only the suffix hidden states go up and the velocity comes down.
    """
    steps = count.steps
    suffix = count.suffix_bytes
    blocks = [
        BlockCost(
            name="expert.in",
            flops=count.expert_in_flops,
            weight_bytes=param_bytes(*count.expert_in),
            activation_bytes=suffix + _kv_after(count, 0),
            per_token=True,
            decode_flops=count.expert_in_flops / steps,
            decode_activation_bytes=suffix,
        )
    ]
    n = len(count.expert_layers)
    for i, layer in enumerate(count.expert_layers):
        out_bytes = suffix if i < n - 1 else count.action_hidden_bytes
        blocks.append(
            BlockCost(
                name=f"expert.layer.{i:02d}",
                flops=count.expert_layer_flops[i],
                weight_bytes=param_bytes(layer),
                activation_bytes=out_bytes + _kv_after(count, i + 1),
                per_token=True,
                decode_flops=count.expert_layer_flops[i] / steps,
                decode_activation_bytes=out_bytes,
                kv_cache_bytes=count.layer_kv_bytes[i],
            )
        )
    blocks.append(
        BlockCost(
            name="expert.out",
            flops=count.expert_out_flops,
            weight_bytes=param_bytes(*count.expert_out),
            activation_bytes=float(count.output_bytes),
            per_token=True,
            decode_flops=count.expert_out_flops / steps,
            decode_activation_bytes=float(count.velocity_bytes),
        )
    )
    return blocks
