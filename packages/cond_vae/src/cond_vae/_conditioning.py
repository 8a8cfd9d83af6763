"""The condition vector ``c = [composition | Gauss(standardised scalar) | ...]`` of each crystal."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from ._config import ScalarCondition
from ._scalers import Standardizer

__all__ = ["CompositionEmbedding", "ConditionEncoder", "GaussianBasis"]


class CompositionEmbedding(nn.Module):
    """Mean over a crystal's atoms of a learned per-element vector ``(C, dim)``.

    It is the atom-fraction-weighted average, so a formula and its supercell embed identically; the
    number of atoms enters the model elsewhere (lattice scaling, the decoder's atoms).
    """

    def __init__(self, *, num_elements: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_elements, dim)
        nn.init.uniform_(self.embedding.weight, -math.sqrt(3), math.sqrt(3))

    def forward(self, atom_types: Tensor, batch: Tensor, num_crystals: int) -> Tensor:
        """``atom_types (N,)`` atomic numbers 1..num_elements, ``batch (N,)`` -> ``(C, dim)``."""
        h = self.embedding(atom_types - 1)  # (N, dim)
        return scatter(h, batch, dim=0, dim_size=num_crystals, reduce="mean")


class GaussianBasis(nn.Module):
    """``exp(-(x - mu_k)^2 / (2 w^2))`` on ``n`` centres evenly spaced on ``[start, stop]``.

    The width ``w`` (not trainable) defaults to the centre spacing."""

    def __init__(self, *, start: float, stop: float, n_basis: int, width: float | None = None) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(start, stop, n_basis, dtype=torch.float64))
        self.width = width if width is not None else (stop - start) / (n_basis - 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x (C,)`` values in the basis' unit -> ``(C, n_basis)``."""
        diff = x.unsqueeze(-1) - self.centers.to(x.dtype)
        return torch.exp(-0.5 * (diff / self.width) ** 2)


class ConditionEncoder(nn.Module):
    """Builds ``c (C, cond_dim)`` from atom types and ``properties[name] (C,)`` raw values.

    Each scalar condition is standardised with its fitted :class:`Standardizer` (``scalers[name]``;
    skipped for a ``"raw"`` basis, whose scaler only records the trained range) and expanded on a
    Gaussian basis; there are no trainable weights besides the element embedding.
    """

    def __init__(
        self, *, num_elements: int, composition_dim: int, scalar_conditions: tuple[ScalarCondition, ...]
    ) -> None:
        super().__init__()
        self.composition = CompositionEmbedding(num_elements=num_elements, dim=composition_dim)
        self.specs = scalar_conditions
        self.scalers = nn.ModuleDict({s.name: Standardizer([s.min_scale]) for s in scalar_conditions})
        self.bases = nn.ModuleDict(
            {
                s.name: GaussianBasis(start=s.start, stop=s.stop, n_basis=s.n_basis, width=s.width)
                for s in scalar_conditions
            }
        )

    def standardise(self, name: str, values: Tensor) -> Tensor:
        """Raw ``values (C,)`` of condition ``name`` -> standardised ``(C,)``."""
        return self.scalers[name].transform(values.unsqueeze(-1)).squeeze(-1)

    def forward(
        self, *, atom_types: Tensor, batch: Tensor, num_crystals: int, properties: dict[str, Tensor]
    ) -> Tensor:
        parts = [self.composition(atom_types, batch, num_crystals)]
        for spec in self.specs:
            if spec.name not in properties:
                raise KeyError(
                    f"condition {spec.name!r} missing from the batch properties (have {sorted(properties)})"
                )
            values = properties[spec.name].to(device=parts[0].device, dtype=parts[0].dtype)
            if spec.basis == "standardised":
                values = self.standardise(spec.name, values)
            parts.append(self.bases[spec.name](values))
        return torch.cat(parts, dim=-1)  # (C, cond_dim)

    def check_query(self, name: str, values: Tensor, *, most: int = 5) -> list[str]:
        """Warn (and return the messages) for raw query values outside the trained range or basis range.

        One message per distinct value (the ``most`` lowest; a last one counts the rest), so that a value
        is said once however the queries are batched.
        """
        scaler, spec = self.scalers[name], next(s for s in self.specs if s.name == name)
        values64 = values.detach().to(torch.float64).cpu()
        lo, hi = float(scaler.lo), float(scaler.hi)
        if spec.basis == "standardised":
            in_basis_unit = (values64 - float(scaler.mean)) / float(scaler.scale)
        else:
            in_basis_unit = values64
        outside_train = (values64 < lo - 1e-9 * max(1.0, abs(lo))) | (
            values64 > hi + 1e-9 * max(1.0, abs(hi))
        )
        outside_basis = (in_basis_unit < spec.start) | (in_basis_unit > spec.stop)
        unit = " GPa" if name == "pressure" else ""
        trained = f"outside the range this model was trained on ({lo:g}-{hi:g}{unit}): it extrapolates"
        far = "the model can no longer tell such values apart"
        flagged: dict[float, str] = {}
        for v, out_train, out_basis in zip(
            values64.tolist(), outside_train.tolist(), outside_basis.tolist(), strict=True
        ):
            if out_train:  # far outside: the condition stops carrying information
                flagged[v] = f"{name} {v:g}{unit} is {trained}" + (
                    f", and so far that {far}" if out_basis else ""
                )
            elif out_basis:  # only when the trained range itself is wider than the basis
                flagged[v] = f"{name} {v:g}{unit}: {far}"
        order = sorted(flagged)
        messages = [flagged[v] for v in order[:most]]
        if len(order) > most:
            messages.append(f"{name}: {len(order) - most} more values {trained}")
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=3)
        return messages
