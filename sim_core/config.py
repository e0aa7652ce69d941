"""Frozen configuration of a simulated cluster: replicas, KV-cache pool and batch scheduler."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

SCHEDULERS = ("sarathi", "vllm")

# Bytes per element for the dtypes a user may name.
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "int4": 0.5}


@dataclass(frozen=True)
class ReplicaConfig:
    """One model replica (possibly tensor-parallel over several GPUs).

    ``num_blocks`` is the KV-cache pool in 16-token blocks.  The default 2,240 is the
    pool of the paper's Vidur configuration for Llama-3-8B on one A10 (35,840 tokens);
    :func:`kv_blocks_from_memory` derives a pool from GPU memory instead.
    """

    gpu: str = "a10"
    model: str = "llama-3-8b"
    tp: int = 1
    num_blocks: int = 2240
    block_size: int = 16
    watermark_fraction: float = 0.01
    scheduler: str = "sarathi"
    chunk_size: int = 8192
    batch_cap: int = 128

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown batch scheduler {self.scheduler!r}; choose one of {SCHEDULERS}")
        for name in ("tp", "num_blocks", "block_size", "chunk_size", "batch_cap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.watermark_fraction < 1.0:
            raise ValueError(f"watermark_fraction must be in [0, 1), got {self.watermark_fraction}")

    @property
    def watermark_blocks(self) -> int:
        """Blocks that must stay free after admitting a new request (vLLM's watermark)."""
        return int(self.watermark_fraction * self.num_blocks)

    @property
    def num_gpus(self) -> int:
        return self.tp


@dataclass(frozen=True)
class ClusterConfig:
    """A homogeneous cluster of ``num_replicas`` replicas."""

    num_replicas: int = 4
    replica: ReplicaConfig = field(default_factory=ReplicaConfig)

    def __post_init__(self) -> None:
        if self.num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {self.num_replicas}")

    def with_replica(self, **changes) -> "ClusterConfig":
        """A copy with some replica fields changed."""
        return replace(self, replica=replace(self.replica, **changes))

    @property
    def num_gpus(self) -> int:
        return self.num_replicas * self.replica.tp


def kv_blocks_from_memory(
    *,
    gpu_memory_gb: float,
    num_params_b: float,
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    tp: int = 1,
    weight_dtype: str = "fp16",
    kv_dtype: str = "fp16",
    memory_utilization: float = 0.9,
    activation_reserve_gb: float = 0.0,
    block_size: int = 16,
) -> int:
    """KV-cache blocks per replica that fit beside the weights (vLLM's sizing rule).

    Per GPU: ``memory_utilization * memory - weights/tp - activation reserve`` is left for
    the cache; one token costs ``2 (K and V) * layers * kv_heads/tp * head_dim * bytes``.
    Memory is in GB of 1e9 bytes, parameters in billions.
    """
    if not 0 < memory_utilization <= 1:
        raise ValueError("memory_utilization must be in (0, 1]")
    for dt in (weight_dtype, kv_dtype):
        if dt not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype {dt!r}; choose one of {sorted(DTYPE_BYTES)}")
    weights_gb = num_params_b * DTYPE_BYTES[weight_dtype] / tp
    free_gb = gpu_memory_gb * memory_utilization - weights_gb - activation_reserve_gb
    kv_heads_per_gpu = max(1, num_kv_heads // tp)
    bytes_per_token = 2 * num_layers * kv_heads_per_gpu * head_dim * DTYPE_BYTES[kv_dtype]
    if free_gb <= 0:
        raise ValueError(f"the weights do not fit: {weights_gb:.1f} GB per GPU against "
                         f"{gpu_memory_gb * memory_utilization:.1f} GB usable")
    return int(math.floor(free_gb * 1e9 / bytes_per_token / block_size))
