"""Annealed Langevin sampling of crystals for (cell formula, pressure) rows, as the reference.

For each noise level ``sigma_k`` (10 -> 0.01 Å, skipping those below ``min_sigma``) and each of
``n_step_each`` steps, with ``eta_k = step_lr * (sigma_k / sigma_min)^2``::

    s     = decoder(atoms, graph(x), cond_z)              # (N, 3), ~ minus the unit noise
    x_cart <- x_cart + eta_k * s / sigma_k + sqrt(2 eta_k) * xi,   xi ~ N(0, I) in Å
    x_frac  = wrap(x_cart @ L^-1)

The lattice is predicted once from ``cond_z = MLP([z | c])`` with ``z ~ N(0, I)`` and kept fixed;
initial fractional coordinates are uniform. Noise is added at every step, the last included.
All randomness comes from one ``torch.Generator`` seeded by ``seed``: the same call gives the same
structures, bit for bit, on the same device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from xtal_graph import Crystal, CrystalBatch, cart_to_frac, frac_to_cart, wrap_frac

from ._formula import check_scalar, parse_formula
from ._lattice import validate_lattices
from ._model import CondCDVAE
from ._neighbors import NeighborList

__all__ = ["LangevinResult", "SampledStructure", "langevin_dynamics", "reconstruct", "sample"]


@dataclass(frozen=True)
class SampledStructure:
    """One generated structure. ``crystal`` is ``None`` when the predicted cell was invalid
    (``reason`` says why); ``row`` indexes the input rows, ``index`` the sample within its row."""

    row: int
    index: int
    formula: str
    conditions: dict[str, float]
    crystal: Crystal | None
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.crystal is not None

    def to_pymatgen(self):
        """pymatgen ``Structure`` (raises ``ValueError`` for an invalid sample)."""
        if self.crystal is None:
            raise ValueError(f"sample {self.row}-{self.index} has no structure: {self.reason}")
        return self.crystal.to_pymatgen()


@dataclass(frozen=True)
class LangevinResult:
    """Final ``frac_coords (N, 3)`` in [0, 1), and counts of decoder calls and graph searches."""

    frac_coords: Tensor
    num_decoder_calls: int
    num_graph_builds: int
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def langevin_dynamics(
    model: CondCDVAE,
    *,
    atom_types: Tensor,
    num_atoms: Tensor,
    lattice: Tensor,
    cond_z: Tensor,
    generator: torch.Generator,
    n_step_each: int = 100,
    step_lr: float = 1e-4,
    min_sigma: float = 0.0,
    max_sigma: float = math.inf,
    skin: float | None = None,
    frac_coords: Tensor | None = None,
) -> LangevinResult:
    """Annealed Langevin dynamics on a flat batch with fixed lattices ``(C, 3, 3)``.

    ``skin`` (Å): Verlet-list reuse (:class:`NeighborList`, same trajectory bit for bit); ``None``
    (default) builds a fresh graph every step, which measured as fast on CPU because xtal_graph's
    search costs about as much as filtering a candidate list (docs/benchmarks/cond_vae_sampling.md).
    Levels outside ``[min_sigma, max_sigma]`` (Å) are skipped; ``max_sigma`` with ``frac_coords``
    refines given structures from an intermediate noise level. ``frac_coords``: starting coordinates
    (default: uniform, drawn from ``generator``).
    """
    if n_step_each < 1:
        raise ValueError(f"n_step_each must be >= 1, got {n_step_each}")
    dtype, device = lattice.dtype, lattice.device
    batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=device), num_atoms)
    if frac_coords is None:
        frac_coords = torch.rand((atom_types.shape[0], 3), generator=generator, device=device, dtype=dtype)
    frac = frac_coords
    dec = model.config.decoder
    neighbors = NeighborList(
        cutoff=dec.cutoff, max_neighbors=dec.max_neighbors, skin=skin, num_atoms=num_atoms, batch=batch
    )
    sigmas = model.sigmas.to(torch.float64)
    sigma_min, calls = float(sigmas[-1]), 0
    for sigma in sigmas.tolist():
        if sigma < min_sigma or sigma > max_sigma:
            continue
        eta = step_lr * (sigma / sigma_min) ** 2
        for _ in range(n_step_each):
            graph, trips = neighbors.graph(frac, lattice)
            s = model.score(atom_types=atom_types, batch=batch, graph=graph, triplets=trips, cond_z=cond_z)
            calls += 1
            noise = torch.randn(frac.shape, generator=generator, device=device, dtype=dtype)
            step = (eta / sigma) * s + math.sqrt(2 * eta) * noise  # (N, 3) Å
            unwrapped = cart_to_frac(frac_to_cart(frac, lattice, batch=batch) + step, lattice, batch=batch)
            frac = wrap_frac(unwrapped)
            neighbors.moved(step, torch.round(unwrapped - frac).long())
    return LangevinResult(
        frac_coords=frac,
        num_decoder_calls=calls,
        num_graph_builds=neighbors.num_builds,
        extra={"num_triplet_builds": neighbors.num_triplet_builds},
    )


def _as_list(values, n: int, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        return [values] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} formulas")
    return values


@torch.no_grad()
def sample(
    model: CondCDVAE,
    formulas: str | Sequence[str],
    pressures: float | Sequence[float],
    *,
    num_per_row: int = 1,
    seed: int,
    n_step_each: int = 100,
    step_lr: float = 1e-4,
    min_sigma: float = 0.0,
    skin: float | None = None,
    batch_size: int = 500,
    properties: dict[str, float | Sequence[float]] | None = None,
) -> list[SampledStructure]:
    """Generate ``num_per_row`` structures for every (cell formula, pressure in GPa) row.

    Rows are batched together (``batch_size`` crystals per Langevin run); ``n_step_each`` steps on
    each of the 50 noise levels (the reference uses 100); ``skin`` as in :func:`langevin_dynamics`.
    Further scalar conditions
    of the model go in ``properties`` (one value or one per row). A pressure outside the trained
    range warns. Returns structures row by row, ``num_per_row`` each, in input order. The result is a
    function of ``seed`` and the settings, ``batch_size`` included (it sets the order of random draws).

    Raises:
        ValueError: unknown element, zero atoms, more than ``config.max_atoms`` atoms, NaN or
            non-numeric pressure/property, a missing condition, or bad sampler settings.
    """
    model._require_fitted()
    if num_per_row < 1 or batch_size < 1:
        raise ValueError(f"num_per_row and batch_size must be >= 1, got {num_per_row}, {batch_size}")
    cfg = model.config
    formulas = [formulas] if isinstance(formulas, str) else list(formulas)
    if not formulas:
        raise ValueError("no formulas given")
    parsed = [parse_formula(f, max_atoms=cfg.max_atoms, num_elements=cfg.num_elements) for f in formulas]
    given = {"pressure": pressures, **(properties or {})}
    missing = [n for n in cfg.condition_names if n not in given]
    if missing:
        raise ValueError(f"the model is conditioned on {missing}: pass them (pressures= / properties=)")
    conds = {
        n: [
            check_scalar(v, name=n, unit="GPa" if n == "pressure" else "")
            for v in _as_list(given[n], len(parsed), n)
        ]
        for n in cfg.condition_names
    }
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    for name, values in conds.items():
        model.conditions.check_query(name, torch.tensor(values, dtype=torch.float64))
    generator = torch.Generator(device=device).manual_seed(int(seed))
    jobs = [(r, k) for r in range(len(parsed)) for k in range(num_per_row)]
    out: list[SampledStructure] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            out += _sample_chunk(
                model, chunk, parsed, conds, generator, device, dtype,
                n_step_each=n_step_each, step_lr=step_lr, min_sigma=min_sigma, skin=skin,
            )  # fmt: skip
    finally:
        model.train(was_training)
    return out


def _sample_chunk(
    model, chunk, parsed, conds, generator, device, dtype, **langevin
) -> list[SampledStructure]:
    atom_lists = [parsed[r].atom_types for r, _ in chunk]
    num_atoms = torch.tensor([len(a) for a in atom_lists], device=device)
    atom_types = torch.tensor([z for a in atom_lists for z in a], device=device)
    batch = torch.repeat_interleave(torch.arange(len(chunk), device=device), num_atoms)
    props = {n: torch.tensor([v[r] for r, _ in chunk], device=device, dtype=dtype) for n, v in conds.items()}
    cond = model.conditions(atom_types=atom_types, batch=batch, num_crystals=len(chunk), properties=props)
    z = torch.randn((len(chunk), model.config.latent_dim), generator=generator, device=device, dtype=dtype)
    cond_z = model.cond_z(z, cond)
    params, lattice = model.predict_lattice(cond_z, num_atoms)
    check = validate_lattices(params.double(), num_atoms)
    keep = check.valid
    atom_keep = keep[batch]
    result = None
    if bool(keep.any()):
        result = langevin_dynamics(
            model,
            atom_types=atom_types[atom_keep],
            num_atoms=num_atoms[keep],
            lattice=lattice[keep],
            cond_z=cond_z[keep],
            generator=generator,
            **langevin,
        )
    frac_all = torch.zeros((atom_types.shape[0], 3), dtype=dtype, device=device)
    if result is not None:
        frac_all[atom_keep] = result.frac_coords
    out, offset = [], 0
    for c, (r, k) in enumerate(chunk):
        n = int(num_atoms[c])
        values = {name: conds[name][r] for name in conds}
        crystal = None
        if bool(keep[c]):
            crystal = Crystal(
                atom_types=np.asarray(atom_lists[c], dtype=np.int64),
                frac_coords=frac_all[offset : offset + n].double().cpu().numpy(),
                lattice=lattice[c].double().cpu().numpy(),
                properties=dict(values),
                id=f"{r}-{k}",
            )
        out.append(SampledStructure(r, k, parsed[r].formula, values, crystal, check.reasons[c]))
        offset += n
    return out


@torch.no_grad()
def reconstruct(
    model: CondCDVAE,
    batch: CrystalBatch,
    *,
    seed: int,
    use_mean: bool = False,
    n_step_each: int = 100,
    step_lr: float = 1e-4,
    min_sigma: float = 0.0,
    skin: float | None = None,
) -> list[Crystal | None]:
    """Encode true structures, decode (lattice head + Langevin) with their atoms and conditions.

    ``use_mean=False`` samples ``z`` from the posterior (the reference's recon protocol);
    ``True`` uses its mean. Invalid predicted cells give ``None`` at their position.
    """
    model._require_fitted()
    was_training = model.training
    model.eval()
    try:
        generator = torch.Generator(device=batch.frac_coords.device).manual_seed(int(seed))
        cond = model.condition_vector(batch)
        stats = model.encode(batch, cond)
        eps = torch.randn(stats.mu.shape, generator=generator, device=stats.mu.device, dtype=stats.mu.dtype)
        z = stats.mu if use_mean else stats.mu + torch.exp(0.5 * stats.logvar) * eps
        cond_z = model.cond_z(z, cond)
        params, lattice = model.predict_lattice(cond_z, batch.num_atoms)
        keep = validate_lattices(params.double(), batch.num_atoms).valid
        atom_keep = keep[batch.batch]
        frac = torch.zeros_like(batch.frac_coords)
        if bool(keep.any()):
            frac[atom_keep] = langevin_dynamics(
                model,
                atom_types=batch.atom_types[atom_keep],
                num_atoms=batch.num_atoms[keep],
                lattice=lattice[keep],
                cond_z=cond_z[keep],
                generator=generator,
                n_step_each=n_step_each,
                step_lr=step_lr,
                min_sigma=min_sigma,
                skin=skin,
            ).frac_coords
    finally:
        model.train(was_training)
    out: list[Crystal | None] = []
    starts = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).tolist()
    for c, (s, n) in enumerate(zip(starts, batch.num_atoms.tolist(), strict=True)):
        if not bool(keep[c]):
            out.append(None)
            continue
        props = {k: float(v[c]) for k, v in batch.properties.items()}
        out.append(
            Crystal(
                atom_types=batch.atom_types[s : s + n].cpu().numpy().astype(np.int64),
                frac_coords=frac[s : s + n].double().cpu().numpy(),
                lattice=lattice[c].double().cpu().numpy(),
                properties=props,
                id=batch.ids[c] if batch.ids else None,
            )
        )
    return out
