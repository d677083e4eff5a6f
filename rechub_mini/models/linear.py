"""The fully connected layers' matrix product, y = x W^T + b, run by oneDNN when predicting.

Every tower, gate and expert of the models is such a product. PyTorch hands float32 products to
Intel's MKL, which picks its kernels by CPU vendor: on AMD processors it runs its AVX2 code even
where the CPU has AVX-512, at about half the speed. oneDNN, the other math library in PyTorch's
x86 builds, picks by instruction set. On the 2-core AMD EPYC (AVX-512) of benchmarks/README.md
it computes ESMM's [4096, 368] x [368, 16] tower product in 135 instead of 284 us, and predicting
runs 1.15-1.25x faster (benchmarks/linear_backends.py). Training keeps F.linear: the operator
has no gradient, and a hand-written one measured 0.92-1.06x of F.linear's training step here,
within this host's noise.

PyTorch reaches oneDNN's product through `torch.ops.mkldnn._linear_pointwise`, the operator its
compiler uses for the same purpose. Where it is missing or fails a check at import, and for
anything but 2-D float32 CPU tensors without gradients, `linear` is F.linear. The two agree to
float32 rounding (~1e-6 on a predicted probability).
Used by the towers, gates and experts of tutorials/*/02_esmm.ipynb and 03_mmoe.ipynb.
"""
from __future__ import annotations

import platform
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def find_onednn_linear() -> Callable | None:
    """oneDNN's linear operator, or None where PyTorch lacks it or it gives a wrong answer."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None  # elsewhere the vendor problem does not arise and oneDNN is not measured
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        operator = torch.ops.mkldnn._linear_pointwise
        # fixed numbers, not random ones: importing must not move the global random generator
        x = torch.linspace(-1.0, 1.0, 12).view(4, 3)
        weight = torch.linspace(0.5, -0.5, 6).view(2, 3)
        bias = torch.tensor([0.25, -0.75])
        if torch.allclose(operator(x, weight, bias, "none", [], ""), F.linear(x, weight, bias),
                          atol=1e-6):
            return operator
    except (AttributeError, RuntimeError, TypeError):  # absent, or a changed signature
        pass
    return None


ONEDNN_LINEAR = find_onednn_linear()  # set to None to run every product with F.linear (MKL)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
           ) -> torch.Tensor:
    """x @ weight.T + bias, like F.linear; by oneDNN when nothing needs a gradient (predicting)."""
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))
    if (ONEDNN_LINEAR is None or needs_grad or x.dim() != 2 or x.device.type != "cpu"
            or x.dtype != torch.float32 or weight.dtype != torch.float32):
        return F.linear(x, weight, bias)
    return ONEDNN_LINEAR(x, weight, bias, "none", [], "")


class Linear(nn.Linear):
    """nn.Linear (same parameters, same saved state) whose product is `linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
