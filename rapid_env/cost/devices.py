"""Edge and cloud device profiles: datasheet rates plus calibrated efficiencies.

A device is reduced to the two numbers a roofline model needs -- dense peak FLOP/s in the precision
the VLA runs in (bf16/fp16 on tensor cores) and DRAM bandwidth -- plus its memory size, so that a
split point can be checked against what the edge can hold. Datasheet peaks are never reached by
real inference code, so each device also carries a compute and a memory efficiency factor. These
were calibrated once against the RAPID paper's OpenVLA-7B figures (see ``docs/cost_model.md``);
they are fields, not constants, so a user with measurements can override them with
``dataclasses.replace``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rapid_env.registry import Registry

GIB = float(2**30)
"""DRAM capacities on datasheets are binary gigabytes; bandwidths and FLOP/s are decimal."""


@dataclass(frozen=True)
class DeviceProfile:
    """One accelerator, as a roofline: peak compute, memory bandwidth, capacity, efficiencies.

    Attributes:
        name: Registry name, e.g. ``"jetson-agx-orin"``.
        peak_flops: Dense peak FLOP/s in the precision used (bf16/fp16 tensor cores, no
            structured sparsity). One multiply-accumulate counts as 2 FLOPs.
        mem_bandwidth: Peak DRAM bandwidth in bytes/s.
        memory_bytes: Memory available to the model, in bytes (unified memory on Jetsons).
        compute_efficiency: Fraction of ``peak_flops`` that real kernels reach, in (0, 1].
        memory_efficiency: Fraction of ``mem_bandwidth`` that real kernels reach, in (0, 1].
        source: Where the datasheet numbers come from and how they were derived.
    """

    name: str
    peak_flops: float
    mem_bandwidth: float
    memory_bytes: float
    compute_efficiency: float
    memory_efficiency: float
    source: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("device name must be non-empty")
        for field_name in ("peak_flops", "mem_bandwidth", "memory_bytes"):
            value = getattr(self, field_name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"device {self.name!r}: {field_name} must be a positive finite number, "
                    f"got {value!r}"
                )
        for field_name in ("compute_efficiency", "memory_efficiency"):
            value = getattr(self, field_name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise ValueError(
                    f"device {self.name!r}: {field_name} must be in (0, 1], got {value!r}"
                )

    @property
    def effective_flops(self) -> float:
        """Sustained FLOP/s: peak times the compute efficiency."""
        return self.peak_flops * self.compute_efficiency

    @property
    def effective_bandwidth(self) -> float:
        """Sustained bytes/s: peak bandwidth times the memory efficiency."""
        return self.mem_bandwidth * self.memory_efficiency

    def time_s(self, flops: float, bytes_moved: float) -> float:
        """Roofline time of one kernel-sized piece of work.

        The slower of the two resources decides: ``max(flops / sustained FLOP/s,
        bytes_moved / sustained bandwidth)``. Compute and memory traffic are assumed to overlap
        perfectly, which is what a roofline means.

        Args:
            flops: Floating-point operations (2 per multiply-accumulate).
            bytes_moved: Bytes read from or written to DRAM.

        Returns:
            Seconds.
        """
        if flops < 0 or bytes_moved < 0:
            raise ValueError(f"flops and bytes_moved must be >= 0, got {flops!r}, {bytes_moved!r}")
        return max(flops / self.effective_flops, bytes_moved / self.effective_bandwidth)


# Calibrated efficiencies (docs/cost_model.md, "Calibration"), fitted once on two devices with the
# cached openvla-7b profile (4.12 TFLOP, 15.08 GB of bf16 weights, prefill + 6 decode steps).
# Summing the per-block, per-phase rooflines at 100 % efficiency splits each total into a
# compute-bound part C (the prefill GEMMs) and a bandwidth-bound part M (weights re-read by
# every decode step); the calibrated time is C / ce + M / me.
#   Jetson AGX Orin, edge-only, target RAPID Table III's 782.5 ms:
#     C = 94.9 ms, M = 392.8 ms (ideal 487.7 ms)  ->  94.9 / 0.40 + 392.8 / 0.72
#     = 237.3 + 545.5 = 782.9 ms.
#   A100, cloud-only compute, target the paper's 62.5-83.5 ms cloud band (middle ~73 ms):
#     C = 12.9 ms, M = 39.5 ms (ideal 52.4 ms)  ->  12.9 / 0.50 + 39.5 / 0.85
#     = 25.9 + 46.4 = 72.3 ms.
# Devices without a paper figure inherit the factors of their class: Jetson -> AGX Orin's,
# discrete / datacenter GPU -> A100's.
JETSON_COMPUTE_EFFICIENCY = 0.40
JETSON_MEMORY_EFFICIENCY = 0.72
GPU_COMPUTE_EFFICIENCY = 0.50
GPU_MEMORY_EFFICIENCY = 0.85


def jetson_orin_nano() -> DeviceProfile:
    """Jetson Orin Nano 8GB module (original 15 W mode, not the 25 W "Super" firmware)."""
    return DeviceProfile(
        name="jetson-orin-nano",
        peak_flops=10.0e12,
        mem_bandwidth=68.0e9,
        memory_bytes=8 * GIB,
        compute_efficiency=JETSON_COMPUTE_EFFICIENCY,
        memory_efficiency=JETSON_MEMORY_EFFICIENCY,
        source=(
            "NVIDIA Jetson Orin Nano series data sheet: 40 TOPS (INT8, sparse, GPU; 8 SMs at "
            "625 MHz) -> dense FP16 = 40 / 2 (sparsity) / 2 (INT8->FP16) = 10 TFLOP/s; "
            "68 GB/s 128-bit LPDDR5; 8 GB unified memory. (JetPack 6.1 'Super' mode: 67 TOPS, "
            "102 GB/s.)"
        ),
    )


def jetson_agx_orin() -> DeviceProfile:
    """Jetson AGX Orin 64GB module, MAXN power mode: the edge device of RAPID's Table III."""
    return DeviceProfile(
        name="jetson-agx-orin",
        peak_flops=42.5e12,
        mem_bandwidth=204.8e9,
        memory_bytes=64 * GIB,
        compute_efficiency=JETSON_COMPUTE_EFFICIENCY,
        memory_efficiency=JETSON_MEMORY_EFFICIENCY,
        source=(
            "NVIDIA Jetson AGX Orin series technical brief: GPU 2048 CUDA cores / 64 tensor "
            "cores (16 SMs, 1.3 GHz), 170 sparse INT8 TOPS -> dense FP16 = 170 / 4 = 42.5 "
            "TFLOP/s; 204.8 GB/s 256-bit LPDDR5; 64 GB unified memory."
        ),
    )


def rtx_4090() -> DeviceProfile:
    """GeForce RTX 4090 (24 GB): a workstation-class edge or a small cloud box."""
    return DeviceProfile(
        name="rtx-4090",
        peak_flops=165.2e12,
        mem_bandwidth=1008.0e9,
        memory_bytes=24 * GIB,
        compute_efficiency=GPU_COMPUTE_EFFICIENCY,
        memory_efficiency=GPU_MEMORY_EFFICIENCY,
        source=(
            "NVIDIA Ada Lovelace architecture whitepaper, appendix (RTX 4090): peak FP16/BF16 "
            "tensor TFLOPS with FP32 accumulate 165.2 dense (330.4 sparse); 1008 GB/s GDDR6X; "
            "24 GB."
        ),
    )


def a100() -> DeviceProfile:
    """A100 SXM4 80GB: the cloud device of RAPID's Table III (assumed; the paper says A100)."""
    return DeviceProfile(
        name="a100",
        peak_flops=312.0e12,
        mem_bandwidth=2039.0e9,
        memory_bytes=80 * GIB,
        compute_efficiency=GPU_COMPUTE_EFFICIENCY,
        memory_efficiency=GPU_MEMORY_EFFICIENCY,
        source=(
            "NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM): BF16 tensor 312 TFLOP/s "
            "dense (624 sparse); 2039 GB/s HBM2e; 80 GB."
        ),
    )


def h100() -> DeviceProfile:
    """H100 SXM5 80GB: a faster cloud."""
    return DeviceProfile(
        name="h100",
        peak_flops=989.4e12,
        mem_bandwidth=3350.0e9,
        memory_bytes=80 * GIB,
        compute_efficiency=GPU_COMPUTE_EFFICIENCY,
        memory_efficiency=GPU_MEMORY_EFFICIENCY,
        source=(
            "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): BF16 tensor 1979 TFLOP/s with "
            "sparsity -> 989.4 dense; 3.35 TB/s HBM3; 80 GB."
        ),
    )


DEVICES: Registry[DeviceProfile] = Registry("device")
"""Device names -> factories; ``DEVICES.create("a100")``. Unknown names list the allowed ones."""

for _factory in (jetson_orin_nano, jetson_agx_orin, rtx_4090, a100, h100):
    DEVICES.register(_factory().name, _factory)
del _factory
