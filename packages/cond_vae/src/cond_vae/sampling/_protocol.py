"""The score-model protocol the sampling engine is written against, and its Cond-CDVAE adapter.

A score model gives the engine three things: its noise levels, a proposal (a condition vector and a
cell for each crystal from its atoms, conditions and latent noise), and the score of the coordinates
(given with their periodic graph) at a noise level. Anything that provides them (a custom denoiser, a
different prior over cells) is sampled by the same engine with the same samplers; see
``examples/custom_denoiser.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from xtal_graph import PeriodicGraph, Triplets

from .._lattice import (
    lattice_to_scaled_params,
    scaled_params_to_lattice,
    validate_lattices,
)


@dataclass(frozen=True)
class Proposal:
    """What the engine needs per crystal before the coordinates: ``cond (C, D)`` read by the score,
    ``lattice (C, 3, 3)`` Å (row vectors), and ``reasons`` (empty string: usable; else why not)."""

    cond: Tensor
    lattice: Tensor
    reasons: tuple[str, ...]


@runtime_checkable
class ScoreModel(Protocol):
    """What the sampling engine calls.

    ``sigmas``: noise levels ``(L,)`` in Å, descending. ``latent_dim``: width of the per-crystal noise
    the proposal reads (0: none). ``cutoff`` (Å) / ``max_neighbors``: the graph the score reads.
    Optional: ``volume_prior``, an object with ``volume(atom_types=, batch=, num_atoms=, conditions=)``
    giving cell volumes ``(C,)`` in Å^3 (:class:`~cond_vae.VolumePrior`), for
    ``SamplerConfig.cell_volume``; ``latent_prior``, a :class:`~cond_vae.LatentPrior`, for
    ``SamplerConfig.latent`` (``"analogue"`` also needs ``model``, whose ``conditions`` encoder ranks
    the prior's crystals: :class:`CondCDVAEScore` has both).
    """

    sigmas: Tensor
    latent_dim: int
    cutoff: float
    max_neighbors: int | None

    def propose(
        self, *, atom_types: Tensor, batch: Tensor, num_atoms: Tensor, conditions: dict[str, Tensor],
        latent: Tensor, lattice: Tensor | None,
    ) -> Proposal:  # fmt: skip
        """Condition vectors and cells for ``C`` crystals; ``lattice`` given: use it (still checked)."""
        ...

    def score(
        self, *, atom_types: Tensor, batch: Tensor, frac: Tensor, lattice: Tensor, graph: PeriodicGraph,
        triplets: Triplets, cond: Tensor, sigma: float,
    ) -> Tensor:  # fmt: skip
        """``grad_x log p_sigma(x)`` ``(N, 3)`` in 1/Å for Cartesian coordinates at noise level ``sigma``.

        ``frac (N, 3)`` and ``lattice (C, 3, 3)`` are the current state; ``graph``/``triplets`` the
        periodic graph within ``cutoff`` built from it (a model may read either).
        """
        ...


class CondCDVAEScore:
    """A :class:`~cond_vae.CondCDVAE` as a :class:`ScoreModel`.

    The decoder predicts minus the unit noise direction, so the score is its output divided by sigma;
    the proposal is ``cond_z = MLP([z | c])`` and the lattice head's cell (or the given cell);
    ``volume_prior`` and ``latent_prior`` are the model's (``None``: it has none).
    Per-crystal MLPs run one crystal at a time so that their rounding does not depend on the batch.
    """

    def __init__(self, model) -> None:
        model._require_fitted()
        self.model = model
        self.sigmas = model.sigmas.detach().to(torch.float64)
        self.latent_dim = model.config.latent_dim
        self.cutoff = model.config.decoder.cutoff
        self.max_neighbors = model.config.decoder.max_neighbors
        self.volume_prior = getattr(model, "volume_prior", None)
        self.latent_prior = getattr(model, "latent_prior", None)

    def propose(self, *, atom_types, batch, num_atoms, conditions, latent, lattice):
        m = self.model
        starts = (torch.cumsum(num_atoms, 0) - num_atoms).tolist()
        cond_z, params = [], []
        for i, (s, n) in enumerate(zip(starts, num_atoms.tolist(), strict=True)):
            one = torch.zeros(n, dtype=torch.long, device=atom_types.device)
            props = {k: v[i : i + 1] for k, v in conditions.items()}
            c = m.conditions(atom_types=atom_types[s : s + n], batch=one, num_crystals=1, properties=props)
            cond_z.append(m.cond_z(latent[i : i + 1], c))  # (1, D)
            if lattice is None:
                params.append(m.lattice_scaler.inverse_transform(m.lattice_head(cond_z[-1])))  # (1, 6)
        cond = torch.cat(cond_z)  # (C, D)
        if lattice is None:
            lattice = scaled_params_to_lattice(torch.cat(params), num_atoms)
            check = validate_lattices(torch.cat(params).double(), num_atoms)
        else:
            check = validate_lattices(lattice_to_scaled_params(lattice.double(), num_atoms), num_atoms)
        return Proposal(cond=cond, lattice=lattice, reasons=tuple(check.reasons))

    def score(self, *, atom_types, batch, frac, lattice, graph, triplets, cond, sigma):
        out = self.model.score(
            atom_types=atom_types, batch=batch, graph=graph, triplets=triplets, cond_z=cond
        )
        return out / sigma


def as_score_model(model) -> ScoreModel:
    """``model`` itself when it already is a :class:`ScoreModel`, else the Cond-CDVAE adapter."""
    if isinstance(model, ScoreModel):
        return model
    return CondCDVAEScore(model)
