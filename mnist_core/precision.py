"""What arithmetic a run does: the autocast dtype, and whether fp32 work may round to TF32.

cuDNN's fp32 convolutions run in TF32 by default on Ampere and newer while cuBLAS matmuls stay
IEEE fp32, so "fp32" would silently mix the two. Here `fp32` is IEEE fp32 in every backend,
`tf32` allows TF32 in cuBLAS and cuDNN, and `bf16`/`fp16` autocast with IEEE fp32 elsewhere.
Only torch's per-backend `fp32_precision` API is used: torch refuses to mix it with the legacy
`allow_tf32` flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# The per-backend fp32_precision attributes are set up at run time; torch's stubs lack them.
_backends: Any = torch.backends

# precision -> autocast dtype (None: no autocast)
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "tf32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass(frozen=True)
class Float32Settings:
    """torch's effective fp32 precision per backend, as read back: "ieee" or "tf32"."""

    cuda_matmul: str  # cuBLAS
    cudnn_conv: str
    mkldnn_matmul: str  # the CPU's oneDNN
    mkldnn_conv: str


def set_float32_precision(precision: str) -> Float32Settings:
    """Make fp32 work IEEE everywhere, or TF32 on CUDA for `tf32`; return what took effect."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    cuda_mode = "tf32" if precision == "tf32" else "ieee"
    _backends.fp32_precision = "ieee"
    _backends.mkldnn.matmul.fp32_precision = "ieee"
    _backends.mkldnn.conv.fp32_precision = "ieee"
    _backends.cuda.matmul.fp32_precision = cuda_mode
    _backends.cudnn.conv.fp32_precision = cuda_mode
    return float32_settings()


def float32_settings() -> Float32Settings:
    return Float32Settings(
        cuda_matmul=_backends.cuda.matmul.fp32_precision,
        cudnn_conv=_backends.cudnn.conv.fp32_precision,
        mkldnn_matmul=_backends.mkldnn.matmul.fp32_precision,
        mkldnn_conv=_backends.mkldnn.conv.fp32_precision,
    )
