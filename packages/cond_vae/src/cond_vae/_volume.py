"""A composition-and-pressure prior on the cell volume, fitted in closed form on the training crystals.

    ln(V / N) = c0 + sum_e x_e a_e + b ln(1 + P / P0)

``V / N``: cell volume per atom (Å^3); ``x_e``: the fraction of the cell's atoms that are element ``e``;
``P``: a scalar condition (the pressure, GPa). Ridge regression shrinks every ``a_e`` towards 0, so an
element seen in few training crystals (or none) gets about the average ``c0``. ``P0`` is chosen from a
small grid by the training residual. A linear model of this kind (Vegard-like additive atomic volumes) is
what random-structure searches use to size their cells; here it sizes the cells the lattice head
proposes (``SamplerConfig.cell_volume``), keeping their shape. Measured on this project's test part: the
prior's volumes are off by 8-10 % on average, the default model's lattice head by 16-30 % with a +25 %
bias (``docs/benchmarks/volume_prior.md``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from xtal_graph import Crystal, CrystalBatch

__all__ = ["VolumePrior", "fit_volume_prior"]

_MAX_Z = 118
# candidate P0 (the condition's units, GPa for the pressure): the fit keeps the one with the least residual
_SCALES = (2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


@dataclass(frozen=True)
class VolumePrior:
    """``ln(V/N) = intercept + sum_e x_e element_terms[e] + condition_coef ln(1 + c / condition_scale)``.

    ``element_terms``: atomic number -> ``a_e`` (only elements of the fit; any other element adds 0).
    ``condition``: the scalar condition of the pressure term (``None``: no such term). ``residual_sd``:
    standard deviation of ``ln(V/N)`` around the fit on its training crystals (0.1 is about 10 %).
    """

    intercept: float
    element_terms: Mapping[int, float]
    condition: str | None = None
    condition_coef: float = 0.0
    condition_scale: float = 1.0
    residual_sd: float = 0.0
    num_crystals: int = 0
    _table: Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not all(1 <= int(z) <= _MAX_Z for z in self.element_terms):
            raise ValueError(f"VolumePrior: element numbers must be 1..{_MAX_Z}")
        if not self.condition_scale > 0:
            raise ValueError(f"VolumePrior: condition_scale must be > 0, got {self.condition_scale}")
        values = [self.intercept, self.condition_coef, *self.element_terms.values()]
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError("VolumePrior: every term must be finite")
        table = torch.zeros(_MAX_Z + 1, dtype=torch.float64)
        for z, a in self.element_terms.items():
            table[int(z)] = float(a)
        object.__setattr__(self, "_table", table)

    def log_volume_per_atom(
        self, *, atom_types: Tensor, batch: Tensor, num_atoms: Tensor, conditions: Mapping[str, Tensor]
    ) -> Tensor:
        """``ln(V/N)`` ``(C,)`` (float64) of ``C`` crystals from their atoms ``atom_types (N,)`` (atomic
        numbers), ``batch (N,)`` crystal index, ``num_atoms (C,)`` and ``conditions`` (raw units,
        ``(C,)`` each)."""
        table = self._table.to(atom_types.device)
        sums = torch.zeros(num_atoms.shape[0], dtype=torch.float64, device=atom_types.device)
        sums.index_add_(0, batch, table[atom_types])  # (C,)
        out = self.intercept + sums / num_atoms.to(torch.float64)
        if self.condition is not None:
            if self.condition not in conditions:
                raise KeyError(
                    f"VolumePrior: condition {self.condition!r} is needed, got {sorted(conditions)}"
                )
            c = conditions[self.condition].to(device=out.device, dtype=torch.float64).reshape(-1)
            out = out + self.condition_coef * torch.log1p(c.clamp_min(0.0) / self.condition_scale)
        return out

    def volume(
        self, *, atom_types: Tensor, batch: Tensor, num_atoms: Tensor, conditions: Mapping[str, Tensor]
    ) -> Tensor:
        """Cell volumes ``(C,)`` in Å^3 (float64)."""
        log_v = self.log_volume_per_atom(
            atom_types=atom_types, batch=batch, num_atoms=num_atoms, conditions=conditions
        )
        return torch.exp(log_v) * num_atoms.to(torch.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON view (saved in checkpoints' ``config.json``); element keys are atomic numbers as text."""
        return {
            "model": "ln(V/N) = intercept + sum_e x_e a_e + condition_coef ln(1 + c / condition_scale)",
            "intercept": self.intercept,
            "element_terms": {str(int(z)): float(a) for z, a in sorted(self.element_terms.items())},
            "condition": self.condition,
            "condition_coef": self.condition_coef,
            "condition_scale": self.condition_scale,
            "residual_sd": self.residual_sd,
            "num_crystals": self.num_crystals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VolumePrior:
        try:
            return cls(
                intercept=float(data["intercept"]),
                element_terms={int(z): float(a) for z, a in dict(data["element_terms"]).items()},
                condition=data.get("condition"),
                condition_coef=float(data.get("condition_coef", 0.0)),
                condition_scale=float(data.get("condition_scale", 1.0)),
                residual_sd=float(data.get("residual_sd", 0.0)),
                num_crystals=int(data.get("num_crystals", 0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"VolumePrior: invalid JSON view ({err})") from None


def _rows(item: Crystal | CrystalBatch, condition: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x (C, 119)`` element fractions, ``y (C,)`` ln(V/N) and the condition ``(C,)`` of one item."""
    if isinstance(item, Crystal):
        atoms = np.asarray(item.atom_types, dtype=np.int64)
        lattices = np.asarray(item.lattice, dtype=np.float64)[None]
        batch, sizes = np.zeros(len(atoms), dtype=np.int64), np.array([len(atoms)])
        props = {k: np.array([float(v)]) for k, v in item.properties.items()}
    elif isinstance(item, CrystalBatch):
        atoms, batch = item.atom_types.cpu().numpy(), item.batch.cpu().numpy()
        lattices, sizes = item.lattice.double().cpu().numpy(), item.num_atoms.cpu().numpy()
        props = {k: v.double().cpu().numpy().reshape(-1) for k, v in item.properties.items()}
    else:
        raise TypeError(f"fit_volume_prior expects Crystal or CrystalBatch items, got {type(item).__name__}")
    x = np.zeros((len(sizes), _MAX_Z + 1))
    np.add.at(x, (batch, atoms), 1.0)
    x /= sizes[:, None]
    y = np.log(np.abs(np.linalg.det(lattices)) / sizes)
    if condition is None:
        c = np.zeros(len(sizes))
    elif condition in props:
        c = np.clip(props[condition], 0.0, None)
    else:
        raise KeyError(f"fit_volume_prior: condition {condition!r} missing from a training item's properties")
    if not (np.isfinite(y).all() and np.isfinite(c).all()):
        raise ValueError("fit_volume_prior: a training crystal has a non-finite volume or condition")
    return x, y, c


def fit_volume_prior(
    data: CrystalBatch | Iterable[Crystal | CrystalBatch],
    *,
    condition: str | None = "pressure",
    ridge: float = 1.0,
) -> VolumePrior:
    """Fit a :class:`VolumePrior` by ridge least squares on ``ln(V/N)`` (one pass, streamed).

    ``data``: a ``CrystalBatch`` or an iterable of ``Crystal`` / ``CrystalBatch`` (as
    :meth:`CondCDVAE.fit_scalers` takes). ``condition``: the scalar property of the pressure term
    (``None``: none; a condition that is constant in the data gets no term either). ``ridge``: penalty on
    each ``a_e`` (about the weight of one crystal made of that element alone).
    """
    if ridge <= 0:
        raise ValueError(f"fit_volume_prior: ridge must be > 0, got {ridge}")
    k = _MAX_Z + 1
    gram = np.zeros((len(_SCALES), k + 2, k + 2))
    rhs = np.zeros((len(_SCALES), k + 2))
    yy, count, c_lo, c_hi = 0.0, 0, math.inf, -math.inf
    for item in [data] if isinstance(data, CrystalBatch) else data:
        x, y, c = _rows(item, condition)
        for s, scale in enumerate(_SCALES):
            a = np.hstack([np.ones((len(y), 1)), x, np.log1p(c / scale)[:, None]])  # (C, k + 2)
            gram[s] += a.T @ a
            rhs[s] += a.T @ y
        yy += float(y @ y)
        count += len(y)
        if len(c):
            c_lo, c_hi = min(c_lo, float(c.min())), max(c_hi, float(c.max()))
    if count == 0:
        raise ValueError("fit_volume_prior: no training crystals")
    use_condition = condition is not None and c_hi > c_lo
    penalty = np.zeros(k + 2)
    penalty[1 : k + 1] = ridge
    best = None
    for s, scale in enumerate(_SCALES if use_condition else _SCALES[:1]):
        g, r = gram[s], rhs[s]
        if not use_condition:  # no pressure column: fix its coefficient at 0
            g, r = g[:-1, :-1], r[:-1]
        w = np.linalg.solve(g + np.diag(penalty[: len(r)]), r)
        sse = yy - 2 * w @ r + w @ g @ w
        if best is None or sse < best[0]:
            best = (sse, scale, w)
    sse, scale, w = best
    seen = np.flatnonzero(np.diag(gram[0])[1 : k + 1] > 0)
    return VolumePrior(
        intercept=float(w[0]),
        element_terms={int(z): float(w[1 + z]) for z in seen},
        condition=condition if use_condition else None,
        condition_coef=float(w[-1]) if use_condition else 0.0,
        condition_scale=float(scale) if use_condition else 1.0,
        residual_sd=float(math.sqrt(max(sse, 0.0) / count)),
        num_crystals=count,
    )
