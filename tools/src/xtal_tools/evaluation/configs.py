"""The settings of the paper's benchmarks (``tools/benchmark <name>``), one frozen dataclass each, and
what every benchmark does before and after its own work.

Each config is the ``[<name>]`` table of a ``--config`` file plus ``[sampler]`` (and ``[relax]`` where
structures are relaxed); :class:`BenchConfig` holds the fields they share (the model, the targets, the
seed). :func:`open_benchmark` checks every input and loads model, targets and calculator before anything
is written; :func:`write_summary` writes ``summary.json`` and ``rows.csv``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cond_vae.sampling import SamplerConfig

from xtal_tools.config import DECISION_PRESET, REPORT_PRESETS
from xtal_tools.relaxation import RelaxConfig

__all__ = [
    "BenchConfig",
    "Benchmark",
    "KnownPhaseConfig",
    "LocaloptConfig",
    "PressureResponseConfig",
    "ReconConfig",
    "StructureMapConfig",
    "SuccessConfig",
    "open_benchmark",
    "write_summary",
]


@dataclass(frozen=True)
class BenchConfig:
    """What every benchmark shares. The model: ``checkpoint`` ("" for the shipped default) on
    ``device``. The targets: a store's split part (``data``, ``split``, ``part``, first ``limit``) or
    a CSV of CIF paths and pressures (``targets``), in the ``given`` / ``primitive`` /
    ``conventional`` cell; ``seed``; ``jobs`` processes for structure matching."""

    checkpoint: str = ""
    data: str = ""
    split: str = "random"
    part: str = "test"
    limit: int | None = None
    targets: str = ""
    cell: str = "given"
    seed: int = 0
    device: str = "auto"
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.cell not in ("given", "primitive", "conventional"):
            raise ValueError(f"cell {self.cell!r}: choose given, primitive or conventional")
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")


def _at_least_one(config, *names: str) -> None:
    """Every named count of ``config`` is >= 1 (ValueError naming the first that is not)."""
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")


def _check_phases(text: str) -> None:
    """``all``, ``none`` or comma-separated ids of the built-in known phases (KeyError naming them)."""
    if text not in ("all", "none"):
        from xtal_tools.evaluation.phase_library import known_phase_targets

        known_phase_targets([p.strip() for p in text.split(",") if p.strip()])


def _check_presets(names) -> None:
    from xtal_eval import resolve_presets

    resolve_presets(tuple(names))  # an unknown name is a ValueError listing the known ones


@dataclass(frozen=True)
class ReconConfig(BenchConfig):
    """``[recon]``: Table II. ``presets`` reported; ``use_mean`` decodes the posterior mean."""

    presets: tuple[str, ...] = REPORT_PRESETS
    use_mean: bool = False
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_presets(self.presets)


@dataclass(frozen=True)
class SuccessConfig(BenchConfig):
    """``[success]``: Fig. 3. ``num`` samplings per target (paper: 800), ``presets``, the small-cell
    subset ``n_atoms < size_cut``, ``chunk`` targets scored together, ``save_samples`` to extxyz."""

    num: int = 20
    presets: tuple[str, ...] = REPORT_PRESETS
    size_cut: int = 20
    chunk: int = 64
    save_samples: bool = False
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    relax: RelaxConfig = field(default_factory=RelaxConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_presets(self.presets)
        _at_least_one(self, "num", "size_cut", "chunk")


@dataclass(frozen=True)
class KnownPhaseConfig(BenchConfig):
    """``[known_phase]``: Table IV. ``runs`` searches per target of at most ``budget`` samplings drawn
    ``batch`` at a time; ``preset`` decides a match."""

    runs: int = 5
    budget: int = 1000
    batch: int = 50
    preset: str = DECISION_PRESET
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    relax: RelaxConfig = field(default_factory=RelaxConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_presets((self.preset,))
        _at_least_one(self, "runs", "budget", "batch")


@dataclass(frozen=True)
class LocaloptConfig(BenchConfig):
    """``[localopt]``: Table III / Fig. 2. ``limit`` distinct compositions drawn at random (seeded),
    ``num`` generated structures per composition and ``pressures`` (GPa); relaxed with ``[relax]``
    (paper: 150 steps at most)."""

    limit: int | None = 20
    pressures: tuple[float, ...] = (0.0, 100.0, 200.0, 300.0, 400.0)
    num: int = 4
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    relax: RelaxConfig = field(default_factory=lambda: RelaxConfig(enabled=True, max_steps=150))


@dataclass(frozen=True)
class PressureResponseConfig(BenchConfig):
    """``[pressure_response]``: do samples follow the requested pressure? ``formulas`` (cell formulas; none:
    ``limit`` compositions of at most ``max_atoms`` atoms drawn from the pressure-labelled store ``data``,
    whose trend is the reference) at ``pressures`` (GPa), ``num`` samples each, relaxed with ``[relax]``
    beside PyXtal twins; known ``phases`` (``all``, ``none`` or comma-separated ids) searched ``phase_runs``
    times with ``phase_budget`` samplings in batches of ``phase_batch`` (``relax_phases``: relax before
    matching); which phase is made at ``fraction_pressures`` from ``fraction_num`` samplings."""

    limit: int | None = 3
    formulas: tuple[str, ...] = ()
    max_atoms: int = 4
    pressures: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
    num: int = 5
    phases: str = "all"
    phase_runs: int = 3
    phase_budget: int = 50
    phase_batch: int = 10
    relax_phases: bool = False
    fraction_pressures: tuple[float, ...] = (0.0, 10.0, 25.0, 40.0, 50.0)
    fraction_num: int = 100
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    relax: RelaxConfig = field(default_factory=lambda: RelaxConfig(enabled=True, max_steps=150))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_phases(self.phases)
        _at_least_one(self, "max_atoms", "num", "phase_runs", "phase_budget", "phase_batch", "fraction_num")


@dataclass(frozen=True)
class StructureMapConfig(BenchConfig):
    """``[structure_map]``: the paper's Fig. 4. ``num`` samples of each of ``formulas`` at each of
    ``pressures`` (GPa) beside PyXtal twins, described (``soap`` or ``rdf``) and embedded (``umap`` or
    ``tsne``) in 2-D with the known phases ``landmarks`` (comma-separated ids, or ``none``)."""

    formulas: tuple[str, ...] = ("Si4O8",)
    pressures: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
    num: int = 25
    descriptor: str = "soap"
    embedding: str = "umap"
    landmarks: str = "SiO2-quartz,SiO2-stishovite"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_phases(self.landmarks)
        if self.num < 1 or not self.formulas or not self.pressures:
            raise ValueError("structure map: give at least one formula, one pressure and num >= 1")


@dataclass
class Benchmark:
    """A benchmark ready to run: the opened model, its targets (None for localopt, which draws
    compositions), the relaxer (None when relaxation is off), the start time."""

    opened: Any
    targets: list | None
    relaxer: Any
    t0: float = field(default_factory=time.perf_counter)

    @property
    def model(self):
        return self.opened.model

    @property
    def device(self) -> str:
        return self.opened.device


def _targets(config: BenchConfig, model) -> list:
    from dataclasses import replace

    from xtal_tools.evaluation.targets import check_targets, read_targets_csv, standard_cell, store_targets

    if bool(config.data) == bool(config.targets):
        raise ValueError(
            "give the targets as --data STORE (a split part) or as --targets CSV: exactly one of them"
        )
    if config.targets:
        targets = read_targets_csv(config.targets, cell=config.cell)[: config.limit]
    else:
        targets = store_targets(config.data, split=config.split, part=config.part, limit=config.limit)
        if config.cell != "given":
            targets = [replace(t, structure=standard_cell(t.structure, config.cell)) for t in targets]
    check_targets(targets, max_atoms=model.config.max_atoms, num_elements=model.config.num_elements)
    return targets


def open_benchmark(config: BenchConfig, *, targets: bool = True, relax_default: bool = False) -> Benchmark:
    """Check ``config`` and load everything a benchmark needs, before anything is written.

    ``relax_default``: relax when ``[relax] enabled`` is not set (the benchmarks: when a calculator was
    named; the caller decides). Raises ValueError / FileNotFoundError / KeyError / ImportError naming the
    culprit.
    """
    from xtal_tools.checkpoints import open_model
    from xtal_tools.evaluation.relaxer import Relaxer

    if isinstance(config, StructureMapConfig):  # a missing optional dependency fails before any work
        from xtal_tools.evaluation.structure_map import StructureMapSettings, check_dependencies

        check_dependencies(StructureMapSettings(descriptor=config.descriptor, embedding=config.embedding))
    if isinstance(config, ReconConfig | LocaloptConfig) and not config.data:
        raise ValueError("--data STORE is required")
    opened = open_model(config.checkpoint, device=config.device)
    extra = [n for n in opened.model.config.condition_names if n != "pressure"]
    if extra:
        raise ValueError(f"the model is also conditioned on {extra}: the benchmarks give only a pressure")
    if targets:
        found = _targets(config, opened.model)
    else:  # the benchmark reads the store itself (when it reads one): its split part must exist
        from xtal_tools.evaluation.targets import part_indices

        if isinstance(config, LocaloptConfig):
            part_indices(config.data, config.split, config.part)
        found = None
    relax = getattr(config, "relax", None)
    relaxer = None
    if relax is not None and relax.on(relax_default):
        relaxer = Relaxer(relax.load(opened.device), relax.settings())
    return Benchmark(opened, found, relaxer)


def write_summary(
    name: str, out: Path, bench: Benchmark, *, tables: dict, results: dict, rows, n: int, meaning: str
) -> dict:
    """Write ``rows.csv`` and then ``summary.json`` (last: its presence means the run completed):
    results, wall time, structures per second (``meaning`` says what is counted), the settings
    ``tables``, versions and the machine."""
    from xtal_eval.report import write_csv, write_json

    from xtal_tools.records import installed_versions, machine_info, package_versions

    write_csv(out / "rows.csv", rows)
    wall = time.perf_counter() - bench.t0
    summary = {
        "benchmark": name,
        "wall_s": wall,
        "n_structures": n,
        "structures_per_s": n / wall if wall > 0 else None,
        "structures_per_s_counts": meaning,
        "results": results,
        "settings": tables,
        "versions": {
            **package_versions(),
            **installed_versions(("pymatgen", "ase", "spglib", "chgnet", "pyxtal")),
        },
        "machine": machine_info(bench.device),
    }
    write_json(out / "summary.json", summary)
    return summary
