"""The common shape of an executable VLA: inputs -> ordered blocks -> action chunk.

A model is a list of named *blocks*, each a function from a state (a dict of tensors) to the next
state. The forward pass is the blocks run in order, so cutting the list at any index ``k`` gives an
edge part (blocks ``< k``) and a cloud part (blocks ``>= k``) whose composition is the same
computation; the state between them is exactly what has to cross the link
(:mod:`rapid_env.agents.vla.split`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rapid_env.agents.vla.components import State
from rapid_env.agents.vla.config import VLAConfig

Block = tuple[str, Callable[[State], State]]


class ExecutableVLA(nn.Module):
    """Base class: input preparation, the block list and the training loss."""

    needs_noise = False  # flow models draw their initial noise when inputs are prepared
    p_mean: torch.Tensor
    p_std: torch.Tensor

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.text_embed = nn.Embedding(cfg.vocab_size, w)
        self.proprio_in = nn.Linear(cfg.proprio_dim, w)
        self.register_buffer("p_mean", torch.tensor(cfg.proprio_mean, dtype=torch.float32))
        self.register_buffer("p_std", torch.tensor(cfg.proprio_std, dtype=torch.float32))
        if cfg.n_cameras > 1:  # one-camera checkpoints have no such tensor (and need none)
            self.camera_embed = nn.Parameter(torch.randn(cfg.n_cameras, w) * 0.02)

    # ------------------------------------------------------------------ inputs
    def prepare(
        self,
        images: torch.Tensor,
        proprio: torch.Tensor,
        text_ids: torch.Tensor,
        gen: torch.Generator | None = None,
    ) -> State:
        """Turn raw inputs into the first state (what the edge starts from).

        Several cameras are folded into the batch (``image`` is (B * C, H, W, 3), camera-major
        within a sample) so the one vision tower encodes them all in one pass; the blocks that
        turn features into tokens unfold them (:meth:`camera_tokens`).

        Args:
            images: (B, H, W, 3) uint8 frames of a one-camera model, (B, C, H, W, 3) of a
                C-camera one (cameras in ``cfg.cameras`` order).
            proprio: (B, proprio_dim), e.g. end-effector xyz + gripper opening (Meta-World).
            text_ids: (B, L) instruction token ids, padded to ``max_text_tokens``.
            gen: generator for the flow family's initial noise.

        The inputs may lie anywhere; the state is on the model's device, its floating tensors in
        the model's precision (:func:`~rapid_env.agents.torch_device.place`).
        """
        c = self.cfg.n_cameras
        if c > 1:
            if images.ndim != 5 or images.shape[1] != c:
                raise ValueError(
                    f"expected (B, {c}, H, W, 3) images for cameras {self.cfg.cameras}, "
                    f"got {tuple(images.shape)}"
                )
            images = images.reshape(-1, *images.shape[2:])
        where, dtype = self.p_mean.device, self.p_mean.dtype  # the model's device and precision
        state: State = {
            "image": images.to(where, torch.uint8),
            "proprio": (proprio.to(where, dtype) - self.p_mean) / self.p_std,
            "text_ids": text_ids.to(where, torch.long),
        }
        if self.needs_noise:
            # drawn on the CPU generator in float32 and then moved, so a seed gives the same
            # noise on every device and in every precision
            shape = (proprio.shape[0], self.cfg.chunk_size, self.cfg.action_dim)
            state["noise"] = torch.randn(shape, generator=gen).to(where, dtype)
        return state

    def zero_inputs(self, batch: int) -> State:
        """The first state for all-zero inputs of ``batch`` samples (shapes only matter)."""
        cfg, s = self.cfg, self.cfg.image_size
        cams = (cfg.n_cameras,) if cfg.n_cameras > 1 else ()
        return self.prepare(
            torch.zeros(batch, *cams, s, s, 3, dtype=torch.uint8),
            torch.zeros(batch, cfg.proprio_dim),
            torch.zeros(batch, cfg.max_text_tokens, dtype=torch.long),
            torch.Generator(),
        )

    def camera_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B * C, T, width) per-camera image tokens -> (B, C * T, width), cameras in order.

        Each camera's tokens get its learned embedding added, so the trunk knows which view a
        token came from (the vision tower's weights, and so its positions, are shared). With
        one camera this is the identity, which keeps one-camera checkpoints bit-for-bit.
        """
        c = self.cfg.n_cameras
        if c == 1:
            return tokens
        bc, t, w = tokens.shape
        per_cam = tokens.reshape(bc // c, c, t, w) + self.camera_embed[None, :, None, :]
        return per_cam.reshape(bc // c, c * t, w)

    def context_tokens(self, state: State) -> torch.Tensor:
        """The proprio token followed by the instruction tokens, (B, 1 + L, width)."""
        prop = self.proprio_in(state["proprio"]).unsqueeze(1)
        return torch.cat([prop, self.text_embed(state["text_ids"])], dim=1)

    # ------------------------------------------------------------------ blocks
    def blocks(self) -> list[Block]:
        """The ordered blocks; subclasses define them."""
        raise NotImplementedError

    @property
    def n_blocks(self) -> int:
        """Number of blocks; split points are 0..n_blocks."""
        return len(self.blocks())

    def block_names(self) -> list[str]:
        """Names of the blocks in order (``vision.layer0`` ...)."""
        return [name for name, _ in self.blocks()]

    def run(self, state: State, start: int = 0, stop: int | None = None) -> State:
        """Run blocks ``start .. stop-1`` on ``state``."""
        for _, fn in self.blocks()[start:stop]:
            state = fn(state)
        return state

    def forward(self, state: State) -> torch.Tensor:  # type: ignore[override]
        """The unsplit forward: all blocks; returns the (B, K, action_dim) action chunk."""
        return self.run(state)["actions"]

    # ------------------------------------------------------------------ training
    def loss(self, state: State, target: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Behaviour-cloning loss of a batch against (B, K, action_dim) expert chunks."""
        raise NotImplementedError

    def param_count(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())
