"""Crystal structure prediction: sample, relax at a pressure, de-duplicate, rank by enthalpy.

One call runs the whole job at one pressure and writes its result (:func:`predict`, what ``tools/csp``
runs for each pressure of a :class:`PredictConfig`); step by step, each step is a function here, so a
notebook can run them one at a time::

    formulas = cell_formulas("SiO2", (2, 3, 4), max_atoms=20)    # ['Si2O4', 'Si3O6', 'Si4O8']
    samples = sample_structures(model, formulas, pressure=50.0, num=60, seed=0, sampler=SamplerConfig())
    cands = relax_samples(samples, calc, RelaxSettings())  # calc=None: no relaxation
    cands = rank_candidates(cands, preset="paper", symprec=0.1)

Every sample stays in the list: ``status`` is ``ranked`` (unique, ranked by enthalpy per atom),
``duplicate`` (matches a ranked structure of lower enthalpy; ``duplicate_of`` is that rank),
``relax_failed`` (the calculator raised or returned non-finite numbers; ``reason`` says what) or
``invalid_cell`` (the sampler's predicted cell was rejected; ``reason`` is the sampler's).
Units: eV per atom, Å^3 per atom, g/cm^3, Å, GPa.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from cond_vae.sampling import SamplerConfig

from xtal_tools.config import DECISION_PRESET
from xtal_tools.generation import BAR, SampleRow, check_pressure, make_row_requests
from xtal_tools.relaxation import RelaxConfig, RelaxSettings, relax

__all__ = [
    "Candidate",
    "PredictConfig",
    "PredictionRun",
    "predict",
    "prepare_prediction",
    "cell_formulas",
    "parse_formula_units",
    "rank_candidates",
    "relax_samples",
    "sample_structures",
    "spacegroup",
    "status_counts",
]

STATUSES = ("ranked", "duplicate", "relax_failed", "invalid_cell")


@dataclass(frozen=True)
class PredictConfig:
    """What ``tools/csp`` does: the ``[csp]`` table, ``[sampler]`` and ``[relax]``.

    ``formula``: the cell formula (``Si4O8``), or one formula unit with ``formula_units`` (e.g.
    ``(2, 3, 4)``; samples are dealt round-robin over the cells). ``pressures`` in GPa: one job each.
    ``num`` samples in total per pressure, ``seed``; ``preset``: the matcher preset that decides
    duplicates; ``symprec``: the symmetry tolerance (Å) of the reported space groups. The model:
    ``checkpoint`` ("" for the shipped default model) on ``device``.
    """

    checkpoint: str = ""
    formula: str = ""
    formula_units: tuple[int, ...] = ()
    pressures: tuple[float, ...] = ()
    num: int = 20
    seed: int = 0
    device: str = "auto"
    preset: str = DECISION_PRESET
    symprec: float = 0.1
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    relax: RelaxConfig = field(default_factory=RelaxConfig)

    def __post_init__(self) -> None:
        from xtal_eval import PRESETS

        if self.num < 1:
            raise ValueError(f"num must be >= 1, got {self.num}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r}: choose from {', '.join(PRESETS)}")
        if not self.symprec > 0:
            raise ValueError(f"symprec must be > 0 Å, got {self.symprec}")

    def check(self) -> None:
        """What a runnable request needs beyond valid fields: a formula and at least one pressure, each
        finite and >= 0 GPa (the one range check of a request's pressures, from flags or a TOML file)."""
        if not self.formula.strip():
            raise ValueError("--formula: empty formula")
        if not self.pressures:
            raise ValueError("--pressure: give at least one pressure in GPa")
        for p in self.pressures:
            check_pressure(p, "--pressure")
        if len(set(self.pressures)) != len(self.pressures):
            raise ValueError(f"--pressure {list(self.pressures)}: a pressure is repeated")


def predict(
    model,
    formulas: Sequence[str],
    calculator,
    config: PredictConfig,
    pressure: float,
    out_dir: str | Path,
    *,
    meta: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> tuple[dict[str, Any], list[Candidate]]:
    """The whole job at one ``pressure`` (GPa): sample ``config.num`` structures of ``formulas``, relax
    each with ``calculator`` (None: no relaxation), de-duplicate, rank, and write the result into
    ``out_dir`` (:func:`xtal_tools.prediction.report.write_results`; ``meta`` heads its JSON).

    Returns ``(summary, ranked)``: counts by status and of ranked-but-unconverged relaxations, and the
    ranked candidates, lowest enthalpy first.
    """
    from xtal_tools.prediction.report import write_results

    samples = sample_structures(
        model,
        formulas,
        pressure=pressure,
        num=config.num,
        seed=config.seed,
        sampler=config.sampler,
        progress=progress,
    )
    cands = relax_samples(samples, calculator, config.relax.settings(), progress=progress)
    cands = rank_candidates(cands, preset=config.preset, symprec=config.symprec, progress=progress)
    ranked = [c for c in cands if c.status == "ranked"]
    title = f"{config.formula} at {pressure:g} GPa: {len(ranked)} unique of {len(cands)} samples"
    meta = {**(meta or {}), "pressure_GPa": pressure}
    write_results(cands, out_dir, meta=meta, title=title, symprec=config.symprec)
    summary = {"counts": status_counts(cands), "unconverged": sum(c.converged is False for c in ranked)}
    return summary, ranked


@dataclass(frozen=True)
class Candidate:
    """One sampled structure through the job (per-atom quantities; NaN where not known).

    ``initial``/``final``: pymatgen ``Structure`` before/after relaxation (``None`` for an invalid
    cell; ``final`` is ``initial`` when relaxation is skipped). ``rmsd``: relaxation RMSD in Å
    (:func:`xtal_eval.relaxation_rmsd`). ``rank``: 1 is the lowest enthalpy; 0 when not ranked.
    """

    id: str
    formula: str
    status: str
    reason: str = ""
    initial: Any = None
    final: Any = None
    energy_per_atom: float = math.nan
    enthalpy_per_atom: float = math.nan
    rmsd: float = math.nan
    converged: bool | None = None
    steps: int = 0
    spacegroup: str = ""
    spacegroup_number: int = 0
    rank: int = 0
    duplicate_of: int = 0

    @property
    def num_atoms(self) -> int:
        return len(self.final) if self.final is not None else 0

    @property
    def volume_per_atom(self) -> float:
        return self.final.volume / len(self.final) if self.final is not None else math.nan

    @property
    def density(self) -> float:
        return float(self.final.density) if self.final is not None else math.nan


def parse_formula_units(text: str) -> tuple[int, ...]:
    """``"4"`` -> (4,); ``"2-4"`` -> (2, 3, 4); ``"1,2,4"`` -> (1, 2, 4). ValueError on anything else."""
    units: set[int] = set()
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(
                f"formula units {text!r}: expected N, A-B or a comma list such as 1,2,4"
            ) from None
        if a < 1 or b < a:
            raise ValueError(f"formula units {text!r}: need 1 <= A <= B, got {part.strip()!r}")
        units.update(range(a, b + 1))
    return tuple(sorted(units))


def cell_formulas(
    formula: str, formula_units: Sequence[int] | None, *, max_atoms: int, num_elements: int = 100
) -> list[str]:
    """Cell formulas to sample: ``formula`` itself, or ``formula`` (one formula unit) times each unit count.

    Raises:
        ValueError: empty or malformed formula, unknown element, or a cell with more than
            ``max_atoms`` atoms (the message names the formula).
    """
    from cond_vae import parse_formula
    from pymatgen.core import Element

    if formula_units is None:
        return [parse_formula(formula, max_atoms=max_atoms, num_elements=num_elements).formula]
    unit = parse_formula(formula, max_atoms=10**9, num_elements=num_elements)
    counts = Counter(unit.atom_types)  # first-appearance order
    out = []
    for n in formula_units:
        cell = "".join(f"{Element.from_Z(z).symbol}{c * n}" for z, c in counts.items())
        out.append(parse_formula(cell, max_atoms=max_atoms, num_elements=num_elements).formula)
    return out


def sample_structures(
    model,
    formulas: Sequence[str],
    *,
    pressure: float,
    num: int,
    seed: int,
    sampler=None,
    progress: bool | None = None,
) -> list:
    """``num`` samples (:class:`cond_vae.SampledStructure`) dealt round-robin over ``formulas``.

    How samples map to the engine's keys: the cell formulas are the request rows (row ``r`` is
    ``formulas[r]`` at ``pressure``), and sample ``k`` of the job (``k = 0..num-1``) is sample index
    ``k // F`` of row ``k % F`` (``F = len(formulas)``). So with one formula the job is exactly
    ``tools/sample --formula F --pressure P --num N --seed S`` (one row, ``num_per_row = N``), and with
    several they are the first ``N`` (in round-robin order) of ``tools/sample --rows`` over the cell
    formulas with ``--num ceil(N / F)``; exactly ``N`` are drawn (the engine's ``jobs``). Returned in
    job order ``k``; ``sampler``: a :class:`cond_vae.SamplerConfig` (default ``SamplerConfig()``).
    """
    import torch
    from cond_vae import SamplerConfig
    from cond_vae.sampling import sample_requests
    from tqdm.auto import tqdm

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    sampler = SamplerConfig() if sampler is None else sampler
    formulas = list(formulas)
    requests = make_row_requests([SampleRow(f, pressure) for f in formulas], model)
    f = len(formulas)
    jobs = [(k % f, k // f) for k in range(num)]  # sample k of the job: index k // F of row k % F
    with (
        torch.inference_mode(),
        tqdm(total=num, desc="sample", unit="structure", disable=_disable(progress), bar_format=BAR) as bar,
    ):
        samples = sample_requests(
            model, requests, num_per_row=1, seed=seed, sampler=sampler, progress=bar.update, jobs=jobs
        )
    return samples


def relax_samples(
    samples: Sequence,
    calculator,
    settings: RelaxSettings,
    *,
    min_distance: float = 0.5,
    progress: bool | None = None,
) -> list[Candidate]:
    """A :class:`Candidate` per sample: relaxed with ``calculator`` (None: left as sampled) at the
    pressure it was sampled at (``conditions["pressure"]``; 0 GPa for a model without that condition).

    A relaxation that ends with two atoms closer than ``min_distance`` (Å) counts as failed.
    """
    from pymatgen.io.ase import AseAtomsAdaptor
    from tqdm.auto import tqdm
    from xtal_eval import relaxation_rmsd, structure_valid

    width = len(str(max(len(samples) - 1, 1)))
    out, failed, unconverged = [], 0, 0  # candidate k is the k-th sample of the job: id s<k>
    valid = sum(s.valid for s in samples)
    bar = tqdm(
        total=valid,
        desc="relax",
        unit="structure",
        disable=True if calculator is None else _disable(progress),
    )
    with bar:
        for k, s in enumerate(samples):
            cid = f"s{k:0{width}d}"
            if not s.valid:
                out.append(Candidate(cid, s.formula, "invalid_cell", reason=s.reason))
                continue
            initial = s.to_pymatgen()
            if calculator is None:
                out.append(Candidate(cid, s.formula, "ranked", initial=initial, final=initial))
                continue
            atoms = AseAtomsAdaptor.get_atoms(initial)
            atoms.info["csp_id"] = cid
            res = relax(atoms, calculator, s.conditions.get("pressure", 0.0), settings)
            common = {"initial": initial, "steps": res.steps, "converged": res.converged}
            final = AseAtomsAdaptor.get_structure(res.atoms) if res.ok else None
            reason = res.reason
            if final is not None and not structure_valid(final, cutoff=min_distance):
                reason = f"unphysical after relaxation: atoms closer than {min_distance} Å"
            if reason:
                out.append(Candidate(cid, s.formula, "relax_failed", reason=reason, **common))
            else:
                n = len(final)
                out.append(
                    Candidate(
                        cid,
                        s.formula,
                        "ranked",
                        final=final,
                        energy_per_atom=res.energy / n,
                        enthalpy_per_atom=res.enthalpy / n,
                        rmsd=relaxation_rmsd(initial, final, label=cid),
                        **common,
                    )
                )
            failed += bool(reason)
            unconverged += res.ok and not res.converged
            bar.set_postfix(failed=failed, unconverged=unconverged, refresh=False)
            bar.update()
    return out


ANGLE_TOLERANCE = 5.0  # degrees: pymatgen's SpacegroupAnalyzer default, so both tools agree


def spacegroup(structure, symprec: float = 0.1) -> tuple[str, int]:
    """(Hermann-Mauguin symbol, number) as pymatgen's ``SpacegroupAnalyzer(structure, symprec)`` gives
    them (spglib with a 5-degree angle tolerance); ("P1", 1) when no symmetry dataset is found."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import spglib

        cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
        data = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE)
    return ("P1", 1) if data is None else (str(data.international), int(data.number))


def rank_candidates(
    candidates: Sequence[Candidate],
    *,
    preset: str = DECISION_PRESET,
    symprec: float = 0.1,
    dedupe: bool = True,
    progress: bool | None = False,
) -> list[Candidate]:
    """De-duplicate the relaxed candidates and rank them by enthalpy per atom (then by id).

    Structures are grouped with :func:`xtal_eval.unique_groups` after sorting by enthalpy, so each
    group's reference is its lowest-enthalpy member; that member is ranked, the rest become
    ``duplicate`` with ``duplicate_of`` its rank. Candidates without enthalpy (no relaxation) keep
    sample order. Returns every candidate: ranked ones first by rank, then the others in input order.
    ``progress``: a bar over the symmetry analysis (None: when stderr is a terminal).
    """
    from xtal_eval import unique_groups

    live = [c for c in candidates if c.status == "ranked"]
    live.sort(key=lambda c: (c.enthalpy_per_atom if math.isfinite(c.enthalpy_per_atom) else math.inf, c.id))
    from tqdm.auto import tqdm

    for k, c in enumerate(tqdm(live, desc="rank", unit="structure", disable=_disable(progress))):
        symbol, number = spacegroup(c.final, symprec)
        live[k] = replace(c, spacegroup=symbol, spacegroup_number=number)
    groups = (
        unique_groups([c.final for c in live], preset=preset)
        if dedupe and live
        else [[i] for i in range(len(live))]
    )
    groups.sort(key=lambda g: g[0])  # lowest enthalpy first: rank order
    rank_of = {}
    for rank, group in enumerate(groups, start=1):
        for i in group:
            rank_of[i] = (rank, i == group[0])
    ranked = [replace(live[g[0]], rank=rank_of[g[0]][0]) for g in groups]
    dups = {
        live[i].id: replace(live[i], status="duplicate", duplicate_of=r)
        for i, (r, first) in rank_of.items()
        if not first
    }
    rest = [dups.get(c.id, c) for c in candidates if c.status != "ranked" or c.id in dups]
    return ranked + rest


def _disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None (auto) hides the bar when stderr is not a terminal."""
    return None if progress is None else not progress


def status_counts(candidates: Sequence[Candidate]) -> dict[str, int]:
    """Number of candidates per status, in :data:`STATUSES` order (zeros included)."""
    counts = Counter(c.status for c in candidates)
    return {s: int(counts.get(s, 0)) for s in STATUSES}


def finite_or_none(x: float) -> float | None:
    """``x`` as a float, or None when it is NaN/inf (for JSON and TOML)."""
    return float(x) if x is not None and np.isfinite(x) else None


@dataclass
class PredictionRun:
    """A checked, ready-to-run ``tools/csp`` request (:func:`prepare_prediction`): the opened model
    (:class:`xtal_tools.checkpoints.OpenModel`), the cell formulas and the calculator (None: no
    relaxation). :meth:`run` does one pressure."""

    config: PredictConfig
    opened: Any
    formulas: list[str]
    calculator: Any

    def job(self, pressure: float) -> PredictConfig:
        """The settings of the job at one ``pressure`` (what its ``run.toml`` records)."""
        return replace(self.config, pressures=(pressure,))

    def warnings(self, pressure: float) -> list[str]:
        """Notes on ``pressure`` (outside the trained range: the model extrapolates)."""
        from xtal_tools.checkpoints import condition_warnings

        return condition_warnings(self.opened.model, [pressure])

    def derived(self, pressure: float) -> dict[str, Any]:
        """What the run record of the job at ``pressure`` says beyond its settings."""
        from xtal_tools.records import installed_versions

        return {
            "checkpoint": str(self.opened.path), "device": self.opened.device, "cell_formulas": self.formulas,
            "decoder_calls_per_structure": self.config.sampler.decoder_calls(len(self.opened.model.sigmas)),
            "warnings": self.warnings(pressure),
            "dependency_versions": installed_versions(("ase", "pymatgen", "spglib", "chgnet")),
        }  # fmt: skip

    def run(self, pressure: float, out_dir: str | Path, *, progress: bool | None = None):
        """:func:`predict` at ``pressure`` into ``out_dir``: ``(summary, ranked)``."""
        from xtal_tools.config import to_tables

        job = self.job(pressure)
        meta = {
            **to_tables(job, table="csp"),
            "cell_formulas": self.formulas,
            "warnings": self.warnings(pressure),
        }
        return predict(self.opened.model, self.formulas, self.calculator, job, pressure, out_dir, meta=meta,
                       progress=progress)  # fmt: skip


def prepare_prediction(config: PredictConfig) -> PredictionRun:
    """Check the request against the model and load model and calculator, before anything is written.

    ``config.relax.enabled`` None becomes True (``tools/csp`` relaxes unless told not to).

    Raises:
        ValueError, FileNotFoundError, ImportError: a bad formula, pressure, checkpoint or calculator.
    """
    from xtal_tools.checkpoints import open_model

    config.check()
    opened = open_model(config.checkpoint, device=config.device)
    cfg = opened.model.config
    formulas = cell_formulas(config.formula, config.formula_units or None, max_atoms=cfg.max_atoms,
                             num_elements=cfg.num_elements)  # fmt: skip
    relax = replace(config.relax, enabled=config.relax.on(default=True))
    calculator = relax.load(opened.device) if relax.enabled else None
    return PredictionRun(replace(config, relax=relax), opened, formulas, calculator)
