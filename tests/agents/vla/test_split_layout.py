"""The cloud part computes on boundary tensors laid out exactly as the unsplit forward's.

Bit-identity of a split fp32 run rests on the cloud's kernels being the unsplit forward's, and CPU
kernels are chosen by memory format and alignment as well as by shape: oneDNN runs a channels-last
convolution input through ``brg_conv_fwd`` but reorders a row-major one to ``aBcd16b`` for its
``jit`` kernel, and MKL's small GEMMs sum differently when an input is not 16-byte aligned. These
tests pin the layout at every split point (they fail on any machine when the deserialised tensors
differ, whether or not that machine's kernels happen to agree), and rerun the bit-identity test
under an oneDNN ISA cap whose kernels do disagree (``AVX2``: the row-major path differs from the
channels-last one by 6e-8 at ``chunk-regress`` k=1 when layouts are not restored).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rapid_env.agents.vla.base import ExecutableVLA
from rapid_env.agents.vla.components import State
from rapid_env.agents.vla.split import SplitRunner, deserialise, materialise, serialise
from tests.agents.vla.test_models import CASES, inputs, tiny

ROOT = Path(__file__).resolve().parents[3]


def layout(t: torch.Tensor) -> tuple[object, ...]:
    """Everything about a tensor's memory that kernel selection may look at."""
    cl = t.is_contiguous(memory_format=torch.channels_last) if t.ndim == 4 else None
    return (
        t.dtype,
        tuple(t.shape),
        t.stride(),
        t.is_contiguous(),
        cl,
        t.storage_offset(),
        t.data_ptr() % 64,
    )


def cloud_input(model: ExecutableVLA, k: int, runner: SplitRunner, blob: bytes) -> State:
    """The state ``runner.cloud(blob)`` hands to the cloud blocks."""
    seen: State = {}
    run = model.run

    def spy(state: State, start: int = 0, stop: int | None = None) -> State:
        if start == k and stop is None:
            seen.update(state)
        return run(state, start, stop)

    model.run = spy  # type: ignore[method-assign]
    try:
        runner.cloud(blob)
    finally:
        del model.run
    return seen


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(("family", "extra"), CASES)
def test_cloud_gets_the_edge_layout_at_every_k(
    family: str, extra: dict[str, object], batch: int
) -> None:
    """Same values, dtype, shape, strides, memory format and 64-byte alignment at every ``k``.

    Checked for the runner that ran the edge (layout recorded) and for a cloud-only runner
    (layout derived from a zero-input edge run).
    """
    m = tiny(family, **extra)
    for k in range(m.n_blocks):
        with torch.inference_mode():
            mem = m.run(inputs(m, b=batch), 0, k)
        edge = SplitRunner(m, k)
        blob = edge.edge(inputs(m, b=batch))
        for who, runner in (("edge runner", edge), ("cloud-only runner", SplitRunner(m, k))):
            got = cloud_input(m, k, runner, blob)
            assert got.keys() == mem.keys(), (family, k, who)
            for key, t in mem.items():
                where = f"{family} k={k} {key!r} ({who})"
                assert layout(got[key]) == layout(t), where
                assert torch.equal(got[key], t), where


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_cloud_only_runner_is_bit_identical(family: str, extra: dict[str, object]) -> None:
    """A runner that only runs the cloud part (no recorded layout) still matches the unsplit."""
    m = tiny(family, **extra)
    with torch.no_grad():
        ref = m(inputs(m))
    for k in range(m.n_blocks):
        blob = SplitRunner(m, k).edge(inputs(m))
        assert torch.equal(SplitRunner(m, k).cloud(blob), ref), f"{family} cloud-only at {k}"


def onednn_primitives(capfd: pytest.CaptureFixture[str], fn: Callable[[], object]) -> list[str]:
    """The oneDNN primitives ``fn`` executes: kind, implementation, memory descriptors, problem."""
    capfd.readouterr()
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        fn()
    out = capfd.readouterr().out.splitlines()
    return [line.rsplit(",", 1)[0] for line in out if ",primitive,exec," in line]


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_cloud_runs_the_unsplit_forwards_onednn_kernels(
    family: str, extra: dict[str, object], capfd: pytest.CaptureFixture[str]
) -> None:
    """At every ``k`` the cloud part executes exactly the oneDNN primitives (implementation and
    memory formats) that the same blocks execute inside the unsplit forward.

    This holds the cause itself, on every machine: before layouts were restored the ResNet stages
    of ``chunk-regress`` ran ``jit:avx512_core`` on ``aBcd16b`` in the cloud against
    ``brg_conv_fwd:avx512_core`` on ``acdb`` unsplit, whether or not the two rounded alike.
    """
    m = tiny(family, **extra)
    for k in range(m.n_blocks):
        with torch.inference_mode():
            mem = m.run(inputs(m), 0, k)
        runner = SplitRunner(m, k)
        blob = runner.edge(inputs(m))

        def unsplit(state: State = mem, k: int = k) -> object:
            with torch.inference_mode():
                return m.run(dict(state), k)

        want = onednn_primitives(capfd, unsplit)
        got = onednn_primitives(capfd, lambda r=runner, b=blob: r.cloud(b))
        assert got == want, f"{family} k={k}"


@pytest.mark.parametrize(("family", "extra"), CASES)
def test_split_is_bit_identical_without_onednn(
    family: str, extra: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With oneDNN off, PyTorch's own convolution also differs by layout (channels-last vs
    row-major GEMM shapes round differently: chunk-regress k=1 failed here before the fix)."""
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    m = tiny(family, **extra)
    with torch.no_grad():
        ref = m(inputs(m))
    for k in range(m.n_blocks):
        res = SplitRunner(m, k)(inputs(m))
        assert torch.equal(res.actions, ref), f"{family} split at {k} differs without oneDNN"


def test_chunk_regress_ships_a_channels_last_activation() -> None:
    """The case the layout restore exists for: a 4-D activation that is not row-major in memory.

    ``serialise`` writes it row-major (same bytes as before), ``deserialise`` without a layout
    gives it back row-major, with the edge's layout channels-last again; alignment is 64 bytes.
    """
    m = tiny("chunk-regress")
    with torch.inference_mode():
        h = m.run(inputs(m), 0, 1)["h"]
    assert h.ndim == 4 and not h.is_contiguous()
    assert h.is_contiguous(memory_format=torch.channels_last)
    blob = serialise({"h": h})
    assert len(blob) == len(serialise({"h": h.contiguous()}))
    plain = deserialise(blob)["h"]
    assert plain.is_contiguous() and plain.data_ptr() % 64 == 0
    back = deserialise(blob, {"h": (tuple(h.shape), h.stride())})["h"]
    assert back.stride() == h.stride() and back.data_ptr() % 64 == 0
    assert torch.equal(back, h)


def test_materialise_falls_back_to_row_major_for_non_dense_strides() -> None:
    t = torch.arange(6.0).reshape(2, 3)
    assert materialise(t, (0, 1)).stride() == (3, 1)  # overlapping: refused
    assert materialise(t, (1, 2)).stride() == (1, 2)  # column-major: kept
    assert torch.equal(materialise(t, (1, 2)), t)


@pytest.mark.parametrize("isa", ["AVX2"])
def test_split_is_bit_identical_under_onednn_isa_cap(isa: str) -> None:
    """The bit-identity test in a subprocess with oneDNN capped at ``isa``.

    Under ``AVX2`` oneDNN's channels-last and row-major convolution kernels round differently, so
    this fails if the cloud gets a boundary layout other than the edge's (it did before layouts
    were restored). On a CPU without the ISA oneDNN uses the best it has; elsewhere it is ignored.
    """
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    test = "tests/agents/vla/test_models.py::test_split_fp32_is_bit_identical_at_every_k"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
