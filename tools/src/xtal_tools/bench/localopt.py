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
    write_results(result, settings, Path("out"), meta={})   # from xtal_tools.bench.localopt_plots

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from xtal_tools._cli import EXPECTED_ERRORS, fail, recorded, resolve_device
from xtal_tools._options import (
    BatchSizeOption,
    CorrectorStepsOption,
    DataOption,
    DeviceOption,
    FinalDenoiseOption,
    LevelsOption,
    OutOption,
    SamplerConfigOption,
    SamplerMethodOption,
    SeedOption,
    SkinOption,
    SnrOption,
    StepLrOption,
    StepsPerLevelOption,
)
from xtal_tools.bench.localopt_plots import SOURCES, relative_enthalpies, summarise
from xtal_tools.relax import RelaxSettings

__all__ = [
    "LocaloptResult",
    "LocaloptSettings",
    "SOURCES",
    "localopt_command",
    "run_localopt",
    "split_compositions",
]


@dataclass(frozen=True)
class LocaloptSettings:
    """Pressures in GPa; ``num_per_target`` generated structures (and as many of each random kind)
    per composition and pressure; ``relax`` gives fmax, steps and optimiser (its pressure is replaced
    by each target pressure); ``min_distance_scale`` is the random baselines' rule."""

    pressures: tuple[float, ...] = (0.0, 100.0, 200.0, 300.0, 400.0)
    num_per_target: int = 4
    seed: int = 0
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    min_distance_scale: float = 0.5
    min_distance_relaxed: float = 0.5

    def __post_init__(self) -> None:
        if not self.pressures:
            raise ValueError("no pressures given")
        for p in self.pressures:
            RelaxSettings(pressure=p)  # finite and >= 0, else ValueError naming it
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


def _make_random(kind: str, formula: str, volume: float, seed: int, scale: float):
    from xtal_eval.baselines import RandomStructureError, pyxtal_random, uniform_random

    make = pyxtal_random if kind == "pyxtal" else uniform_random
    try:
        return make(formula, volume, seed=seed, min_distance_scale=scale), ""
    except (RandomStructureError, ValueError) as err:
        return None, f"no random structure: {err}"


def _relax_row(row: dict, structure, calculator, settings: RelaxSettings, min_distance: float):
    """Relax ``structure`` and fill ``row``; returns the enthalpy-per-atom curve relative to the end."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from xtal_eval import relaxation_rmsd, structure_valid

    from xtal_tools.relax import relax_structure

    t0 = time.perf_counter()
    res = relax_structure(AseAtomsAdaptor.get_atoms(structure), calculator, settings)
    n = len(structure)
    final = AseAtomsAdaptor.get_structure(res.atoms) if res.ok else None
    reason = res.reason
    if final is not None and not structure_valid(final, cutoff=min_distance):
        final, reason = None, f"unphysical after relaxation: atoms closer than {min_distance} Å"
    row.update(
        status="relaxed" if final is not None else "relax_failed", reason=reason, steps=res.steps,
        converged=bool(res.converged and final is not None), initial_pressure_GPa=res.initial_pressure,
        seconds=time.perf_counter() - t0,
    )  # fmt: skip
    if final is None:
        return None
    row.update(
        energy_per_atom_eV=res.energy / n, enthalpy_per_atom_eV=res.enthalpy / n,
        final_volume_A3=final.volume, rmsd_A=relaxation_rmsd(structure, final, label=row["id"]),
    )  # fmt: skip
    return (res.enthalpies(settings.pressure) - res.enthalpy) / n  # (steps + 1,)


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
    cell) per row (:class:`xtal_tools.bench._common.ModelSampler` wraps a model).

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
            base = {"formula": formula, "n_atoms": sum(n for _, n in parse_cell_formula(formula)),
                    "pressure_GPa": float(p), "sample": j, "initial_volume_A3": volume,
                    "volume_from": "generated" if gen is not None else "reference"}  # fmt: skip
            work.append(
                ({**base, "source": "generated", "seed": settings.seed}, gen, "invalid cell from the model")
            )
            for i, kind in enumerate(SOURCES[1:]):
                t1 = time.perf_counter()
                s_seed = derive_seed(settings.seed, i, k, j)
                s, why = _make_random(kind, formula, volume, s_seed, settings.min_distance_scale)
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
            row.update(_EMPTY)
            if structure is None:
                row.update(status="not_made", reason=why)
            else:
                relax = replace(settings.relax, pressure=row["pressure_GPa"])
                curve = _relax_row(row, structure, calculator, relax, settings.min_distance_relaxed)
                if curve is not None:
                    curves[(row["source"], row["pressure_GPa"])].append(curve)
                bar.update()
            rows.append(row)
    seconds["relax"] = time.perf_counter() - t1
    relative_enthalpies(rows)
    return LocaloptResult(rows, summarise(rows, settings.pressures), curves, dict(seconds))


_EMPTY = {
    "status": "", "reason": "", "converged": False, "steps": 0, "initial_pressure_GPa": math.nan,
    "energy_per_atom_eV": math.nan, "enthalpy_per_atom_eV": math.nan, "final_volume_A3": math.nan,
    "rmsd_A": math.nan, "dH_vs_best_random_eV": math.nan, "seconds": 0.0,
}  # fmt: skip


# ------------------------------------------------------------------ command line
_R, _T = "Relaxation", "Targets"


def localopt_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-k", help="Checkpoint directory.")],
    out: OutOption,
    data: DataOption = None,
    split: Annotated[
        str, typer.Option(help="Split stored in the data store.", rich_help_panel=_T)
    ] = "random",
    part: Annotated[str, typer.Option(help="Part of the split.", rich_help_panel=_T)] = "test",
    limit: Annotated[
        int | None,
        typer.Option(help="Distinct compositions, drawn at random (seeded).", min=1, rich_help_panel=_T),
    ] = 20,
    pressures: Annotated[
        str, typer.Option(help="Comma-separated target pressures (GPa).")
    ] = "0,100,200,300,400",
    num: Annotated[
        int, typer.Option("--num", "-n", help="Generated structures per composition and pressure.", min=1)
    ] = 4,
    calculator: Annotated[
        str, typer.Option(help="ASE calculator: chgnet, emt or module:factory.", rich_help_panel=_R)
    ] = "chgnet",
    calculator_args: Annotated[
        str | None,
        typer.Option(help="JSON object of keyword arguments for the calculator.", rich_help_panel=_R),
    ] = None,
    fmax: Annotated[float, typer.Option(help="Force criterion (eV/Å).", rich_help_panel=_R)] = 0.05,
    max_steps: Annotated[
        int, typer.Option(help="Optimizer steps at most (paper: 150).", min=0, rich_help_panel=_R)
    ] = 150,
    optimizer: Annotated[str, typer.Option(help="fire or bfgs.", rich_help_panel=_R)] = "fire",
    cell_filter: Annotated[str, typer.Option(help="frechet, exp or none.", rich_help_panel=_R)] = "frechet",
    sampler_method: SamplerMethodOption = None,
    levels: LevelsOption = None,
    steps_per_level: StepsPerLevelOption = None,
    step_lr: StepLrOption = None,
    corrector_steps: CorrectorStepsOption = None,
    snr: SnrOption = None,
    final_denoise: FinalDenoiseOption = None,
    skin: SkinOption = None,
    batch_size: BatchSizeOption = None,
    sampler_config: SamplerConfigOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Allow a non-empty output directory.")] = False,
) -> None:
    """Table III, Fig. 2: relax generated structures and random ones of the same composition and volume
    (PyXtal with a random space group; uniform P1) at each pressure; convergence rate, ionic steps, RMSD,
    initial pressure, enthalpy curves and relaxed enthalpies relative to the random ones."""
    from xtal_tools._cli import quiet_known_warnings
    from xtal_tools._run_record import RunRecord, installed_versions, package_versions
    from xtal_tools.bench._common import ModelSampler, machine_info

    t0 = time.perf_counter()
    quiet_known_warnings()
    try:
        model, dev, targets, calc, settings, config, sampler_cfg = _prepare(dict(locals()))
    except EXPECTED_ERRORS as err:
        fail(err)
    record = RunRecord.start(out, command="benchmark localopt", config=config, seed=settings.seed)
    with recorded(record):
        sampler = ModelSampler(model, sampler=sampler_cfg)
        result = run_localopt(sampler, targets, settings, calculator=calc, progress=progress)
        from xtal_tools.bench.localopt_plots import write_results

        meta = {"wall_s": time.perf_counter() - t0, "settings": config, "machine": machine_info(dev),
                "versions": {**package_versions(),
                             **installed_versions(("pymatgen", "ase", "pyxtal", "chgnet"))}}  # fmt: skip
        summary = write_results(result, settings, out, meta=meta)
    record.finish({k: summary[k] for k in ("wall_s", "n_structures", "n_relaxed", "structures_per_s")})
    for source, per_p in summary["results"].items():
        cells = "  ".join(f"{p} GPa: {s['n_converged']}/{s['n']}" for p, s in per_p.items())
        typer.echo(f"{source:<10} converged {cells}")
    typer.echo(f"{summary['n_structures']} structures in {summary['wall_s']:.1f} s -> {out}")


def _prepare(opts: dict):
    """Check every input, load model, targets and calculator before anything is written."""
    import json

    from cond_vae import parse_formula
    from cond_vae.checkpoint import load_checkpoint
    from xtal_eval.baselines import require_pyxtal

    from xtal_tools._cli import pressure_notes
    from xtal_tools._options import resolve_sampler, sampler_record
    from xtal_tools.relax import load_calculator
    from xtal_tools.sample import _prepare_out
    from xtal_tools.sampling import check_pressure

    if opts["data"] is None:
        raise ValueError("--data STORE is required")
    require_pyxtal()  # before any sampling
    sampler = resolve_sampler(opts, config_file=opts["sampler_config"])
    pressures = tuple(check_pressure(p, "--pressures") for p in opts["pressures"].split(",") if p.strip())
    relax = RelaxSettings(fmax=opts["fmax"], max_steps=opts["max_steps"], optimizer=opts["optimizer"],
                          cell_filter=opts["cell_filter"])  # fmt: skip
    seed = 0 if opts["seed"] is None else opts["seed"]
    settings = LocaloptSettings(pressures=pressures, num_per_target=opts["num"], seed=seed, relax=relax)
    try:
        kwargs = json.loads(opts["calculator_args"]) if opts["calculator_args"] else {}
    except json.JSONDecodeError as err:
        raise ValueError(f"--calculator-args: not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--calculator-args: expected a JSON object, got {type(kwargs).__name__}")
    if not opts["checkpoint"].is_dir():
        raise FileNotFoundError(f"checkpoint {opts['checkpoint']} is not a directory")
    dev = resolve_device(opts["device"].value if opts["device"] is not None else None)
    model = load_checkpoint(opts["checkpoint"], map_location=dev)
    targets = split_compositions(
        opts["data"], split=opts["split"], part=opts["part"], limit=opts["limit"], seed=seed
    )
    for formula, _ in targets:
        parse_formula(formula, max_atoms=model.config.max_atoms, num_elements=model.config.num_elements)
    if opts["calculator"].strip().lower() == "chgnet":
        kwargs.setdefault("device", dev)
    calc = load_calculator(opts["calculator"], **kwargs)
    _prepare_out(opts["out"], opts["overwrite"])
    notes = pressure_notes(model, list(pressures))  # the sampler extrapolates; relaxation still applies P
    for note in notes:
        typer.echo(f"warning: {note}", err=True)
    config = {
        "checkpoint": str(opts["checkpoint"]), "data": opts["data"], "split": opts["split"],
        "part": opts["part"], "limit": opts["limit"], "targets": [list(t) for t in targets],
        "pressures_GPa": list(pressures),
        "num_per_target": settings.num_per_target, "seed": seed, "device": dev,
        **sampler_record(sampler, model),
        "relax": {"calculator": opts["calculator"], "calculator_args": json.dumps(kwargs, default=str),
                  **{k: v for k, v in relax.__dict__.items() if k != "pressure"}},
        "random": {"min_distance_scale": settings.min_distance_scale, "volume": "generated structure's"},
        "warnings": notes,
    }  # fmt: skip
    return model, dev, targets, calc, settings, config, sampler
