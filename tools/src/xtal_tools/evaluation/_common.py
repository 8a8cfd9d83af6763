"""Shared pieces of the paper benchmarks: targets, a sampler interface, relaxation, run bookkeeping.

* :class:`BenchTarget`: one known structure and the pressure (GPa) to predict it at; read from a
  store split (:func:`store_targets`) or from a CSV of CIF files and pressures (:func:`read_targets_csv`).
* :class:`Sampler`: ``sampler(formulas, pressures, num=k, seed=s)`` returns ``k`` pymatgen structures
  (``None`` for a rejected cell) per row. :class:`ModelSampler` wraps the sampling engine
  (:func:`cond_vae.sampling.sample_requests`: row ``i`` is ``(formulas[i], pressures[i])``, sample ``j``
  of it is keyed by ``(seed, i, j)``, exactly as ``tools/sample --rows`` with the same seed and
  sampler); tests and other generators plug in anything with the same call.
* :class:`Relaxer`: relaxes a list of structures at one pressure with an ASE calculator; a failed
  relaxation gives ``None`` (never a match) and is counted.
* :func:`machine_info`, :func:`write_png`: what every ``summary.json`` records, atomic plot writing.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "BenchTarget",
    "ModelSampler",
    "SampleGroup",
    "RelaxCounts",
    "Relaxer",
    "SampleWriter",
    "Sampler",
    "check_targets",
    "derived_seed",
    "finite",
    "read_targets_csv",
    "standard_cell",
    "store_targets",
    "target_formula",
    "write_png",
]


@dataclass(frozen=True)
class BenchTarget:
    """A known structure (pymatgen ``Structure``) to be found at ``pressure`` GPa; ``id`` labels it."""

    id: str
    structure: Any
    pressure: float

    @property
    def num_atoms(self) -> int:
        return len(self.structure)

    @property
    def formula(self) -> str:
        return target_formula(self.structure)


def target_formula(structure) -> str:
    """Full-cell formula in order of first appearance, e.g. ``"Na4Cl4"`` (what the model is asked for)."""
    counts: dict[str, int] = {}
    for site in structure:
        symbol = site.specie.symbol
        counts[symbol] = counts.get(symbol, 0) + 1
    return "".join(f"{el}{n}" for el, n in counts.items())


def derived_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``seed`` and integer keys (distinct keys give independent streams)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def read_targets_csv(path: str | os.PathLike, *, cell: str = "given") -> list[BenchTarget]:
    """Targets from a CSV with columns ``cif`` (path, relative to the CSV's folder) and ``pressure`` (GPa).

    An ``id`` column names the targets (default: the CIF's file stem). ``cell``: ``given`` keeps the
    CIF's cell, ``primitive`` / ``conventional`` use spglib's standard cells (the paper samples both
    and keeps the better; run the benchmark twice to do the same).

    Raises:
        FileNotFoundError: the CSV or a CIF does not exist.
        ValueError: missing columns, an empty list, a CIF pymatgen cannot read, disordered sites, or a
            NaN/negative/non-numeric pressure (the message names the file and line).
    """
    from pymatgen.core import Structure

    from xtal_tools.generation import check_pressure

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"targets file {path} does not exist")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            records = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from None
    missing = {"cif", "pressure"} - columns
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)} (found {sorted(columns)})")
    targets = []
    for line, rec in enumerate(records, start=2):
        where = f"{path}:{line}"
        cif = (rec.get("cif") or "").strip()
        if not cif:
            raise ValueError(f"{where}: empty cif path")
        cif_path = Path(cif) if Path(cif).is_absolute() else path.parent / cif
        if not cif_path.is_file():
            raise FileNotFoundError(f"{where}: CIF {cif_path} does not exist")
        pressure = check_pressure(rec.get("pressure"), where)
        try:
            structure = Structure.from_file(str(cif_path))
        except Exception as err:  # noqa: BLE001  pymatgen raises many types for a bad CIF
            raise ValueError(f"{where}: cannot read CIF {cif_path}: {type(err).__name__}: {err}") from None
        if not structure.is_ordered:
            raise ValueError(f"{where}: CIF {cif_path} has partially occupied sites (need an ordered cell)")
        label = (rec.get("id") or "").strip() or cif_path.stem
        targets.append(BenchTarget(label, standard_cell(structure, cell), pressure))
    if not targets:
        raise ValueError(f"{path}: no targets (the CSV has a header but no rows)")
    return targets


def standard_cell(structure, cell: str):
    """``structure`` as ``given``, or spglib's ``primitive`` / ``conventional`` standard cell (0.1 Å)."""
    if cell == "given":
        return structure
    if cell not in ("primitive", "conventional"):
        raise ValueError(f"unknown cell {cell!r}: choose given, primitive or conventional")
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    sga = SpacegroupAnalyzer(structure, symprec=0.1)
    if cell == "primitive":
        return sga.get_primitive_standard_structure()
    return sga.get_conventional_standard_structure()


def part_indices(store, split: str, part: str) -> np.ndarray:
    """Structure indices of part ``part`` of split ``split`` of ``store`` (an open store or its URL).

    Raises:
        KeyError: no such split or part (naming the parts there are).
    """
    from xtal_data import CrystalStore

    if not isinstance(store, CrystalStore):
        store = CrystalStore.open(store)
    parts = store.split(split)
    if part not in parts:
        raise KeyError(f"split {split!r} has no part {part!r}; it has {sorted(parts)}")
    return np.asarray(parts[part])


def store_targets(data: str, *, split: str, part: str, limit: int | None = None) -> list[BenchTarget]:
    """The first ``limit`` structures (all when None) of part ``part`` of split ``split`` of a store.

    Raises:
        KeyError: no such split or part.  ValueError: the selection is empty.
    """
    from xtal_data import CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    store = CrystalStore.open(data)
    indices = part_indices(store, split, part)[:limit]
    if len(indices) == 0:
        raise ValueError(f"{data}: split {split!r} part {part!r} is empty")
    dataset = CrystalDataset(store, indices=indices, properties=("pressure",))
    return [
        BenchTarget(
            str(dataset.ids[i]), dataset.crystal(i).to_pymatgen(), float(dataset.properties["pressure"][i])
        )
        for i in range(len(dataset))
    ]


def check_targets(targets: Sequence[BenchTarget], *, max_atoms: int, num_elements: int) -> None:
    """Every target must be a formula the model can sample (before any work starts).

    Raises:
        ValueError: no targets, duplicate ids, or a target with too many atoms / an unknown element.
    """
    from cond_vae import parse_formula

    if not targets:
        raise ValueError("no targets given")
    seen: set[str] = set()
    for t in targets:
        if t.id in seen:
            raise ValueError(f"duplicate target id {t.id!r}")
        seen.add(t.id)
        try:
            parse_formula(t.formula, max_atoms=max_atoms, num_elements=num_elements)
        except ValueError as err:
            raise ValueError(f"target {t.id!r}: {err}") from None


class Sampler(Protocol):
    """Anything that returns ``num`` structures (or ``None``) for each (cell formula, pressure) row."""

    def __call__(
        self, formulas: Sequence[str], pressures: Sequence[float], *, num: int, seed: int
    ) -> list[list[Any]]: ...


class SampleGroup(Sequence):
    """The samples of one row as pymatgen structures (``None`` for a rejected cell), made when read.

    Holds the engine's :class:`cond_vae.SampledStructure` list (``samples``); each item is converted on
    access and not kept, so a benchmark holding every target's samples keeps only numpy arrays alive.
    """

    def __init__(self, samples: Sequence):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.samples[i]
        return s.to_pymatgen() if s.valid else None


@dataclass(frozen=True)
class ModelSampler:
    """The sampling engine as a :class:`Sampler`: one call samples every row with one seed.

    ``sampler``: a :class:`cond_vae.SamplerConfig` (default ``SamplerConfig()``). Returns one
    :class:`SampleGroup` per row.
    """

    model: Any
    sampler: Any = None

    def __call__(self, formulas, pressures, *, num: int, seed: int) -> list[SampleGroup]:
        import torch
        from cond_vae import SamplerConfig
        from cond_vae.sampling import make_requests, sample_requests

        sampler = SamplerConfig() if self.sampler is None else self.sampler
        requests = make_requests(self.model, list(formulas), list(pressures))
        with torch.inference_mode():
            samples = sample_requests(self.model, requests, num_per_row=num, seed=seed, sampler=sampler)
        groups: list[list] = [[] for _ in requests]
        for s in samples:
            groups[s.row].append(s)
        return [SampleGroup(g) for g in groups]


@dataclass
class RelaxCounts:
    """Running totals of a :class:`Relaxer`: structures tried, failed, unconverged; steps and seconds."""

    tried: int = 0
    failed: int = 0
    unconverged: int = 0
    steps: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**self.__dict__, "reasons": dict(self.reasons)}


@dataclass
class Relaxer:
    """Relax structures with ``calculator`` at a pressure (``settings`` give fmax, steps, optimiser).

    A relaxation that raises, returns non-finite numbers, or leaves atoms closer than ``min_distance``
    (Å) gives ``None`` and is counted in ``counts.failed`` (with its reason).
    """

    calculator: Any
    settings: Any  # xtal_data.relax_ase.RelaxSettings
    min_distance: float = 0.5
    counts: RelaxCounts = field(default_factory=RelaxCounts)

    def __call__(self, structures: Sequence[Any], pressure: float) -> list[Any]:
        from pymatgen.io.ase import AseAtomsAdaptor
        from xtal_eval import structure_valid

        from xtal_tools.relaxation import relax

        out = []
        for s in structures:
            if s is None:
                out.append(None)
                continue
            t0 = time.perf_counter()
            res = relax(AseAtomsAdaptor.get_atoms(s), self.calculator, float(pressure), self.settings)
            self.counts.seconds += time.perf_counter() - t0
            self.counts.tried += 1
            self.counts.steps += res.steps
            final = AseAtomsAdaptor.get_structure(res.atoms) if res.ok else None
            reason = res.reason.split(":")[0]
            if final is not None and not structure_valid(final, cutoff=self.min_distance):
                final, reason = None, "atoms too close after relaxation"
            if final is None:
                self.counts.failed += 1
                self.counts.reasons[reason] = self.counts.reasons.get(reason, 0) + 1
            else:
                self.counts.unconverged += not res.converged
            out.append(final)
        return out


class SampleWriter:
    """Appends samples to ``<out>/samples_<mode>.extxyz`` (hidden temporary files until :meth:`commit`).

    Each frame's ``info`` holds ``target_id`` and ``index`` (0-based sampling number); a rejected cell
    or failed relaxation has no frame, so a missing index is a sample that cannot match.
    """

    def __init__(self, out_dir: Path):
        self.out_dir, self.paths = Path(out_dir), {}

    def __call__(self, mode: str, targets: Sequence[BenchTarget], groups: Sequence[Sequence]) -> None:
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        frames = []
        for t, group in zip(targets, groups, strict=True):
            for j, s in enumerate(group):
                if s is not None:
                    atoms = AseAtomsAdaptor.get_atoms(s)
                    atoms.info = {"target_id": t.id, "index": j}
                    frames.append(atoms)
        tmp = self.paths.setdefault(mode, self.out_dir / f".samples_{mode}.extxyz.tmp")
        with tmp.open("a") as fh:
            write(fh, frames, format="extxyz")

    def commit(self) -> list[Path]:
        """Rename every temporary file to its final name; returns the final paths."""
        done = []
        for mode, tmp in self.paths.items():
            tmp.touch()
            final = self.out_dir / f"samples_{mode}.extxyz"
            os.replace(tmp, final)
            done.append(final)
        return done

    def discard(self) -> None:
        for tmp in self.paths.values():
            tmp.unlink(missing_ok=True)


def write_png(fig, path: Path) -> None:
    """Save a matplotlib figure to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finite(x: float | None) -> float | None:
    """``x`` or None when it is None/NaN/inf (JSON-ready)."""
    return None if x is None or not math.isfinite(x) else float(x)
