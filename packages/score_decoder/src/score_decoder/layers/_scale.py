"""Scale factors fitted once on data so that every sum and product has unit second moment."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ScaleFactor"]


class ScaleFactor(nn.Module):
    """Multiply by a stored constant (a buffer, saved in the ``state_dict``; 1 until fitted).

    GemNet normalises its sums and Hadamard products with such constants, fitted at initialisation
    so that each scaled tensor has a root mean square of one on real structures. Fitting mode
    (see :func:`score_decoder.fit_scale_factors`) accumulates the mean square of the incoming
    tensors and sets the factor to ``1 / rms`` on every call, so one forward pass over a batch fits
    all factors of a network in forward order (each sees inputs already scaled by the earlier ones).
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("value", torch.tensor(1.0))
        self.fitting = False
        self._sum_sq = 0.0
        self._count = 0

    def start_fitting(self) -> None:
        """Reset the statistics and enter fitting mode."""
        self.fitting, self._sum_sq, self._count = True, 0.0, 0

    def stop_fitting(self) -> None:
        """Leave fitting mode, keeping the fitted value."""
        self.fitting = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fitting:
            with torch.no_grad():
                self._sum_sq += float(x.detach().double().pow(2).sum())
                self._count += x.numel()
                if self._sum_sq > 0:
                    self.value.fill_((self._count / self._sum_sq) ** 0.5)
        return x * self.value

    def extra_repr(self) -> str:
        return f"value={float(self.value):.4g}"
