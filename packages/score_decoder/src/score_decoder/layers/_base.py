"""Dense building blocks with variance-preserving initialisation."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Dense", "ResidualLayer", "ScaledSiLU", "he_orthogonal_"]

INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def he_orthogonal_(weight: torch.Tensor) -> torch.Tensor:
    """Orthogonal initialisation rescaled to variance ``1 / fan_in`` (GemNet's "HeOrthogonal").

    The rows are drawn orthogonal, then each row is standardised (zero mean, unit variance over
    ``fan_in``) and scaled by ``1 / sqrt(fan_in)``, so a unit-variance input gives a
    unit-variance output.
    """
    fan_in = weight.shape[-1]
    with torch.no_grad():
        nn.init.orthogonal_(weight)
        mean = weight.mean(dim=-1, keepdim=True)
        var = weight.var(dim=-1, keepdim=True, unbiased=False)
        weight.sub_(mean).div_(torch.sqrt(var + 1e-12)).mul_(1.0 / math.sqrt(fan_in))
    return weight


class ScaledSiLU(nn.Module):
    """``silu(x) / 0.6``: keeps a unit-variance Gaussian input at roughly unit second moment."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.silu(x) * (1.0 / 0.6)


class Dense(nn.Module):
    """Linear layer (no bias by default) followed by an optional scaled SiLU.

    Args:
        in_features: Input width.
        out_features: Output width.
        activation: Apply :class:`ScaledSiLU` after the linear map.
        bias: Add a learned bias (zero-initialised).
    """

    def __init__(self, in_features: int, out_features: int, *, activation: bool, bias: bool = False):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = ScaledSiLU() if activation else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        he_orthogonal_(self.linear.weight)
        if self.linear.bias is not None:
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x))


class ResidualLayer(nn.Module):
    """``(x + act(W2 act(W1 x))) / sqrt(2)``: a two-layer residual update that preserves variance."""

    def __init__(self, width: int):
        super().__init__()
        self.dense1 = Dense(width, width, activation=True)
        self.dense2 = Dense(width, width, activation=True)

    def reset_parameters(self) -> None:
        self.dense1.reset_parameters()
        self.dense2.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.dense2(self.dense1(x))) * INV_SQRT_2
