"""Checks of the plain options every part of rechub_mini takes: counts, rates and seeds.

One place for them, so `MMOE(n_expert=2.7)`, `BatchLoader(batch_size=None)` and
`--epochs 0` all get the same kind of message (a DataError naming the option and the value)
instead of being rounded down silently or failing inside torch. Numpy numbers are accepted
and returned as plain Python numbers (checkpoints then stay loadable with weights_only).
"""
from __future__ import annotations

import math
import numbers

import torch

from .errors import DataError


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """A whole number of at least `minimum` (epochs, patience, batch size, experts, rows)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise DataError(f"{name} must be a whole number of at least {minimum}, got {value!r}.")
    return int(value)


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
