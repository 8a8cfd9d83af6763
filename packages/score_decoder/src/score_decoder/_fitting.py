"""Fit the scale factors of a :class:`~score_decoder.GemNetScore` on real structures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ._model import GemNetScore
from .layers import ScaleFactor

__all__ = ["fit_scale_factors"]


def fit_scale_factors(model: GemNetScore, inputs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Set every :class:`~score_decoder.layers.ScaleFactor` so its input has unit root mean square.

    Runs the model (without gradients) on each input; every factor is refitted on each call from
    the mean square accumulated over all calls so far, in forward order, so one batch of typical
    size (e.g. 128 MP-20 structures) suffices and more batches refine the estimate. Deterministic
    for given inputs. Call it once after construction and before training; the factors are buffers,
    so ``state_dict`` and checkpoints keep them, and ``model.scale_factors_fitted`` becomes true.

    Args:
        model: The network; its parameters are not changed.
        inputs: Keyword-argument mappings for ``model.forward`` (``atom_types``, ``batch``,
            ``graph``, ``triplets``, ``cond``), e.g. a list with one batch.

    Returns:
        The fitted factors by module name.

    Raises:
        ValueError: If ``inputs`` is empty.
    """
    factors = {name: mod for name, mod in model.named_modules() if isinstance(mod, ScaleFactor)}
    for factor in factors.values():
        factor.value.fill_(1.0)
        factor.start_fitting()
    calls = 0
    try:
        with torch.no_grad():
            for kwargs in inputs:
                model(**kwargs)
                calls += 1
    finally:
        for factor in factors.values():
            factor.stop_fitting()
    if calls == 0:
        raise ValueError("fit_scale_factors needs at least one input batch, got none")
    model.scale_factors_fitted.fill_(True)
    return {name: float(factor.value) for name, factor in factors.items()}
