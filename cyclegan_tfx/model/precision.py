"""Which precision trains: float32, or bfloat16 mixed precision where the hardware has it.

`train.mixed_precision`: `true` (bfloat16 compute, float32 weights), `false` (float32), or
`auto`: bfloat16 where the device computes it natively, float32 elsewhere:

- GPU: compute capability 8.0 or newer (Ampere and later have bfloat16 tensor cores);
- CPU: the `avx512_bf16` or `amx_bf16` instruction sets (what oneDNN's bfloat16 kernels use;
  without them TensorFlow emulates bfloat16, slower than float32).

The choice is logged. Note that `auto` makes the trained weights depend on the machine (the
same data and params give the same artifacts on the same kind of hardware); set true or false
to pin it. The exported model always computes in float32 (`serving_generators`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

logger = logging.getLogger(__name__)

AUTO = "auto"
CPU_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_GPU_CAPABILITY = (8, 0)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags of the first CPU in `cpuinfo` (empty where unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bfloat16_support(
    gpu_capabilities: list[tuple[int, int]] | None = None, flags: set[str] | None = None
) -> tuple[bool, str]:
    """Whether training here would get native bfloat16, and why.

    Args:
        gpu_capabilities: Compute capabilities of the visible GPUs (default: asked from
            TensorFlow).
        flags: CPU flags (default: :func:`cpu_flags`).

    Returns:
        (supported, a reason for the log).
    """
    if gpu_capabilities is None:
        gpu_capabilities = []
        for gpu in tf.config.list_physical_devices("GPU"):
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
            gpu_capabilities.append(tuple(capability) if capability else (0, 0))
    if gpu_capabilities:
        lowest = min(gpu_capabilities)
        supported = lowest >= MIN_GPU_CAPABILITY
        return supported, f"GPU compute capability {lowest[0]}.{lowest[1]}" + (
            "" if supported else " (bfloat16 needs 8.0+)"
        )
    flags = cpu_flags() if flags is None else flags
    found = [flag for flag in CPU_BFLOAT16_FLAGS if flag in flags]
    if found:
        return True, f"CPU with {', '.join(found)}"
    return False, f"CPU without {' or '.join(CPU_BFLOAT16_FLAGS)}"


def resolve_mixed_precision(setting: bool | str, support: tuple[bool, str] | None = None) -> bool:
    """The precision `train.mixed_precision` asks for on this machine; logs the choice.

    Args:
        setting: true, false or "auto".
        support: :func:`bfloat16_support`'s answer (default: asked).
    """
    if setting is True or setting is False:
        logger.info(
            "training in %s (train.mixed_precision: %s)",
            "bfloat16 mixed precision" if setting else "float32",
            str(setting).lower(),
        )
        return setting
    supported, reason = bfloat16_support() if support is None else support
    logger.info(
        "training in %s: %s (train.mixed_precision: auto; set true or false to pin it)",
        "bfloat16 mixed precision" if supported else "float32",
        reason,
    )
    return supported
