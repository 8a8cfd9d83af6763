"""Does the model follow the pressure it is asked for? Four checks, model against random structures.

1. **Volume per atom against the requested pressure** (Å^3/atom vs GPa): the generated (unrelaxed)
   structures of each composition at each requested pressure, beside the trend of a pressure-labelled
   store for the same compositions (:func:`reference_trend`: mean volume per atom per reduced formula and
   pressure, e.g. ``data/pressure/chgnet_mp20_small_6p.zarr``).
2. **How far samples move when relaxed at the requested pressure**: every generated structure and a
   PyXtal random twin of the same composition and cell volume (as in the local-optimisation benchmark,
   :mod:`xtal_tools.evaluation.localopt`, whose relaxation row helper is reused) are relaxed at that pressure
   with one ASE calculator: RMSD (Å, :func:`xtal_eval.relaxation_rmsd`), ionic steps, convergence, the
   pressure of the unrelaxed cell (GPa, ``-trace(stress)/3``) and the relaxed volume per atom.
3. **Known phases at their pressure** (:data:`KNOWN_PHASES`: rock-salt and CsCl-type NaCl, diamond and
   beta-tin Si, alpha-quartz and stishovite SiO2, built with pymatgen from textbook lattice parameters):
   samplings to the first match (``StructureMatcher.fit`` under the ``paper`` preset of xtal_eval) for
   the model and for PyXtal random structures of the phase's composition and volume, with the search
   of :mod:`xtal_tools.evaluation.known_phase` (same batches, seeds, budget).
4. **Which known phase the model makes at each pressure** (``settings.fraction_pressures``): the fraction
   of ``fraction_num`` unrelaxed samples of each phase's cell formula that match each phase
   (:func:`phase_fractions`)::

    settings = PressureResponseSettings(pressures=(0.0, 10.0, 25.0, 50.0), num_per_target=5)
    ref = reference_trend("data/pressure/chgnet_mp20_small_6p.zarr", max_pressure=50.0)
    result = run_pressure_response(ModelSampler(model), ["Mg1O1"], settings, calculator=calc,
                                   reference=ref, phases=KNOWN_PHASES)
    result.summary(); result.rows(); result.plot("pressure_response.png")

Every structure keeps its row (``status``: ``relaxed``, ``relax_failed`` or ``not_made`` with a
``reason``); nothing is dropped silently. With ``journal=PATH`` each finished (composition, pressure)
group and each finished search run is appended to a JSON-lines file, and a rerun with the same settings
skips what the journal already holds (a killed run loses at most one group or one search).

Seeds: group ``(i, k)`` (composition ``i``, pressure ``k``) is sampled as one row with
``derived_seed(seed, 0, i, k)``; random twin ``j`` of that group has ``derived_seed(seed, 1, i, k, j)``;
phase fractions at pressure number ``k`` for formula number ``i`` use ``derived_seed(seed, 2, k, i)``;
known-phase run ``r`` of phase ``t`` has ``derived_seed(seed, t, r)`` for the model and for the random
searcher (:func:`xtal_tools.evaluation.known_phase.search_run`). Results do not depend on the order of
the work.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xtal_tools.evaluation.outputs import finite
from xtal_tools.evaluation.phase_library import KnownPhase, known_phase_targets
from xtal_tools.evaluation.pressure_reference import (
    ReferencePoint,
    reference_trend,
    store_compositions,
    wanted,
)
from xtal_tools.evaluation.samplers import RandomSampler, derived_seed
from xtal_tools.evaluation.targets import BenchTarget
from xtal_tools.generation import check_pressure
from xtal_tools.relaxation import RelaxSettings

__all__ = [
    "PressureResponseResult",
    "PressureResponseSettings",
    "phase_fractions",
    "run_pressure_response",
    "run_pressure_response_benchmark",
]


# ------------------------------------------------------------------ settings and known phases
@dataclass(frozen=True)
class PressureResponseSettings:
    """Settings of :func:`run_pressure_response`.

    ``pressures``: requested pressures (GPa). ``num_per_target``: generated structures (and as many
    PyXtal twins) per composition and pressure. ``relax``: fmax (eV/Å), max steps and optimiser; its
    pressure is replaced by each requested pressure. ``min_distance_scale``: the random baseline's
    minimum-distance rule (times the sum of covalent radii); ``min_distance_relaxed`` (Å): a relaxed
    structure with a closer pair is a failed relaxation. Known phases: ``phase_runs`` independent
    searches of at most ``phase_budget`` samplings, drawn ``phase_batch`` at a time, matched under
    ``preset``; ``relax_phases`` relaxes each sample at the phase's pressure before matching.
    """

    pressures: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
    num_per_target: int = 5
    seed: int = 0
    relax: RelaxSettings = field(default_factory=lambda: RelaxSettings(max_steps=150))
    min_distance_scale: float = 0.5
    min_distance_relaxed: float = 0.5
    phase_runs: int = 3
    phase_budget: int = 50
    phase_batch: int = 10
    preset: str = "paper"
    relax_phases: bool = False
    fraction_pressures: tuple[float, ...] = ()
    fraction_num: int = 100

    def __post_init__(self) -> None:
        if not self.pressures:
            raise ValueError("no pressures given")
        for p in self.pressures:
            check_pressure(p, "pressures")  # finite and >= 0, else ValueError naming it
        for name in ("num_per_target", "phase_runs", "phase_budget", "phase_batch", "fraction_num"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "pressures": list(self.pressures),
            "fraction_pressures": list(self.fraction_pressures),
        }


# ------------------------------------------------------------------ journal (resume after a kill)
class _Journal:
    def __init__(self, path: str | Path | None, settings: PressureResponseSettings):
        self.path, self.done = (Path(path) if path else None), {}
        if self.path is None:
            return
        stamp = json.dumps(settings.as_dict(), sort_keys=True, default=str)
        if self.path.is_file():
            lines = [json.loads(x) for x in self.path.read_text().splitlines() if x.strip()]
            if lines and lines[0].get("settings") != stamp:
                raise ValueError(f"journal {self.path} was written with other settings; use a new path")
            self.done = {tuple(x["key"]): x["value"] for x in lines[1:]}
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"settings": stamp}) + "\n")

    def add(self, key: tuple, value) -> None:
        self.done[key] = value
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"key": list(key), "value": value}, default=_json_default) + "\n")


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON: {type(x)}")


# ------------------------------------------------------------------ the run
def _group_rows(sampler, formula: str, i: int, k: int, p: float, settings, calculator, ref_volume):
    """Sample one (composition, pressure) group, make PyXtal twins, relax all; one row per structure."""
    from xtal_eval.baselines import parse_cell_formula

    from xtal_tools.evaluation.localopt import EMPTY_ROW, random_twin, relax_row

    n_atoms = sum(n for _, n in parse_cell_formula(formula))
    t0 = time.perf_counter()
    (group,) = sampler([formula], [p], num=settings.num_per_target, seed=derived_seed(settings.seed, 0, i, k))
    sample_s = (time.perf_counter() - t0) / settings.num_per_target
    relax = settings.relax
    rows = []
    for j, gen in enumerate(group):
        volume = gen.volume if gen is not None else ref_volume
        twin_seed = derived_seed(settings.seed, 1, i, k, j)
        twin, why = (
            (None, "no reference volume")
            if volume is None
            else random_twin("pyxtal", formula, volume, twin_seed, settings.min_distance_scale)
        )
        for source, s, reason, seed in (
            ("generated", gen, "invalid cell from the model", settings.seed),
            ("pyxtal", twin, why, twin_seed),
        ):
            row = {
                "id": f"{source}/{formula}/{p:g}/{j}",
                "source": source,
                "formula": formula,
                "n_atoms": n_atoms,
                "pressure_GPa": float(p),
                "sample": j,
                "seed": seed,
                "volume_from": "generated" if gen is not None else "reference",
                "initial_volume_per_atom_A3": (s.volume / n_atoms) if s is not None else math.nan,
                **EMPTY_ROW,
                "final_volume_per_atom_A3": math.nan,
            }
            if s is None:
                row.update(status="not_made", reason=reason)
            elif calculator is None:
                row.update(status="not_relaxed")
            else:
                relax_row(row, s, calculator, relax, settings.min_distance_relaxed)
                row["final_volume_per_atom_A3"] = row["final_volume_A3"] / n_atoms
            row.pop("dH_vs_best_random_eV", None)  # a localopt column, not computed here
            if source == "generated":
                row["seconds"] = row["seconds"] + sample_s
            rows.append(row)
    return rows


def run_pressure_response(
    sampler,
    formulas: Sequence[str],
    settings: PressureResponseSettings,
    *,
    calculator=None,
    reference: Sequence[ReferencePoint] = (),
    phases: Sequence[KnownPhase | BenchTarget] = (),
    journal: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> PressureResponseResult:
    """Run the three checks (module docstring) and return a :class:`PressureResponseResult`.

    ``sampler(formulas, pressures, num=k, seed=s)`` returns ``k`` pymatgen structures (None: invalid
    cell) per row (:class:`xtal_tools.evaluation.samplers.ModelSampler` wraps a model). ``formulas``: cell
    formulas (``"Mg2O2"``). ``calculator``: an ASE calculator for the relaxations (None: volumes only,
    rows get status ``not_relaxed``). ``reference``: from :func:`reference_trend`; its volume stands in for
    the twin's volume when the model's cell is invalid. ``phases``: known phases (or any targets) for
    the first-match search; none skips it. ``progress(message)`` is called after each unit of work.

    Raises:
        ValueError: a bad formula (named) before any work; a journal written with other settings.
    """
    from pymatgen.core import Composition
    from xtal_eval.baselines import parse_cell_formula

    from xtal_tools.evaluation.known_phase import KnownPhaseSettings, search_run
    from xtal_tools.evaluation.relaxer import Relaxer

    for f in formulas:
        parse_cell_formula(f)
    log = progress or (lambda _msg: None)
    book = _Journal(journal, settings)
    ref_vol = {(r.formula, r.pressure): r.volume_per_atom for r in reference}
    t0 = time.perf_counter()
    rows: list[dict] = []
    for i, f in enumerate(formulas):
        n_atoms = sum(n for _, n in parse_cell_formula(f))
        red = Composition(f).reduced_formula
        for k, p in enumerate(settings.pressures):
            key = ("group", f, float(p))
            if key not in book.done:
                v = ref_vol.get((red, float(p)))
                group = _group_rows(
                    sampler, f, i, k, float(p), settings, calculator, None if v is None else v * n_atoms
                )
                book.add(key, group)
                log(f"{f} at {p:g} GPa: {len(group)} rows")
            rows.extend(book.done[key])
    seconds = {"volumes_and_relaxation": time.perf_counter() - t0}
    targets = [ph.target() if isinstance(ph, KnownPhase) else ph for ph in phases]
    phase_rows: list[dict] = []
    if targets:
        t1 = time.perf_counter()
        kp = KnownPhaseSettings(
            runs=settings.phase_runs,
            budget=settings.phase_budget,
            batch=settings.phase_batch,
            seed=settings.seed,
            preset=settings.preset,
        )
        searchers = {
            "generated": sampler,
            "pyxtal": RandomSampler(
                {(t.formula, float(t.pressure)): t.structure.volume for t in targets},
                min_distance_scale=settings.min_distance_scale,
            ),
        }
        relaxer = None
        if settings.relax_phases:
            if calculator is None:
                raise ValueError("relax_phases needs a calculator")
            relaxer = Relaxer(calculator, settings.relax, settings.min_distance_relaxed)
        for t_idx, t in enumerate(targets):
            for source, searcher in searchers.items():
                for r in range(settings.phase_runs):
                    key = ("phase", t.id, source, r)
                    if key not in book.done:
                        run = search_run(t, searcher, kp, target_index=t_idx, run=r, relaxer=relaxer)
                        book.add(key, asdict(run))
                        log(f"{t.id} {source} run {r}: first match {run.first_match}")
                    run = book.done[key]
                    phase_rows.append(
                        {
                            "id": t.id,
                            "formula": t.formula,
                            "n_atoms": t.num_atoms,
                            "pressure_GPa": float(t.pressure),
                            "source": source,
                            **run,
                        }
                    )
        seconds["known_phases"] = time.perf_counter() - t1
    fraction_rows: list[dict] = []
    if targets and settings.fraction_pressures:
        t1 = time.perf_counter()
        for k, p in enumerate(settings.fraction_pressures):
            key = ("fraction", float(p))
            if key not in book.done:
                book.add(key, phase_fractions(sampler, targets, float(p), settings, index=k))
                log(f"phase fractions at {p:g} GPa done")
            fraction_rows.extend(book.done[key])
        seconds["phase_fractions"] = time.perf_counter() - t1
    return PressureResponseResult(
        rows,
        [asdict(r) for r in reference if wanted(r, formulas)],
        phase_rows,
        settings,
        seconds,
        fraction_rows,
    )


def phase_fractions(
    sampler,
    targets: Sequence[BenchTarget],
    pressure: float,
    settings: PressureResponseSettings,
    *,
    index: int = 0,
) -> list[dict]:
    """Which of the known phases of a formula does the model make at ``pressure`` (GPa)?

    Each formula of ``targets`` is sampled ``settings.fraction_num`` times at ``pressure`` (one row, seed
    ``derived_seed(settings.seed, 2, index, formula number)``) and every sample is matched (``fit``, the
    settings' preset, unrelaxed) against each target of that formula. One dict per formula and target:
    ``n_samples``, ``n_valid`` (valid cells), ``n_matched`` and ``fraction`` (matched / samples).
    """
    from xtal_eval import match_prepared, prepare, resolve_presets

    (preset,) = resolve_presets(settings.preset)
    matcher = preset.matcher()
    out = []
    for i, formula in enumerate(dict.fromkeys(t.formula for t in targets)):
        (group,) = sampler(
            [formula], [pressure], num=settings.fraction_num, seed=derived_seed(settings.seed, 2, index, i)
        )
        valid = [prepare(x) for x in group if x is not None]
        for t in (t for t in targets if t.formula == formula):
            wanted = prepare(t.structure)
            hits = sum(
                match_prepared(wanted, x, preset, criterion="fit", with_rms=False, matcher=matcher).matched
                for x in valid
            )
            out.append(
                {
                    "formula": formula,
                    "pressure_GPa": float(pressure),
                    "phase": t.id,
                    "phase_pressure_GPa": float(t.pressure),
                    "n_samples": len(group),
                    "n_valid": len(valid),
                    "n_matched": int(hits),
                    "fraction": hits / len(group) if len(group) else math.nan,
                }
            )
    return out


# ------------------------------------------------------------------ result
def _stat(values, fn) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return finite(float(fn(v))) if v else None


def _slope(ps, vs) -> float | None:
    pts = [(p, v) for p, v in zip(ps, vs, strict=True) if v is not None and math.isfinite(v)]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return finite(float(np.polyfit(x, y, 1)[0]))


@dataclass(frozen=True)
class PressureResponseResult:
    """``structure_rows``: one dict per structure (generated and PyXtal twin); ``reference``: the
    :class:`ReferencePoint` s (as dicts) of the compositions asked for; ``phase_rows``: one dict per
    known phase, source (``generated`` / ``pyxtal``) and search run (``first_match`` 1-based, 0 = none
    within the budget); ``seconds``: wall time per part; ``fraction_rows``: :func:`phase_fractions` at
    each of ``settings.fraction_pressures``."""

    structure_rows: list[dict]
    reference: list[dict]
    phase_rows: list[dict]
    settings: PressureResponseSettings
    seconds: dict[str, float]
    fraction_rows: list[dict] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """One row per structure (the CSV of the volume and relaxation checks)."""
        return [dict(r) for r in self.structure_rows]

    # -- summary
    def volume_summary(self) -> dict:
        """Per cell formula: requested pressures (GPa), mean/std of the generated volume per atom
        (Å^3/atom, valid cells), the mean relaxed one, the reference trend, and slopes (Å^3/atom/GPa)."""
        from pymatgen.core import Composition

        ps = [float(p) for p in self.settings.pressures]
        out = {}
        for f in dict.fromkeys(r["formula"] for r in self.structure_rows):
            red = Composition(f).reduced_formula
            gen = [r for r in self.structure_rows if r["formula"] == f and r["source"] == "generated"]
            v0 = {p: [r["initial_volume_per_atom_A3"] for r in gen if r["pressure_GPa"] == p] for p in ps}
            v1 = {p: [r["final_volume_per_atom_A3"] for r in gen if r["pressure_GPa"] == p] for p in ps}
            ref = sorted(
                (r["pressure"], r["volume_per_atom"])
                for r in self.reference
                if r["formula"] == red and min(ps) <= r["pressure"] <= max(ps)
            )
            mean = [_stat(v0[p], np.mean) for p in ps]
            out[f] = {
                "reduced_formula": red,
                "requested_GPa": ps,
                "n_valid": [sum(math.isfinite(x) for x in v0[p]) for p in ps],
                "generated_mean": mean,
                "generated_std": [_stat(v0[p], np.std) for p in ps],
                "relaxed_generated_mean": [_stat(v1[p], np.mean) for p in ps],
                "reference_GPa": [p for p, _ in ref],
                "reference": [v for _, v in ref],
                "slope_generated": _slope(ps, mean),
                "slope_relaxed_generated": _slope(ps, [_stat(v1[p], np.mean) for p in ps]),
                "slope_reference": _slope([p for p, _ in ref], [v for _, v in ref]),
            }
        return out

    def relaxation_summary(self) -> dict:
        """Per source and requested pressure: counts, convergence rate (converged / all asked for),
        ionic steps, RMSD (Å), initial pressure (GPa) and relaxed volume per atom (Å^3/atom)."""
        out: dict[str, dict] = {}
        for source in ("generated", "pyxtal"):
            out[source] = {}
            for p in self.settings.pressures:
                rs = [r for r in self.structure_rows if r["source"] == source and r["pressure_GPa"] == p]
                ok = [r for r in rs if r["status"] == "relaxed"]
                out[source][f"{p:g}"] = {
                    "n": len(rs),
                    "n_made": sum(r["status"] != "not_made" for r in rs),
                    "n_relaxed": len(ok),
                    "convergence_rate": (sum(r["converged"] for r in rs) / len(rs)) if rs else None,
                    "mean_steps": _stat([r["steps"] for r in ok], np.mean),
                    "median_steps": _stat([r["steps"] for r in ok], np.median),
                    "mean_rmsd_A": _stat([r["rmsd_A"] for r in ok], np.mean),
                    "median_rmsd_A": _stat([r["rmsd_A"] for r in ok], np.median),
                    "median_initial_pressure_GPa": _stat([r["initial_pressure_GPa"] for r in ok], np.median),
                    "median_abs_initial_minus_requested_GPa": _stat(
                        [abs(r["initial_pressure_GPa"] - p) for r in ok], np.median
                    ),
                    "mean_relaxed_volume_per_atom_A3": _stat(
                        [r["final_volume_per_atom_A3"] for r in ok], np.mean
                    ),
                }
        return out

    def phase_summary(self) -> dict:
        """Per known phase and source: successes out of runs and mean samplings to the first match."""
        out: dict[str, dict] = {}
        for r in self.phase_rows:
            ph = out.setdefault(r["id"], {"formula": r["formula"], "pressure_GPa": r["pressure_GPa"]})
            s = ph.setdefault(r["source"], {"first_match_per_run": [], "samplings_drawn": 0, "invalid": 0})
            s["first_match_per_run"].append(r["first_match"])
            s["samplings_drawn"] += r["n_sampled"]
            s["invalid"] += r["n_invalid"]
        for ph in out.values():
            for s in ph.values():
                if isinstance(s, dict):
                    hits = [x for x in s["first_match_per_run"] if x > 0]
                    s.update(
                        successes=len(hits),
                        runs=len(s["first_match_per_run"]),
                        success_count=f"{len(hits)}/{len(s['first_match_per_run'])}",
                        mean_samplings=finite(float(np.mean(hits))) if hits else None,
                    )
        return out

    def summary(self) -> dict:
        """Everything above, JSON-ready (NaN becomes None), with settings and seconds."""
        return {
            "settings": self.settings.as_dict(),
            "seconds": dict(self.seconds),
            "n_structures": len(self.structure_rows),
            "volume": self.volume_summary(),
            "relaxation": self.relaxation_summary(),
            "known_phases": self.phase_summary(),
            "phase_fractions": [dict(r) for r in self.fraction_rows],
        }

    # -- outputs
    def plot(self, path: str | Path) -> Path:
        """Panels to a PNG: V/atom vs requested P (generated, relaxed, reference), RMSD, ionic steps,
        initial pressure vs requested, convergence rate, samplings to the first match, and (when
        computed) the phase fractions against the requested pressure."""
        from xtal_tools.evaluation.pressure_response_plots import plot_pressure_response

        return plot_pressure_response(self, Path(path))

    def write(self, out_dir: str | Path, *, meta: dict | None = None) -> dict:
        """``summary.json`` (with ``meta``), ``rows.csv``, ``phases.csv`` and ``pressure_response.png``."""
        import csv

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in (
            ("rows.csv", self.structure_rows),
            ("phases.csv", self.phase_rows),
            ("phase_fractions.csv", self.fraction_rows),
        ):
            if rows:
                with (out / name).open("w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
                    w.writeheader()
                    w.writerows(rows)
        self.plot(out / "pressure_response.png")
        summary = {**self.summary(), **(meta or {})}
        (out / "summary.json").write_text(
            json.dumps(summary, indent=2, allow_nan=False, default=_json_default)
        )
        return summary


def run_pressure_response_benchmark(bench, config, out_dir, *, tables: dict, on_step=None) -> dict:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.PressureResponseConfig` on an opened
    :class:`~xtal_tools.evaluation.configs.Benchmark` (its relaxer's calculator): picks the compositions,
    reads the reference trend, runs :func:`run_pressure_response` (resumable: ``out_dir/journal.jsonl``)
    and writes every output; returns the summary. ``on_step(message)`` hears each finished step."""
    from xtal_tools.evaluation.samplers import ModelSampler
    from xtal_tools.records import installed_versions, machine_info, package_versions

    if not config.formulas and not config.data:
        raise ValueError("give --formulas, or --data STORE (a pressure-labelled store) to draw them from")
    trained = bench.model.trained_on if hasattr(bench.model, "trained_on") else None
    formulas = list(config.formulas) or store_compositions(
        config.data,
        limit=config.limit or 3,
        max_atoms=config.max_atoms,
        pressures=(0.0, 25.0, 50.0),
        seed=config.seed,
        elements=(trained or {}).get("elements"),
    )
    reference = (
        reference_trend(config.data, formulas=formulas, max_pressure=max(config.pressures))
        if config.data and formulas
        else []
    )
    wanted = None if config.phases == "all" else [p for p in config.phases.split(",") if p.strip()]
    phases = [] if config.phases == "none" else known_phase_targets(wanted)
    settings = PressureResponseSettings(
        pressures=config.pressures,
        num_per_target=config.num,
        seed=config.seed,
        relax=config.relax.settings(),
        phase_runs=config.phase_runs,
        phase_budget=config.phase_budget,
        phase_batch=config.phase_batch,
        relax_phases=config.relax_phases,
        fraction_pressures=config.fraction_pressures,
        fraction_num=config.fraction_num,
    )
    calculator = bench.relaxer.calculator if bench.relaxer is not None else None
    result = run_pressure_response(
        ModelSampler(bench.model, sampler=config.sampler),
        formulas,
        settings,
        calculator=calculator,
        reference=reference,
        phases=phases,
        journal=Path(out_dir) / "journal.jsonl",
        progress=on_step,
    )
    meta = {
        "wall_s": time.perf_counter() - bench.t0,
        "settings": tables,
        "formulas": formulas,
        "machine": machine_info(bench.device),
        "versions": {**package_versions(), **installed_versions(("pymatgen", "ase", "pyxtal", "chgnet"))},
    }
    return result.write(out_dir, meta=meta)
