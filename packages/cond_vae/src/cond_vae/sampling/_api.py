"""``sample`` and ``reconstruct``: the Cond-CDVAE front doors to the engine."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from xtal_graph import Crystal, CrystalBatch

from .._formula import check_scalar, parse_formula
from ._config import DEFAULT_SAMPLER, SamplerConfig
from ._engine import SampledStructure, SampleRequest, run_block, sample_requests
from ._protocol import CondCDVAEScore

__all__ = ["make_requests", "reconstruct", "sample"]


def _as_list(values, n: int, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        return [values] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} formulas")
    return values


def make_requests(
    model,
    formulas: str | Sequence[str],
    pressures: float | Sequence[float],
    *,
    properties: dict[str, float | Sequence[float]] | None = None,
    lattices: Sequence | None = None,
    ids: Sequence[str | None] | None = None,
) -> list[SampleRequest]:
    """Checked requests for (cell formula, pressure in GPa) rows of ``model``.

    Raises:
        ValueError: unknown element, zero atoms, more than ``config.max_atoms`` atoms, NaN or
            non-numeric pressure/property, or a missing condition (the message names the row).
    """
    cfg = model.config
    formulas = [formulas] if isinstance(formulas, str) else list(formulas)
    if not formulas:
        raise ValueError("no formulas given")
    parsed = []
    for i, f in enumerate(formulas):
        try:
            parsed.append(parse_formula(f, max_atoms=cfg.max_atoms, num_elements=cfg.num_elements))
        except ValueError as err:
            raise ValueError(f"row {i} ({f!r}): {err}") from None
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
    for name, values in conds.items():
        model.conditions.check_query(name, torch.tensor(values, dtype=torch.float64))
    _warn_unseen_elements(model, formulas, parsed)
    lattices = [None] * len(parsed) if lattices is None else _as_list(lattices, len(parsed), "lattices")
    ids = [None] * len(parsed) if ids is None else list(ids)
    return [
        SampleRequest(
            atom_types=tuple(int(z) for z in p.atom_types),
            conditions={n: float(conds[n][i]) for n in conds},
            formula=p.formula,
            lattice=None
            if lattices[i] is None
            else tuple(tuple(float(x) for x in row) for row in np.asarray(lattices[i])),
            id=ids[i],
        )
        for i, p in enumerate(parsed)
    ]


def _warn_unseen_elements(model, formulas, parsed) -> None:
    """Warn, in plain words, when a request holds an element the training data never had."""
    seen = (getattr(model, "trained_on", None) or {}).get("elements")
    if not seen:
        return
    from pymatgen.core import Element

    known = set(seen)
    for i, p in enumerate(parsed):
        new = sorted({int(z) for z in p.atom_types} - known)
        if new:
            names = ", ".join(Element.from_Z(z).symbol for z in new)
            warnings.warn(
                f"row {i} ({formulas[i]}): {names} never occurred in this model's training data; its "
                "structures for this formula are a guess",
                UserWarning,
                stacklevel=3,
            )


@torch.no_grad()
def sample(
    model,
    formulas: str | Sequence[str],
    pressures: float | Sequence[float],
    *,
    num_per_row: int = 1,
    seed: int,
    sampler: SamplerConfig = DEFAULT_SAMPLER,
    properties: dict[str, float | Sequence[float]] | None = None,
    lattices: Sequence | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SampledStructure]:
    """Generate ``num_per_row`` structures for every (cell formula, pressure in GPa) row.

    ``sampler`` chooses the method and the number of decoder calls (default: the measured default, see
    ``docs/benchmarks/sampler.md``; ``SamplerConfig.reference()`` is the reference's 5,000-call
    setting). ``lattices``: optional given cells ``(3, 3)`` Å per row (coordinates only are sampled).
    Returns structures row by row, ``num_per_row`` each, in input order; the result is a function of
    ``seed``, the rows and the sampler settings (not of ``sampler.batch_size`` beyond float rounding).
    """
    model._require_fitted()
    requests = make_requests(model, formulas, pressures, properties=properties, lattices=lattices)
    return sample_requests(
        model, requests, num_per_row=num_per_row, seed=seed, sampler=sampler, progress=progress
    )


@torch.no_grad()
def reconstruct(
    model,
    batch: CrystalBatch,
    *,
    seed: int,
    sampler: SamplerConfig = DEFAULT_SAMPLER,
    use_mean: bool = False,
    true_lattice: bool = False,
    rows: Sequence[int] | None = None,
) -> list[Crystal | None]:
    """Encode true structures, decode them (lattice head + sampler) with their atoms and conditions.

    ``use_mean=False`` samples ``z`` from the posterior (the reference's recon protocol); ``True`` uses
    its mean. Every random number of crystal ``i`` is keyed by ``(seed, rows[i])`` (default: its index
    in ``batch``), so a data set reconstructed in chunks with their global ``rows`` gives what one call
    gives. ``true_lattice``: decode coordinates in the true cells. Invalid predicted cells give
    ``None`` at their position. Crystals are decoded in blocks of ``sampler.batch_size``.
    """
    from . import _noise

    model._require_fitted()
    was_training = model.training
    model.eval()
    score_model = CondCDVAEScore(model)
    out: list[Crystal | None] = []
    try:
        stats = model.encode(batch, model.condition_vector(batch))
        rows = list(range(batch.num_crystals)) if rows is None else [int(r) for r in rows]
        if len(rows) != batch.num_crystals:
            raise ValueError(f"rows: {len(rows)} values for {batch.num_crystals} crystals")
        keys = torch.tensor([_noise.structure_key(seed, r, 0) for r in rows], device=stats.mu.device)
        eps = _noise.normal(keys, _noise.LATENT, 0, stats.mu.shape[1], stats.mu.dtype)
        z = stats.mu if use_mean else stats.mu + torch.exp(0.5 * stats.logvar) * eps
        starts = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).tolist()
        jobs = []
        for i, (s, n) in enumerate(zip(starts, batch.num_atoms.tolist(), strict=True)):
            lattice = tuple(map(tuple, batch.lattice[i].double().cpu().tolist())) if true_lattice else None
            conditions = {k: float(v[i]) for k, v in batch.properties.items()}
            atoms = tuple(int(a) for a in batch.atom_types[s : s + n].tolist())
            jobs.append((SampleRequest(atoms, conditions, lattice=lattice), rows[i], 0))
        size = sampler.batch_size
        for b in range(0, len(jobs), size):
            done = run_block(
                score_model, jobs[b : b + size], seed=seed, sampler=sampler, latent=z[b : b + size]
            )
            for j, s in enumerate(done):
                c = s.crystal
                if c is not None:
                    c = Crystal(
                        atom_types=c.atom_types, frac_coords=c.frac_coords, lattice=c.lattice,
                        properties=dict(c.properties), id=batch.ids[b + j] if batch.ids else None,
                    )  # fmt: skip
                out.append(c)
    finally:
        model.train(was_training)
    return out
