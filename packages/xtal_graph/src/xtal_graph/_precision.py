"""Geometry in the inputs' own precision, even inside an autocast region.

Mixed-precision training (``torch.autocast`` with bfloat16) runs matrix products in bfloat16, which
keeps about 3 significant digits: ``frac @ L`` for a 10 Å cell would be off by up to 0.04 Å, larger
than the smallest denoising noise (0.01 Å), and a neighbour search on such positions would find other
edges. Every public geometry function of ``xtal_graph`` is therefore wrapped in :func:`full_precision`:
under autocast it computes exactly what it computes outside (same dtype, same bits), and the networks
around it keep their low-precision matrix products.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)

_DEVICE_TYPES = ("cpu", "cuda")


def full_precision(fn: F) -> F:
    """Run ``fn`` with autocast switched off (on every device type) when it is on; a no-op otherwise."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        active = [d for d in _DEVICE_TYPES if torch.is_autocast_enabled(d)]
        if not active:
            return fn(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for device_type in active:
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
