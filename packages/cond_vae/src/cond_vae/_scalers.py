"""Column standardisation with a robust scale, stored as buffers (saved with the weights).

The reference fits ``mean`` and population ``std + 1e-5``; a constant column (all training pressures
0 GPa, perovskite angles all 90°) then gets a scale of 1e-5 and any other query value becomes ~1e6 σ.
Here the scale is ``max(std, min_scale)`` with a per-column floor in the column's unit, and the training
range is kept so that queries outside it can be reported.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["RunningStats", "Standardizer"]


class RunningStats:
    """Streaming count / mean / population variance / min / max per column (float64, Chan's merge)."""

    def __init__(self, num_columns: int) -> None:
        self.count = 0
        self.mean = np.zeros(num_columns)
        self.m2 = np.zeros(num_columns)
        self.lo = np.full(num_columns, np.inf)
        self.hi = np.full(num_columns, -np.inf)

    def update(self, values: np.ndarray) -> None:
        """Add rows ``values (R, num_columns)``; non-finite values raise ``ValueError``."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, self.mean.shape[0])
        if values.shape[0] == 0:
            return
        if not np.isfinite(values).all():
            raise ValueError("non-finite value while fitting scalers")
        n_b = values.shape[0]
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta**2 * self.count * n_b / n
        self.count = n
        self.lo = np.minimum(self.lo, values.min(axis=0))
        self.hi = np.maximum(self.hi, values.max(axis=0))

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1))


class Standardizer(nn.Module):
    """``transform(x) = (x - mean) / scale`` per column; ``scale = max(std, min_scale)``.

    Buffers: ``mean``, ``scale``, ``lo``, ``hi`` (training range), all ``(D,)`` float64 so that the
    standardisation of e.g. pressures in GPa is exact; ``transform`` casts to the input's dtype.
    """

    def __init__(self, min_scale: list[float] | tuple[float, ...]) -> None:
        super().__init__()
        d = len(min_scale)
        self.register_buffer("mean", torch.zeros(d, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(d, dtype=torch.float64))
        self.register_buffer("lo", torch.full((d,), -torch.inf, dtype=torch.float64))
        self.register_buffer("hi", torch.full((d,), torch.inf, dtype=torch.float64))
        self.register_buffer("min_scale", torch.tensor(list(min_scale), dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _apply(self, fn, recurse=True):  # keep the float64 buffers float64 under .float()/.half()
        saved = {name: getattr(self, name) for name in ("mean", "scale", "lo", "hi", "min_scale")}
        super()._apply(fn, recurse)
        for name, value in saved.items():
            setattr(self, name, value.to(device=getattr(self, name).device))
        return self

    def set_from(self, stats: RunningStats) -> None:
        """Store a fit (called by ``CondCDVAE.fit_scalers``)."""
        if stats.count == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        device = self.mean.device
        std = torch.as_tensor(stats.std, dtype=torch.float64, device=device)
        self.mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float64))
        self.scale.copy_(torch.maximum(std, self.min_scale))
        self.lo.copy_(torch.as_tensor(stats.lo, dtype=torch.float64))
        self.hi.copy_(torch.as_tensor(stats.hi, dtype=torch.float64))
        self.fitted.fill_(True)

    def transform(self, x: Tensor) -> Tensor:
        """``(..., D)`` raw values -> standardised, in ``x.dtype``."""
        return ((x.to(torch.float64) - self.mean) / self.scale).to(x.dtype)

    def inverse_transform(self, x: Tensor) -> Tensor:
        """``(..., D)`` standardised -> raw values, in ``x.dtype`` (differentiable)."""
        return x * self.scale.to(x.dtype) + self.mean.to(x.dtype)

    def to_dict(self) -> dict[str, list[float] | bool]:
        """JSON view (informative copy; the buffers in the weights file are authoritative)."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "min": self.lo.tolist(),
            "max": self.hi.tolist(),
            "min_scale": self.min_scale.tolist(),
            "fitted": bool(self.fitted),
        }
