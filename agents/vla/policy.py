"""An executable VLA checkpoint as a :class:`~rapid_env.policy.Policy`.

Importing this module registers a fork hook (:func:`one_torch_thread_in_forked_child`): a child
forked from this process runs torch on one thread. Without it, ``gym.make_vec(...,
vectorization_mode="async")`` (gymnasium's default ``fork`` context) hangs: the parent builds a
policy to read the spaces, which starts torch's OpenMP (libgomp) thread pool, and a forked child
inherits that pool's bookkeeping but not its threads, so its first parallel torch op waits on
them forever. With one thread torch never enters a parallel region, so it never waits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from rapid_env.agents.torch_device import place
from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.checkpoint import load_checkpoint, shipped_checkpoint
from rapid_env.agents.vla.split import SplitRunner
from rapid_env.policy import PolicyInput


def one_torch_thread_in_forked_child() -> None:
    """Run torch on one thread in a forked child (an ``os.register_at_fork`` hook).

    libgomp, torch's OpenMP runtime, is not fork-safe: once the parent has run a parallel region
    its thread pool exists only in the parent, and a child's next parallel region deadlocks
    waiting for those threads. One thread means no parallel region (``at::parallel_for`` and
    MKL run inline), so a forked env worker (``AsyncVectorEnv``, a ``multiprocessing`` pool)
    runs the model instead of hanging. It is also what several env workers sharing the cores
    want, and what torch's own ``DataLoader`` does in its workers. The parent is untouched; a
    child that wants more threads and knows its parent never used OpenMP may set them again.
    """
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=one_torch_thread_in_forked_child)


def encode_instruction(tok: PreTrainedTokenizerFast, text: str, length: int) -> torch.Tensor:
    """Token ids of ``text``, padded/truncated to ``length``, shape (1, length)."""
    ids = tok(text, padding="max_length", truncation=True, max_length=length)["input_ids"]
    return torch.tensor([ids], dtype=torch.long)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, size, size, 3): area averaging down, bilinear up.

    Lets a checkpoint trained at 64 px run when the env renders at another ``--image-size``.
    """
    if images.shape[1:3] == (size, size):
        return images
    x = images.permute(0, 3, 1, 2).float()
    down = images.shape[1] >= size and images.shape[2] >= size
    mode = "area" if down else "bilinear"
    kw = {} if down else {"align_corners": False}
    y = torch.nn.functional.interpolate(x, size=(size, size), mode=mode, **kw)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class VLAPolicy:
    """Runs an executable VLA on the current frame(s), proprio and instruction.

    The model never sees the simulator: ``PolicyInput.sim`` is ignored. A model trained on
    several cameras names the ones beyond the task's main camera in :attr:`cameras`, which is
    what makes the core render them (``PolicyInput.images``).

    The model runs on ``device`` in ``dtype`` (``rapid-eval --device/--dtype``): observations
    are moved there as they are prepared, and every chunk comes back as float32 numpy on the CPU,
    whatever the model computed in. The flow family's noise is drawn on the CPU in float32 and
    then moved, so a seed draws the same noise everywhere.
    """

    needs_image = True

    def __init__(
        self,
        model: ExecutableVLA,
        tokenizer: PreTrainedTokenizerFast,
        name: str = "",
        chunk_size: int | None = None,
        compression: str = "none",
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        trained = model.cfg.chunk_size
        if chunk_size is not None and not 1 <= chunk_size <= trained:
            raise ValueError(
                f"chunk_size={chunk_size} not available: this {model.cfg.family} checkpoint emits "
                f"{trained}-action chunks; allowed: 1..{trained}"
            )
        self.model = place(model, device, dtype).eval()
        self.device, self.dtype = device, dtype
        self.tokenizer = tokenizer
        self.name = name or model.cfg.family
        self.chunk_size = chunk_size or trained
        self.cameras: tuple[str, ...] = tuple(model.cfg.cameras[1:])
        self.compression = compression
        self._gen = torch.Generator().manual_seed(0)
        self._text: dict[str, torch.Tensor] = {}

    @classmethod
    def load(
        cls, path: str | Path, name: str = "", chunk_size: int | None = None,
        device: str = "cpu", dtype: str = "float32",
    ) -> VLAPolicy:
        """Load a checkpoint directory onto ``device`` in ``dtype``."""
        model, tok, _ = load_checkpoint(path)
        return cls(model, tok, name, chunk_size, device=device, dtype=dtype)

    @classmethod
    def shipped(
        cls, name: str, chunk_size: int | None = None, device: str = "cpu", dtype: str = "float32"
    ) -> VLAPolicy:
        """The checkpoint that ships with the package under ``name``; the policy keeps that name.

        A family's name (``chunk-regress``) is its newest Meta-World checkpoint, ``family@v1``
        a pinned version of it (:mod:`rapid_env.agents.vla.shipped`); ``chunk-regress-libero``
        is the one trained on LIBERO.

        Raises:
            ValueError: no shipped checkpoint has that name (the message names the allowed ones).
        """
        return cls.load(shipped_checkpoint(name), name, chunk_size, device=device, dtype=dtype)

    def reset(self, rng: np.random.Generator) -> None:
        """Reseed the model's own noise (flow family) from the episode's policy stream."""
        self._gen.manual_seed(int(rng.integers(0, 2**62)))

    def text_ids(self, instruction: str) -> torch.Tensor:
        """Cached token ids of an instruction."""
        if instruction not in self._text:
            self._text[instruction] = encode_instruction(
                self.tokenizer, instruction, self.model.cfg.max_text_tokens
            )
        return self._text[instruction]

    def frames(self, inp: PolicyInput) -> torch.Tensor:
        """The model's camera frames at its size: (1, H, W, 3), or (1, C, H, W, 3) for C > 1.

        The first camera of the config is the main frame (``inp.image``, or ``inp.images`` under
        its name); the others come from ``inp.images`` by name.
        """
        cfg = self.model.cfg
        out = []
        for i, cam in enumerate(cfg.cameras):
            frame = inp.images.get(cam)
            if frame is None and i == 0:
                frame = inp.image
            if frame is None:
                got = sorted(inp.images) + (["<main image>"] if inp.image is not None else [])
                raise ValueError(
                    f"policy {self.name!r} needs the camera image {cam!r}; got: "
                    f"{', '.join(got) or 'none'}"
                )
            img = torch.from_numpy(np.ascontiguousarray(frame)).unsqueeze(0)
            if img.ndim != 4 or img.shape[-1] != 3:
                raise ValueError(
                    f"policy {self.name!r} expects an HxWx3 image from {cam!r}, got {frame.shape}"
                )
            out.append(resize_uint8(img, cfg.image_size))
        return out[0] if len(out) == 1 else torch.stack(out, dim=1)

    def prepare(self, inp: PolicyInput) -> dict[str, torch.Tensor]:
        """The model's first state for this observation (what the split runtime starts from)."""
        prop = torch.from_numpy(np.asarray(inp.proprio, dtype=np.float32)).reshape(1, -1)
        want = self.model.cfg.proprio_dim
        if prop.shape[1] != want:
            raise ValueError(
                f"policy {self.name!r} reads {want}-D proprio, got {prop.shape[1]}-D; "
                "allowed: a task of the suite it was trained on"
            )
        return self.model.prepare(self.frames(inp), prop, self.text_ids(inp.instruction), self._gen)

    def act(self, inp: PolicyInput) -> np.ndarray:
        """One action chunk (chunk_size, action_dim), clipped to the action box [-1, 1]."""
        with torch.inference_mode():
            actions = self.model(self.prepare(inp))[0]
        return self._finish(actions)

    def act_split(self, inp: PolicyInput, depth: float) -> tuple[np.ndarray, int]:
        """Run through the split runtime, cut at fraction ``depth`` in [0, 1) of the blocks.

        The controller calls this when it offloads; ``depth`` is the full-size architecture's
        split point as a fraction of its blocks. Returns the chunk and the bytes serialised at
        the boundary. With ``compression="none"`` the chunk equals :meth:`act`'s.
        """
        n = self.model.n_blocks
        k = min(n - 1, max(0, round(depth * n)))
        res = SplitRunner(self.model, k, self.compression)(self.prepare(inp))
        return self._finish(res.actions[0]), res.uplink_bytes

    def _finish(self, actions: torch.Tensor) -> np.ndarray:
        # back to float32 on the CPU (numpy has no bfloat16); a no-op for a float32 CPU model
        out = actions[: self.chunk_size].float().cpu().numpy().astype(np.float32)
        return np.clip(out, -1.0, 1.0)

    def action_uncertainty(
        self, inp: PolicyInput, rng: np.random.Generator, samples: int = 4
    ) -> float | None:
        """How unsure the model is about its next chunk, in [0, 1]; None where it cannot say.

        The signal a vision/uncertainty-triggered offloader reads (the environment-oriented
        trigger RAPID argues against). It costs a full model pass, which a decider must charge.

        * ``flow``: spread of ``samples`` chunks integrated from different initial noise (drawn
          from ``rng``; the policy's own noise stream is left untouched), as the mean per-value
          standard deviation in action units (actions live in [-1, 1], so at most 1).
        * ``ar-token`` (autoregressive): mean entropy of the greedy decode's bin distributions,
          divided by ``log(n_bins)`` (1 = uniform over bins).
        * ``chunk-regress`` and parallel (OFT-style) ``ar-token``: None; a regression head
          exposes no distribution.
        """
        if samples < 2:
            raise ValueError(f"samples must be >= 2, got {samples}")
        model = self.model
        if model.needs_noise:
            saved = self._gen.get_state()
            state = self.prepare(inp)
            self._gen.set_state(saved)  # the chunks `act` emits must not depend on this probe
            gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
            last = model.blocks()[-1][1]
            with torch.inference_mode():
                pre = model.run(state, 0, model.n_blocks - 1)
                chunks = torch.stack(
                    [
                        last({**pre, "noise": torch.randn(
                            state["noise"].shape, generator=gen).to(state["noise"])})[
                            "actions"
                        ][0, : self.chunk_size].float().clamp(-1.0, 1.0)
                        for _ in range(samples)
                    ]
                )
            return float(chunks.std(dim=0).mean())
        head = getattr(model, "bin_head", None)
        if head is None:
            return None
        logits: list[torch.Tensor] = []
        hook = head.register_forward_hook(lambda _m, _i, out: logits.append(out.detach()))
        try:
            with torch.inference_mode():
                model(self.prepare(inp))
        finally:
            hook.remove()
        logp = torch.log_softmax(
            torch.cat([x.reshape(-1, x.shape[-1]) for x in logits]).float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return float(entropy.mean() / np.log(logp.shape[-1]))
