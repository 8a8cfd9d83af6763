"""Local-optimisation benchmark (Table III, Fig. 2, Fig. S4): generated against random structures.

For every composition of a test split and every pressure, the model generates ``num_per_target``
structures; beside each one, a PyXtal structure (random space group) and a uniform P1 structure are
made with the same composition and the generated structure's cell volume (the reference structure's
volume when the model's cell was invalid), as the paper does with CALYPSO. All are relaxed at the
target pressure with one ASE calculator (CHGNet by default) and compared per source and pressure:
convergence rate, mean ionic steps, mean RMSD from initial to relaxed (:func:`xtal_eval.relaxation_rmsd`:
site by site, minimum image, in the initial lattice), the pressure of the unrelaxed cell (Fig. 2a),
the enthalpy against ionic step (Fig. 2b) and the relaxed enthalpy of generated structures relative to
the best random one of the same composition and pressure (Fig. 2c)::

    settings = LocaloptSettings(pressures=(0.0, 100.0), num_per_target=4, seed=0)
    targets = split_compositions("store.zarr", split="random", part="test", limit=20, seed=0)
    result = run_localopt(ModelSampler(model), targets, settings, calculator=load_calculator("chgnet"))
    write_results(result, settings, Path("out"), meta={})   # from xtal_tools.evaluation.localopt_plots

Every structure keeps its row: ``status`` is ``relaxed``, ``relax_failed`` (the calculator raised, gave
non-finite numbers or left atoms closer than 0.5 Å) or ``not_made`` (invalid cell from the model, or
no random structure within the attempts); ``reason`` says why. A structure that is not made or whose
relaxation failed counts as not converged.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xtal_tools.evaluation.localopt_plots import SOURCES, relative_enthalpies, summarise
from xtal_tools.relaxation import RelaxSettings

__all__ = [
    "EMPTY_ROW",
    "LocaloptResult",
    "LocaloptSettings",
    "SOURCES",
    "random_twin",
    "relax_row",
    "run_localopt",
    "split_compositions",
]


@dataclass(frozen=True)
class LocaloptSettings:
    """Pressures in GPa; ``num_per_target`` generated structures (and as many of each random kind)
    per composition and pressure; ``relax`` gives fmax, steps and optimiser (each structure relaxes
    at its target pressure); ``min_distance_scale`` is the random baselines' rule."""

    pressures: tuple[float, ...] = (0.0, 100.0, 200.0, 300.0, 400.0)
    num_per_target: int = 4
    seed: int = 0
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    min_distance_scale: float = 0.5
    min_distance_relaxed: float = 0.5

    def __post_init__(self) -> None:
        if not self.pressures:
            raise ValueError("no pressures given")
        from xtal_tools.generation import check_pressure

        for p in self.pressures:
            check_pressure(p, "pressures")
        if self.num_per_target < 1:
            raise ValueError(f"num_per_target must be >= 1, got {self.num_per_target}")


@dataclass(frozen=True)
class LocaloptResult:
    """``rows``: one dict per structure; ``summary``: per source and pressure; ``curves[(source, P)]``:
    enthalpy per atom above the relaxed one (eV/atom) at each ionic step, one array per structure."""

    rows: list[dict]
    summary: dict
    curves: dict[tuple[str, float], list[np.ndarray]]
    seconds: dict[str, float]


def split_compositions(
    data: str, *, split: str = "random", part: str = "test", limit: int | None = None, seed: int = 0
) -> list[tuple[str, float]]:
    """(cell formula, volume in Å^3) of ``limit`` distinct compositions of a store split part.

    The part's structures are visited in a seeded random order (the paper draws test compositions at
    random); each composition keeps the volume of the first structure visited.

    Raises:
        KeyError: no such split or part.  ValueError: the part is empty.
    """
    from ase.data import chemical_symbols
    from xtal_data import CrystalStore

    store = CrystalStore.open(data)
    parts = store.split(split)
    if part not in parts:
        raise KeyError(f"split {split!r} has no part {part!r}; it has {sorted(parts)}")
    idx = np.asarray(parts[part])
    if idx.size == 0:
        raise ValueError(f"{data}: split {split!r} part {part!r} is empty")
    order = idx[np.random.default_rng(seed).permutation(idx.size)]
    arrays = store.read(order)
    out: dict[str, float] = {}
    offsets = arrays.offsets
    for c in range(len(arrays)):
        counts = Counter(int(z) for z in arrays.atomic_numbers[offsets[c] : offsets[c + 1]])
        formula = "".join(f"{chemical_symbols[z]}{n}" for z, n in counts.items())
        out.setdefault(formula, float(abs(np.linalg.det(arrays.lattice[c]))))
        if limit is not None and len(out) >= limit:
            break
    return list(out.items())


def random_twin(kind: str, formula: str, volume: float, seed: int, scale: float):
    """A random structure of ``formula`` at ``volume`` (Å^3): ``kind`` ``pyxtal`` (random space group) or
    ``uniform`` (P1); ``(structure, "")`` or ``(None, why)`` when none could be made."""
    from xtal_eval.baselines import RandomStructureError, pyxtal_random, uniform_random

    make = pyxtal_random if kind == "pyxtal" else uniform_random
    try:
        return make(formula, volume, seed=seed, min_distance_scale=scale), ""
    except (RandomStructureError, ValueError) as err:
        return None, f"no random structure: {err}"


def relax_row(row: dict, structure, calculator, settings: RelaxSettings, min_distance: float):
    """Relax ``structure`` at ``row["pressure_GPa"]`` and fill ``row`` (status, steps, energies, RMSD, ...);
    returns the enthalpy-per-atom curve relative to the end (None when the relaxation failed)."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from xtal_eval import relaxation_rmsd, structure_valid

    from xtal_tools.relaxation import relax

    t0 = time.perf_counter()
    res = relax(AseAtomsAdaptor.get_atoms(structure), calculator, row["pressure_GPa"], settings)
    n = len(structure)
    final = AseAtomsAdaptor.get_structure(res.atoms) if res.ok else None
    reason = res.reason
    if final is not None and not structure_valid(final, cutoff=min_distance):
        final, reason = None, f"unphysical after relaxation: atoms closer than {min_distance} Å"
    row.update(
        status="relaxed" if final is not None else "relax_failed",
        reason=reason,
        steps=res.steps,
        converged=bool(res.converged and final is not None),
        initial_pressure_GPa=res.initial_pressure,
        seconds=time.perf_counter() - t0,
    )
    if final is None:
        return None
    row.update(
        energy_per_atom_eV=res.energy / n,
        enthalpy_per_atom_eV=res.enthalpy / n,
        final_volume_A3=final.volume,
        rmsd_A=relaxation_rmsd(structure, final, label=row["id"]),
    )
    return (res.enthalpies() - res.enthalpy) / n  # (steps + 1,)


def run_localopt(
    sampler,
    targets: Sequence[tuple[str, float]],
    settings: LocaloptSettings,
    *,
    calculator,
    progress: bool | None = None,
) -> LocaloptResult:
    """Generate, make random twins, relax everything and summarise (see the module docstring).

    ``sampler(formulas, pressures, num=k, seed=s)`` returns ``k`` pymatgen structures (None: invalid
    cell) per row (:class:`xtal_tools.evaluation.samplers.ModelSampler` wraps a model).

    Raises:
        ValueError: no targets, a bad formula or a non-positive volume (named) before any work.
    """
    from tqdm.auto import tqdm
    from xtal_eval.baselines import derive_seed, parse_cell_formula

    if not targets:
        raise ValueError("no target compositions given")
    for formula, volume in targets:
        parse_cell_formula(formula)
        if not (math.isfinite(volume) and volume > 0):
            raise ValueError(f"{formula}: reference volume must be positive, got {volume}")
    rows_in = [(f, v, p) for p in settings.pressures for f, v in targets]  # row k
    k_num = settings.num_per_target
    seconds = Counter()
    t0 = time.perf_counter()
    groups = sampler([f for f, _, _ in rows_in], [p for _, _, p in rows_in], num=k_num, seed=settings.seed)
    seconds["sample"] = time.perf_counter() - t0
    work = []  # (row dict, structure or None)
    for k, ((formula, ref_volume, p), group) in enumerate(zip(rows_in, groups, strict=True)):
        for j, gen in enumerate(group):
            volume = gen.volume if gen is not None else ref_volume
            base = {
                "formula": formula,
                "n_atoms": sum(n for _, n in parse_cell_formula(formula)),
                "pressure_GPa": float(p),
                "sample": j,
                "initial_volume_A3": volume,
                "volume_from": "generated" if gen is not None else "reference",
            }
            work.append(
                ({**base, "source": "generated", "seed": settings.seed}, gen, "invalid cell from the model")
            )
            for i, kind in enumerate(SOURCES[1:]):
                t1 = time.perf_counter()
                s_seed = derive_seed(settings.seed, i, k, j)
                s, why = random_twin(kind, formula, volume, s_seed, settings.min_distance_scale)
                seconds[f"make_{kind}"] += time.perf_counter() - t1
                work.append(({**base, "source": kind, "seed": s_seed}, s, why))
    rows, curves = [], {(s, float(p)): [] for s in SOURCES for p in settings.pressures}
    made = [w for w in work if w[1] is not None]
    t1 = time.perf_counter()
    with tqdm(
        total=len(made), desc="relax", unit="structure", disable=None if progress is None else not progress
    ) as bar:
        for row, structure, why in work:
            row = {"id": f"{row['source']}/{row['formula']}/{row['pressure_GPa']:g}/{row['sample']}", **row}
            row.update(EMPTY_ROW)
            if structure is None:
                row.update(status="not_made", reason=why)
            else:
                curve = relax_row(row, structure, calculator, settings.relax, settings.min_distance_relaxed)
                if curve is not None:
                    curves[(row["source"], row["pressure_GPa"])].append(curve)
                bar.update()
            rows.append(row)
    seconds["relax"] = time.perf_counter() - t1
    relative_enthalpies(rows)
    return LocaloptResult(rows, summarise(rows, settings.pressures), curves, dict(seconds))


EMPTY_ROW = {
    "status": "",
    "reason": "",
    "converged": False,
    "steps": 0,
    "initial_pressure_GPa": math.nan,
    "energy_per_atom_eV": math.nan,
    "enthalpy_per_atom_eV": math.nan,
    "final_volume_A3": math.nan,
    "rmsd_A": math.nan,
    "dH_vs_best_random_eV": math.nan,
    "seconds": 0.0,
}


def run_localopt_benchmark(bench, config, out_dir, *, tables: dict, progress: bool | None = None) -> dict:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.LocaloptConfig` on an opened
    :class:`~xtal_tools.evaluation.configs.Benchmark` (its relaxer's calculator): draws the compositions,
    runs :func:`run_localopt`, writes every output; returns the summary."""
    from cond_vae import parse_formula

    from xtal_tools.evaluation.localopt_plots import write_results
    from xtal_tools.evaluation.samplers import ModelSampler
    from xtal_tools.records import installed_versions, machine_info, package_versions

    targets = split_compositions(
        config.data, split=config.split, part=config.part, limit=config.limit, seed=config.seed
    )
    for formula, _ in targets:
        parse_formula(
            formula, max_atoms=bench.model.config.max_atoms, num_elements=bench.model.config.num_elements
        )
    settings = LocaloptSettings(
        pressures=config.pressures, num_per_target=config.num, seed=config.seed, relax=config.relax.settings()
    )
    sampler = ModelSampler(bench.model, sampler=config.sampler)
    result = run_localopt(sampler, targets, settings, calculator=bench.relaxer.calculator, progress=progress)
    meta = {
        "wall_s": time.perf_counter() - bench.t0,
        "settings": {**tables, "targets": [list(t) for t in targets]},
        "machine": machine_info(bench.device),
        "versions": {**package_versions(), **installed_versions(("pymatgen", "ase", "pyxtal", "chgnet"))},
    }
    return write_results(result, settings, out_dir, meta=meta)
