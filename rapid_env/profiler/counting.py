"""Counting helpers shared by the architecture builders (``arch_*.py``); they need ``torch``.

Part of the offline profiler: nothing the harness runs imports this module.

Everything here runs on the ``meta`` device: tensors carry shapes and dtypes only, so a 7B model
costs no memory and no time beyond Python overhead. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` (matmul-class ops, 2 FLOPs per multiply-accumulate),
bytes from shapes times element sizes.

Typed ``Any`` throughout: the ``transformers`` modules are only partially annotated, and this module
must stay importable (for type checking) without importing torch at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

BF16_BYTES = 2
"""Every profile's weights and activations are bf16, as these VLAs are served."""
UINT8_BYTES = 1
FLOAT32_BYTES = 4
"""Robot state and actions travel as float32."""


@dataclass
class Coverage:
    """Which weight-holding modules a build counted FLOPs for, and which it could not.

    A module whose matmul work the FLOP counter has no rule for (``nn.Bilinear``, a custom
    kernel) runs on the meta device but adds nothing to the count, and a module that a builder
    keeps for its weights but never runs adds nothing either. Both would silently undercount a
    profile, so a build under :func:`track_coverage` records, per module object, the FLOPs
    counted while its ``forward`` ran; :meth:`uncounted` then names every module that owns a
    matrix-shaped weight (not an embedding table, which is a lookup) and got none.

    Attributes:
        flops: ``id(module)`` -> FLOPs counted inside its forward calls (children included).
        accounted: Modules whose weights a block counts (every :func:`param_bytes` call).
        resident: Modules a builder declares kept but not run (:func:`resident_only`), with why.
    """

    flops: dict[int, float] = field(default_factory=dict)
    accounted: dict[int, Any] = field(default_factory=dict)
    resident: dict[int, str] = field(default_factory=dict)

    def uncounted(self) -> list[str]:
        """One line per weight-holding module with no counted FLOPs, in model order."""
        from torch import nn

        lines: list[str] = []
        seen: set[int] = set()
        for root in self.accounted.values():
            for path, module in _walk(root, self.resident):
                if id(module) in seen:
                    continue
                seen.add(id(module))
                if isinstance(module, nn.Embedding) or not any(
                    p.ndim >= 2 for p in module.parameters(recurse=False)
                ):
                    continue
                ran = id(module) in self.flops
                if ran and self.flops[id(module)] > 0:
                    continue
                what = repr(module) if not any(module.children()) else type(module).__name__
                where = f"{type(root).__name__}.{path} " if path else ""
                why = "ran, but no FLOP rule counted its work" if ran else "never run"
                lines.append(f"{where}{what}: {why}")
        return lines


def _walk(root: Any, skip: dict[int, str]) -> Iterator[tuple[str, Any]]:
    """``root.named_modules()`` without the subtrees of modules in ``skip``."""
    stack = [("", root)]
    while stack:
        path, module = stack.pop(0)
        if id(module) in skip:
            continue
        yield path, module
        stack[:0] = [
            (f"{path}.{name}" if path else name, child)
            for name, child in module.named_children()
        ]


_COVERAGE: list[Coverage] = []
"""The active :class:`Coverage` (at most one; a list so that nothing needs ``global``)."""


@contextmanager
def track_coverage() -> Iterator[Coverage]:
    """Record, for everything counted inside the block, which modules got FLOPs."""
    coverage = Coverage()
    _COVERAGE.append(coverage)
    try:
        yield coverage
    finally:
        _COVERAGE.remove(coverage)


def resident_only(module: Any, why: str) -> None:
    """Declare ``module`` kept for its weights but deliberately not run (not "uncounted")."""
    if _COVERAGE:
        _COVERAGE[-1].resident[id(module)] = why


@contextmanager
def _per_module(counter: Any) -> Iterator[None]:
    """While active, add each module's counted FLOPs to the active :class:`Coverage`."""
    if not _COVERAGE:
        yield
        return
    import torch

    coverage = _COVERAGE[-1]
    starts: dict[int, list[float]] = {}

    def before(module: Any, _args: Any) -> None:
        starts.setdefault(id(module), []).append(float(counter.get_total_flops()))

    def after(module: Any, _args: Any, _out: Any) -> None:
        start = starts[id(module)].pop()
        done = float(counter.get_total_flops()) - start
        coverage.flops[id(module)] = coverage.flops.get(id(module), 0.0) + done

    pre = torch.nn.modules.module.register_module_forward_pre_hook(before)
    post = torch.nn.modules.module.register_module_forward_hook(after)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


def count_flops(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` under FlopCounterMode; return its result and FLOPs per module name.

    Module names are FlopCounterMode's: ``"Global"`` for everything, then the root module's class
    name followed by the dotted submodule path, e.g. ``"LlamaModel.layers.3"``. Under
    :func:`track_coverage` the FLOPs are also recorded per module object.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), _per_module(counter):
        result = fn()
    per_module = {
        module: float(sum(ops.values())) for module, ops in counter.get_flop_counts().items()
    }
    return result, per_module


def siglip_so400m_config(image_size: int, use_head: bool) -> Any:
    """SigLIP So400m/14 (Zhai et al. 2023), one config for Prismatic's and PaliGemma's towers.

    OpenVLA (Prismatic) and pi0 (PaliGemma) use the same vision tower; only the input size and
    whether the pooling head is kept differ.
    """
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=image_size,
        patch_size=14,
        vision_use_head=use_head,
    )


def param_bytes(*modules: Any) -> float:
    """Resident parameter bytes of some modules (numel x element size of their dtype).

    Under :func:`track_coverage` the modules are recorded as accounted for: their weights are in
    a block, so their FLOPs must have been counted too (or be declared :func:`resident_only`).
    """
    if _COVERAGE:
        for module in modules:
            _COVERAGE[-1].accounted[id(module)] = module
    return float(sum(p.numel() * p.element_size() for m in modules for p in m.parameters()))


def to_eval(module: Any, dtype: Any) -> Any:
    """Cast a module to ``dtype`` and put it in eval mode (typed ``Any``: HF stubs are partial)."""
    return module.to(dtype).eval()


def nbytes(tensor: Any) -> float:
    """Bytes of a (meta) tensor from its shape and dtype."""
    return float(tensor.numel() * tensor.element_size())


def image_bytes(n_images: int, size: int) -> float:
    """Raw uint8 RGB bytes of ``n_images`` square camera images of side ``size``."""
    return float(n_images * 3 * size * size * UINT8_BYTES)


def decoder_prefill(decoder: Any, embeds: Any) -> tuple[Any, dict[str, float], Any]:
    """Run a ``transformers`` decoder over ``embeds`` with a KV cache; count its FLOPs.

    Returns:
        The model output, the FLOPs per module name, and the filled ``DynamicCache``.
    """
    out, counts = count_flops(lambda: decoder(inputs_embeds=embeds, use_cache=True))
    cache = out.cache if hasattr(out, "cache") else out.past_key_values
    return out, counts, cache


def layer_kv(cache: Any, index: int) -> tuple[Any, Any]:
    """Keys and values of decoder layer ``index``, each ``(batch, kv_heads, tokens, head_dim)``."""
    layer = cache.layers[index]
    return layer.keys, layer.values


def kv_bytes(cache: Any, index: int) -> float:
    """KV-cache bytes of decoder layer ``index``."""
    keys, values = layer_kv(cache, index)
    return nbytes(keys) + nbytes(values)


def _split_heads(x: Any, head_dim: int) -> Any:
    """``(batch, tokens, heads * head_dim)`` -> ``(batch, heads, tokens, head_dim)``."""
    batch, tokens, _ = x.shape
    return x.view(batch, tokens, -1, head_dim).transpose(1, 2)


def _attend(q: Any, k: Any, v: Any) -> Any:
    """Scaled dot-product attention with grouped KV heads repeated up to the query heads.

    The KV heads are repeated explicitly (as ``transformers``' ``repeat_kv`` does) so that the
    FLOP counter sees plain equal-head SDPA. No mask: masks do not change the counted FLOPs.
    """
    import torch.nn.functional as F  # noqa: N812 (torch's conventional alias)

    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v)


def expert_layer_step(
    layer: Any, hidden: Any, prefix_k: Any, prefix_v: Any, *, cross: bool = False
) -> Any:
    """One action-expert decoder layer over the suffix tokens, attending to a cached prefix.

    This is the step pi0 and SmolVLA run for every flow-matching step: the VLM prefix was
    encoded once and left its keys/values per layer; the expert's layer ``i`` reads those of VLM
    layer ``i``. Written out with the layer's own submodules (as both reference implementations
    do) because the expert's attention mixes two models' keys and values.

    Args:
        layer: A Llama- or Gemma-style decoder layer (``input_layernorm``, ``self_attn`` with
            ``q/k/v/o_proj`` and ``head_dim``, ``post_attention_layernorm``, ``mlp``).
        hidden: Suffix hidden states ``(batch, suffix_tokens, width)``.
        prefix_k: Cached prefix keys ``(batch, kv_heads, prefix_tokens, head_dim)``.
        prefix_v: Cached prefix values, same shape.
        cross: ``False``: self-attention over prefix + suffix (the suffix's own keys/values are
            projected from ``hidden`` and appended; pi0, SmolVLA's even layers). ``True``:
            cross-attention to the prefix only, whose cached keys/values are re-projected by the
            layer's ``k_proj``/``v_proj`` (SmolVLA's odd layers).

    Returns:
        The suffix hidden states after the layer.
    """
    import torch

    attn = layer.self_attn
    head_dim = attn.head_dim
    normed = layer.input_layernorm(hidden)
    q = _split_heads(attn.q_proj(normed), head_dim)
    if cross:
        flat_k = prefix_k.transpose(1, 2).flatten(2)
        flat_v = prefix_v.transpose(1, 2).flatten(2)
        k = _split_heads(attn.k_proj(flat_k), head_dim)
        v = _split_heads(attn.v_proj(flat_v), head_dim)
    else:
        k = torch.cat([prefix_k, _split_heads(attn.k_proj(normed), head_dim)], dim=2)
        v = torch.cat([prefix_v, _split_heads(attn.v_proj(normed), head_dim)], dim=2)
    mixed = _attend(q, k, v).transpose(1, 2).flatten(2)
    hidden = hidden + attn.o_proj(mixed)
    return hidden + layer.mlp(layer.post_attention_layernorm(hidden))


def count_expert_loop(
    layers: Sequence[Any],
    suffix: Any,
    prefix_kv: Sequence[tuple[Any, Any]],
    passes: int,
    cross: Sequence[bool] | None = None,
) -> tuple[list[float], Any]:
    """Run the action expert ``passes`` times (one per flow step) and count each layer's FLOPs.

    Every pass restarts from ``suffix`` (on the meta device all passes have the same shapes, and
    the integration ``x += dt * v`` between them is element-wise, hence uncounted), but each pass
    is really run and counted rather than multiplied, so a step that differed would show.

    Returns:
        Per layer, its FLOPs summed over all passes; and the last pass's output hidden states.
    """
    flags = list(cross) if cross is not None else [False] * len(layers)
    totals = [0.0] * len(layers)
    hidden = suffix
    for _ in range(passes):
        hidden = suffix
        for i, layer in enumerate(layers):
            k, v = prefix_kv[i]
            step = partial(expert_layer_step, layer, hidden, k, v, cross=flags[i])
            hidden, counts = count_flops(step)
            totals[i] += counts["Global"]
    return totals, hidden


def residual(body: Any) -> Any:
    """Wrap a module as ``x + body(x)`` (the MLP-ResNet blocks of OFT's and Octo's heads)."""
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.body = inner

        def forward(self, x: Any) -> Any:
            return x + self.body(x)

    return Residual(body)


def count_repeated(fn: Callable[[], Any], passes: int) -> tuple[Any, float]:
    """Run ``fn`` ``passes`` times, each under the counter; return the last result and the sum.

    For the small per-step pieces of a flow or diffusion loop (time embedding, action projections,
    a denoising MLP): they are really run once per step, so they are counted once per step.
    """
    result: Any = None
    total = 0.0
    for _ in range(passes):
        result, counts = count_flops(fn)
        total += counts.get("Global", 0.0)
    return result, total
