"""Checks of the plain options every part of rechub_mini takes: counts, rates, seeds, the
optimizer's options and the device.

One place for them, so `MMOE(n_expert=2.7)`, `BatchLoader(batch_size=None)` and
`--epochs 0` all get the same kind of message (a DataError naming the option and the value)
instead of being rounded down silently or failing inside torch. Numpy numbers are accepted
and returned as plain Python numbers (checkpoints then stay loadable with weights_only).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .errors import DataError


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """A whole number of at least `minimum` (epochs, patience, batch size, experts, rows).

    Numpy and torch scalars and whole floats (32.0) are taken as the int they hold; 2.7 is
    refused, not rounded down.
    """
    number = value.item() if isinstance(value, (np.generic, torch.Tensor)) and \
        getattr(value, "ndim", 1) == 0 else value
    whole = isinstance(number, numbers.Integral) or (
        isinstance(number, numbers.Real) and math.isfinite(number) and float(number).is_integer())
    if isinstance(number, bool) or not whole or number < minimum:
        raise DataError(f"{name} must be a whole number of at least {minimum}, got {value!r}.")
    return int(number)


def check_non_negative(name: str, value: object) -> float:
    """A finite number that is not negative (learning rate, weight decay, eps)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value < 0:
        raise DataError(f"{name} must be a number >= 0, got {value!r}.")
    return float(value)


def check_seed(seed: object) -> int:
    """A shuffling seed as a Python int; None draws one from torch's global generator, so
    torch.manual_seed still makes the run reproducible."""
    if seed is None:
        return int(torch.randint(0, 2**31 - 1, ()))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**62:
        raise DataError(f"seed must be a whole number from 0 to 2**62 (or None), got {seed!r}.")
    return int(seed)


ADAM_OPTIONS = {"lr", "betas", "eps"}  # passed to both optimizers; weight_decay to DenseAdam


def check_optimizer_params(options: Mapping) -> dict:
    """Names and values of optimizer_params, checked before any optimizer is built: a negative
    weight decay would otherwise train without complaint, pushing the weights outwards.
    Returns them as plain Python numbers (a numpy float in a checkpoint's optimizer state
    would make torch.load(weights_only=True) refuse the file)."""
    unknown = set(options) - ADAM_OPTIONS - {"weight_decay"}
    if unknown:
        raise DataError(f"optimizer_params has unknown options {sorted(unknown)}; allowed: "
                        f"lr, weight_decay, betas, eps.")
    checked = {name: check_non_negative(f"optimizer_params[{name!r}]", options[name])
               for name in ("lr", "weight_decay", "eps") if name in options}
    betas = options.get("betas", (0.9, 0.999))
    if not isinstance(betas, Sequence) or len(betas) != 2 or not all(
            isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas):
        raise DataError(f"optimizer_params['betas'] must be two numbers in [0, 1), e.g. "
                        f"(0.9, 0.999); got {betas!r}.")
    if "betas" in options:
        checked["betas"] = (float(betas[0]), float(betas[1]))
    return checked


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch.device to train on, or a DataError when this machine does not have it."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DataError(f"device {device!r} is not a device name; use 'cpu' or 'cuda'.") from None
    if resolved.type not in ("cpu", "cuda"):
        raise DataError(f"device {device!r}: rechub_mini trains on 'cpu' or 'cuda' only (its "
                        f"sparse embedding gradients and optimizers are untested on "
                        f"{resolved.type!r}); use 'cpu'.")
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index or 0) >= count:
            raise DataError(f"device {device!r} asks for a GPU, but PyTorch sees {count} here "
                            f"(torch {torch.__version__}); use 'cpu'.")
    return resolved
