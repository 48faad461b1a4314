"""Mixed precision for the training stages (tune, transfer, FullPT): `auto` trains in bfloat16 where the hardware
runs it fast, `bf16` always, `fp32` never.

bfloat16 autocast is TrainingArguments' own `bf16` (accelerate wraps the model's forward in `torch.autocast`);
this module only decides it. On a CPU with AVX512-BF16 or AMX (oneDNN's bf16 kernels) a prompt-tuning step of
SmolLM2-135M runs about 1.5x faster (benchmarks/results/precision.md, which also compares the accuracy reached);
on a GPU with bf16 support it is the usual choice. Autocast lowers only the matmuls inside the model: the
prompt, its gradients and optimiser state stay float32 tensors, and under DP each example's gradient is still
clipped before the noise is added, so the guarantee does not depend on the precision. Evaluation always runs
in float32.
"""

from __future__ import annotations

from .errors import PeftTransferError

PRECISIONS = ("auto", "bf16", "fp32")


def fast_bf16() -> bool:
    """True where bfloat16 matmuls are native: a CUDA GPU with bf16 support, or a CPU oneDNN runs bf16 on."""
    import torch  # here, so that validating a config's precision stays light
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:  # a build without oneDNN
        return False


def use_bf16(precision: str) -> bool:
    """Whether `precision` ("auto", "bf16" or "fp32") trains in bfloat16 on this machine."""
    if precision not in PRECISIONS:
        raise PeftTransferError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}: auto = bf16 "
                                "where the hardware runs it fast (AVX512-BF16/AMX CPUs, bf16 GPUs), else fp32.")
    return precision == "bf16" or (precision == "auto" and fast_bf16())


def precision_args(precision: str) -> dict:
    """TrainingArguments keywords for `precision`: `bf16`, and `use_cpu` on a machine without CUDA (Trainer
    refuses bf16 on the CPU unless told it trains there)."""
    import torch
    return {"bf16": use_bf16(precision), "use_cpu": not torch.cuda.is_available()}
