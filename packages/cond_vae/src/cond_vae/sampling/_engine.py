"""The sampling engine: requests in, structures out, the same ones however the work is cut.

Work is a list of jobs ``(row, sample index)`` in row-major order, cut into blocks of
``SamplerConfig.batch_size`` jobs; block ``b`` goes to rank ``b % world_size``. Every random number of
a job is keyed by ``(seed, row, sample index)`` (:mod:`._noise`), so the structures do not depend on the
number of processes (bit for bit) nor on the batch size (up to the rounding of batched matrix
products, measured in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from xtal_graph import Crystal, cart_to_frac, frac_to_cart, wrap_frac

from .._compile import compile_once
from .._neighbors import NeighborList
from . import _noise
from ._config import DEFAULT_SAMPLER, SamplerConfig
from ._protocol import Proposal, ScoreModel, as_score_model
from ._samplers import displacement, plan
from ._species import DRAWS, LEVEL_STRIDE, MAX_ASSIGNMENTS, reassign_species

__all__ = ["SampleRequest", "SampledStructure", "sample_requests", "run_block", "job_blocks"]


@dataclass(frozen=True)
class SampleRequest:
    """One row: the atoms of a full cell (atomic numbers), its conditions (e.g. ``{"pressure": 50.0}``
    in GPa), optionally a given cell ``lattice (3, 3)`` Å and an ``id``."""

    atom_types: tuple[int, ...]
    conditions: dict[str, float]
    formula: str = ""
    lattice: tuple[tuple[float, ...], ...] | None = None
    id: str | None = None


@dataclass(frozen=True)
class SampledStructure:
    """One generated structure. ``crystal`` is ``None`` when the proposed cell was invalid
    (``reason`` says why); ``row`` indexes the input rows, ``index`` the sample within its row."""

    row: int
    index: int
    formula: str
    conditions: dict[str, float]
    crystal: Crystal | None
    reason: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def valid(self) -> bool:
        return self.crystal is not None

    def to_pymatgen(self):
        """pymatgen ``Structure`` (raises ``ValueError`` for an invalid sample)."""
        if self.crystal is None:
            raise ValueError(f"sample {self.row}-{self.index} has no structure: {self.reason}")
        return self.crystal.to_pymatgen()


def job_blocks(num_rows: int, num_per_row: int, batch_size: int) -> list[list[tuple[int, int]]]:
    """Jobs ``(row, index)`` in row-major order, cut into blocks of ``batch_size``."""
    jobs = [(r, k) for r in range(num_rows) for k in range(num_per_row)]
    return [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]


@torch.no_grad()
def sample_requests(
    model,
    requests: Sequence[SampleRequest],
    *,
    num_per_row: int,
    seed: int,
    sampler: SamplerConfig = DEFAULT_SAMPLER,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[int], None] | None = None,
    jobs: Sequence[tuple[int, int]] | None = None,
) -> list[SampledStructure]:
    """This rank's structures for ``num_per_row`` samples of every request, in (row, index) order.

    ``model``: a :class:`~cond_vae.CondCDVAE` or any :class:`ScoreModel`. ``progress(n)`` is called
    after every decoder call with the whole structures its block has finished since the last call
    (the calls add up to the number of structures). ``jobs``: sample exactly these
    ``(row, sample index)`` pairs, in this order (``num_per_row`` is then ignored); each has the
    random numbers it has in a full request, so a subset, or more samples later, continue a job.
    """
    if jobs is None and num_per_row < 1:
        raise ValueError(f"num_per_row must be >= 1, got {num_per_row}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    score_model = as_score_model(model)
    out: list[SampledStructure] = []
    if jobs is None:
        blocks = job_blocks(len(requests), num_per_row, sampler.batch_size)
    else:
        jobs = [(int(r), int(k)) for r, k in jobs]
        bad = [(r, k) for r, k in jobs if not (0 <= r < len(requests) and k >= 0)]
        if bad:
            raise ValueError(
                f"jobs {bad[:5]} name no request row (0..{len(requests) - 1}) or a negative index"
            )
        size = sampler.batch_size
        blocks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    module = getattr(score_model, "model", None)
    if sampler.compile and module is not None:
        compile_once(module)
    was_training = bool(module is not None and module.training)
    if module is not None:
        module.eval()
    try:
        for b in range(rank, len(blocks), world_size):
            out += run_block(
                score_model, [(requests[r], r, k) for r, k in blocks[b]], seed=seed, sampler=sampler,
                on_step=None if progress is None else _Ticker(len(blocks[b]), progress),
            )  # fmt: skip
    finally:
        if module is not None:
            module.train(was_training)
    return out


class _Ticker:
    """Turns a block's ``(done, total)`` decoder calls into whole finished structures for ``progress``."""

    def __init__(self, size: int, progress: Callable[[int], None]) -> None:
        self.size, self.progress, self.reported = size, progress, 0

    def __call__(self, done: int, total: int) -> None:
        now = self.size * done // total
        if now > self.reported:
            self.progress(now - self.reported)
            self.reported = now


def _device_dtype(score_model: ScoreModel) -> tuple[torch.device, torch.dtype]:
    module = getattr(score_model, "model", score_model)
    if isinstance(module, torch.nn.Module):
        p = next(module.parameters(), None)
        if p is not None:
            return p.device, p.dtype
    return score_model.sigmas.device, score_model.sigmas.dtype


@torch.no_grad()
def run_block(
    score_model: ScoreModel,
    jobs: Sequence[tuple[SampleRequest, int, int]],
    *,
    seed: int,
    sampler: SamplerConfig,
    latent: Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[SampledStructure]:
    """Sample one block of jobs ``(request, row, index)`` together (one decoder call per step).

    ``latent (C, Z)``: given latent vectors (e.g. a posterior's, to reconstruct); default: drawn from
    the jobs' keys. ``on_step(done, total)``: called after each decoder call (``done`` of ``total``).
    """
    if sampler.reproducible and len(jobs) > 1:
        # one structure at a time: every array op and matrix product sees exactly what it sees at batch
        # size 1 (vectorised kernels round by position), so the bits never depend on the batch
        out = []
        for n, job in enumerate(jobs):
            tick = None if on_step is None else (lambda d, t, n=n: on_step(n * t + d, len(jobs) * t))
            one = None if latent is None else latent[n : n + 1]
            out += run_block(score_model, [job], seed=seed, sampler=sampler, latent=one, on_step=tick)
        return out
    device, dtype = _device_dtype(score_model)
    atom_lists = [req.atom_types for req, _, _ in jobs]
    num_atoms = torch.tensor([len(a) for a in atom_lists], device=device)
    atom_types = torch.tensor([z for a in atom_lists for z in a], device=device)
    c = len(jobs)
    batch = torch.repeat_interleave(torch.arange(c, device=device), num_atoms)  # (N,)
    keys = torch.tensor([_noise.structure_key(seed, r, k) for _, r, k in jobs], device=device)  # (C,)
    local = torch.arange(atom_types.shape[0], device=device) - (torch.cumsum(num_atoms, 0) - num_atoms)[batch]
    atom_keys = _noise.atom_keys(keys[batch], local)  # (N,)
    names = sorted(jobs[0][0].conditions)
    conds = {
        n: torch.tensor([req.conditions[n] for req, _, _ in jobs], device=device, dtype=dtype) for n in names
    }
    latent_source, analogue = "given", None
    if latent is None:
        latent = _noise.normal(keys, _noise.LATENT, 0, max(score_model.latent_dim, 1), dtype)
        latent = latent[:, : score_model.latent_dim]
        latent, latent_source, analogue = _draw_latent(
            score_model, sampler, latent, num_atoms, keys, jobs, atom_types, batch, conds
        )
    shapes = None if analogue is None else score_model.latent_prior.analogue_cells(analogue).to(device, dtype)
    proposal = _propose(score_model, jobs, atom_types, batch, num_atoms, conds, latent, device, dtype, shapes)
    proposal, cell_sources = _size_cells(
        score_model, sampler, proposal, jobs, atom_types, batch, num_atoms, conds
    )
    keep = torch.tensor([r == "" for r in proposal.reasons], device=device)
    frac = torch.zeros((atom_types.shape[0], 3), device=device, dtype=dtype)
    calls = 0
    if bool(keep.any()):
        atom_keep = keep[batch]
        frac[atom_keep], calls = _integrate(
            on_step,
            score_model, sampler, atom_types[atom_keep], num_atoms[keep], proposal.lattice[keep].to(dtype),
            proposal.cond[keep], atom_keys[atom_keep],
        )  # fmt: skip
    elif on_step is not None:  # no usable cell: the block is done
        on_step(1, 1)
    reassigned = torch.zeros(c, dtype=torch.bool, device=device)
    if sampler.reassign_species and bool(keep.any()):
        atom_keep, cells = keep[batch], proposal.lattice[keep].to(dtype)
        atom_types[atom_keep], reassigned[keep] = reassign_species(
            score_model, atom_types[atom_keep], num_atoms[keep], frac[atom_keep], cells, proposal.cond[keep],
            keys[keep], levels=list(range(0, len(score_model.sigmas), LEVEL_STRIDE)), draws=DRAWS,
            max_assignments=MAX_ASSIGNMENTS,
        )  # fmt: skip
    types_np = atom_types.cpu().numpy()
    out, offset = [], 0
    lattice_np = proposal.lattice.double().cpu().numpy()
    frac_np = frac.double().cpu().numpy()
    for i, (req, r, k) in enumerate(jobs):
        n = len(atom_lists[i])
        crystal = None
        if proposal.reasons[i] == "":
            crystal = Crystal(
                atom_types=types_np[offset : offset + n].astype(np.int64),
                frac_coords=frac_np[offset : offset + n],
                lattice=lattice_np[i],
                properties=dict(req.conditions),
                id=f"{r}-{k}",
            )
        calls_i = calls if crystal is not None else 0
        extra = {"decoder_calls": calls_i, "cell": cell_sources[i], "latent": latent_source}
        if analogue is not None:  # the training crystal (component of the latent prior) it started from
            extra["analogue"] = int(analogue[i])
        if sampler.reassign_species:
            extra["species"] = "reassigned" if bool(reassigned[i]) else "as sampled"
        out.append(
            SampledStructure(r, k, req.formula, dict(req.conditions), crystal, proposal.reasons[i], extra)
        )
        offset += n
    return out


def _propose(
    score_model, jobs, atom_types, batch, num_atoms, conds, latent, device, dtype, shapes=None
) -> Proposal:
    """The proposal of a block; rows that give a lattice keep it (a block may mix both kinds). With
    ``shapes (C, 3, 3)`` (analogue cells) the other rows take that shape at the lattice head's volume."""
    given = [req.lattice for req, _, _ in jobs]
    kw = {
        "atom_types": atom_types,
        "batch": batch,
        "num_atoms": num_atoms,
        "conditions": conds,
        "latent": latent,
    }
    has = [g is not None for g in given]
    if not any(has) and shapes is None:
        return score_model.propose(**kw, lattice=None)
    predicted = None if all(has) else score_model.propose(**kw, lattice=None)
    if predicted is not None and shapes is not None:
        volume = torch.linalg.det(predicted.lattice.double()).abs()  # (C,)
        factor = (volume / torch.linalg.det(shapes.double()).abs()) ** (1.0 / 3.0)
        predicted = Proposal(predicted.cond, shapes * factor[:, None, None].to(shapes), predicted.reasons)
    cells = torch.stack(
        [
            torch.tensor(g, device=device, dtype=dtype) if g is not None else predicted.lattice[i].to(dtype)
            for i, g in enumerate(given)
        ]
    )  # (C, 3, 3)
    fixed = score_model.propose(**kw, lattice=cells)
    if predicted is None:
        return fixed
    # predicted rows keep the lattice head's verdict; analogue rows also need their own cell's
    reasons = tuple(
        f if h else (p or (f if shapes is not None else ""))
        for f, p, h in zip(fixed.reasons, predicted.reasons, has, strict=True)
    )
    return Proposal(cond=fixed.cond, lattice=cells, reasons=reasons)


def _draw_latent(
    score_model, sampler, eps: Tensor, num_atoms: Tensor, keys: Tensor, jobs, atom_types, batch, conds
) -> tuple[Tensor, str, Tensor | None]:
    """Apply ``sampler.latent`` to the standard-normal draws ``eps (C, Z)``. With the model's fitted
    latent prior, ``"fitted"``: each structure's key picks a component of its cell size;
    ``"analogue"``: sample ``k`` takes the ``k``-th nearest component of its size in the model's
    condition space. Returns the latents, their source and the analogue components ``(C,)`` (or None)."""
    prior = getattr(score_model, "latent_prior", None)
    if sampler.latent in ("fitted", "analogue") and prior is None:
        raise ValueError(
            f"SamplerConfig(latent={sampler.latent!r}): this model has no latent prior; fit one on its "
            "training crystals (model.latent_prior = cond_vae.fit_latent_prior(model, crystals)) or use "
            "latent='standard'"
        )
    if sampler.latent == "standard" or prior is None or eps.shape[1] == 0:
        return eps, "standard", None
    if sampler.latent == "analogue" and not prior.has_analogues:
        raise ValueError(
            "SamplerConfig(latent='analogue'): this model's latent prior keeps no training crystals; refit "
            "it with cond_vae.fit_latent_prior (benchmarks/default_model/attach_latent_prior.py)"
        )
    if sampler.latent == "fitted" or (sampler.latent == "auto" and not prior.has_analogues):
        pick = _noise.uniform(keys, _noise.LATENT, 1, 1, torch.float64)[:, 0]  # (C,): counter 0 is eps
        scale = 1.0 if sampler.latent_scale is None else sampler.latent_scale
        return prior.transform(eps, num_atoms, pick, scale=scale), "fitted", None
    model = getattr(score_model, "model", None)
    if model is None or not hasattr(model, "conditions"):
        raise ValueError("SamplerConfig(latent='analogue') needs a Cond-CDVAE model (its condition encoder)")
    missing = sorted(set(conds) - set(prior.conditions))
    if missing:
        raise ValueError(f"SamplerConfig(latent='analogue'): the latent prior lacks the conditions {missing}")
    query = model.conditions(atom_types=atom_types, batch=batch, num_crystals=len(jobs), properties=conds)
    # every block encodes the prior's crystals again: 18-24 ms for the default model's 12,310 (this CPU),
    # small beside a block's decoder calls, so no cache to keep in step with the model
    comp_atoms, comp_batch = prior.analogue_atoms()
    components = model.conditions(
        atom_types=comp_atoms.to(atom_types.device), batch=comp_batch.to(atom_types.device),
        num_crystals=prior.sizes.shape[0],
        properties={n: prior.conditions[n].to(device=atom_types.device, dtype=eps.dtype) for n in conds},
    )  # fmt: skip
    rank = torch.tensor([k for _, _, k in jobs], device=atom_types.device)
    j = prior.nearest(query, components, num_atoms, rank)
    scale = 0.0 if sampler.latent_scale is None else sampler.latent_scale
    return prior.latents(eps, j, scale), "analogue", j


def _size_cells(
    score_model, sampler, proposal, jobs, atom_types, batch, num_atoms, conds
) -> tuple[Proposal, list[str]]:
    """Apply ``sampler.cell_volume``: scale each predicted, usable cell (shape kept) to the volume prior's
    volume. Returns the proposal and where each cell's size came from: ``"given"``, ``"model"`` or
    ``"prior"``."""
    given = [req.lattice is not None for req, _, _ in jobs]
    prior = getattr(score_model, "volume_prior", None)
    if sampler.cell_volume == "prior" and prior is None:
        raise ValueError(
            "SamplerConfig(cell_volume='prior'): this model has no volume prior; fit one on its training "
            "crystals (model.volume_prior = cond_vae.fit_volume_prior(crystals)) or use cell_volume='model'"
        )
    if sampler.cell_volume == "model" or prior is None:
        return proposal, ["given" if g else "model" for g in given]
    # predicted cells the proposal could use are resized; given cells and unusable ones are kept
    sources = [
        "given" if g else ("prior" if r == "" else "model")
        for g, r in zip(given, proposal.reasons, strict=True)
    ]
    if "prior" not in sources:
        return proposal, sources
    rescale = torch.tensor([src == "prior" for src in sources], device=num_atoms.device)  # (C,)
    target = prior.volume(
        atom_types=atom_types, batch=batch, num_atoms=num_atoms, conditions=conds
    )  # (C,) Å^3
    now = torch.linalg.det(proposal.lattice.double()).abs()  # (C,) Å^3
    factor = torch.where(rescale, (target.to(now.device) / now) ** (1.0 / 3.0), torch.ones_like(now))
    lattice = proposal.lattice * factor.to(proposal.lattice.dtype)[:, None, None]
    return Proposal(cond=proposal.cond, lattice=lattice, reasons=proposal.reasons), sources


def _integrate(
    on_step, score_model, sampler, atom_types, num_atoms, lattice, cond, atom_keys
) -> tuple[Tensor, int]:
    """Run the sampler's plan from uniform coordinates; returns ``frac (N, 3)`` and the decoder calls."""
    dtype, device = lattice.dtype, lattice.device
    c = num_atoms.shape[0]
    batch = torch.repeat_interleave(torch.arange(c, device=device), num_atoms)
    frac = _noise.uniform(atom_keys, _noise.START, 0, 3, dtype)  # (N, 3)
    neighbors = NeighborList(
        cutoff=score_model.cutoff, max_neighbors=score_model.max_neighbors, skin=sampler.skin,
        num_atoms=num_atoms, batch=batch,
    )  # fmt: skip
    steps = plan(sampler, score_model.sigmas)
    for t, step in enumerate(steps):
        graph, trips = neighbors.graph(frac, lattice)
        g = score_model.score(
            atom_types=atom_types, batch=batch, frac=frac, lattice=lattice, graph=graph, triplets=trips,
            cond=cond, sigma=step.sigma,
        )  # fmt: skip
        xi = _noise.normal(atom_keys, _noise.NOISE, t, 3, dtype) if step.noisy else None
        move = displacement(step, g, xi, batch, c)  # (N, 3) Å
        unwrapped = cart_to_frac(frac_to_cart(frac, lattice, batch=batch) + move, lattice, batch=batch)
        frac = wrap_frac(unwrapped)
        if sampler.skin is not None:  # Verlet reuse tracks moves and wraps; a fresh graph needs neither
            neighbors.moved(move, torch.round(unwrapped - frac).long())
        if on_step is not None:
            on_step(t + 1, len(steps))
    return frac, len(steps)
