"""Structure-search results as sources: a tree of VASP calculation folders, or CALYPSO search folders.

Source type ``vasp`` (:func:`iter_vasp_tree`): every folder under the source (the source itself included)
that holds an ``INCAR``, ``POSCAR``, ``CONTCAR``, ``OUTCAR`` or ``vasprun.xml`` (each possibly ``.gz``) is one
calculation, read by :func:`xtal_data.vasp.read_calculation`; its id is the folder's path relative to the
source (the source's own name when the source is the calculation).

Source type ``calypso`` (:func:`iter_calypso`): the layout CALYPSO's split mode leaves with VASP,

    search/
      input.dat                  CALYPSO input; its PSTRESS (kBar) is the search's pressure
      INCAR_1 ... INCAR_k        relaxation stages; the last one's PSTRESS (kBar) is used without input.dat
      POSCAR_n  CONTCAR_n  OUTCAR_n    candidate n: its start, relaxed structure and VASP output

Every folder under the source that holds a ``CONTCAR_n``, ``OUTCAR_n`` or ``POSCAR_n`` is one search (id:
its relative path); candidate ids are ``<search>/<n>``. Without input.dat and INCAR_k the candidates' own
OUTCAR PSTRESS is used. CALYPSO's ``results/`` summaries (``pso_*`` files, ``struct.dat``) are not read:
the per-candidate VASP files carry everything, including convergence. With ``keep_fraction`` (the paper:
0.5) only the lowest-enthalpy (per atom) ``ceil(n * keep_fraction)`` candidates of each search are kept;
the others are reported as skipped. Every record carries ``search_id`` (for ``xtal-data curate``).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import fsspec

from xtal_data.records import CrystalRecord
from xtal_data.sources import Skip
from xtal_data.vasp import CalcFiles, VaspReadConfig, parse_pstress, read_calculation, read_text

VASP_NAMES = {"CONTCAR": "contcar", "POSCAR": "poscar", "OUTCAR": "outcar", "vasprun.xml": "vasprun",
              "INCAR": "incar"}  # fmt: skip
CANDIDATE = re.compile(r"^(CONTCAR|POSCAR|OUTCAR)_(\d+)(\.gz)?$")
STAGE_INCAR = re.compile(r"^INCAR_(\d+)$")
MIN_PARALLEL = 32  # fewer calculations / searches than this are read in the calling process


@dataclass(frozen=True)
class CalypsoConfig:
    """How to read CALYPSO searches.

    Attributes:
        vasp: how each candidate's VASP files are read (fallback pressure in GPa, convergence, code label).
        keep_fraction: keep the lowest-enthalpy-per-atom fraction of each search (None: keep all).
    """

    vasp: VaspReadConfig = VaspReadConfig(code="calypso+vasp")
    keep_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise ValueError(f"keep_fraction must be in (0, 1], got {self.keep_fraction}")


def _base(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def _rel_id(root: str, folder: str) -> str:
    rel = posixpath.relpath(folder, root)
    return posixpath.basename(root.rstrip("/")) if rel == "." else rel


def _walk(source: str):
    fs, root = fsspec.core.url_to_fs(str(source))
    if not fs.isdir(root):
        raise ValueError(f"{source}: expected a folder of calculations")
    walked = sorted((folder, sorted(files)) for folder, _, files in fs.walk(root))
    return fs, root.rstrip("/"), walked


def _parallel_map(fn, items: list, workers: int) -> Iterator:
    """The concatenated lists ``fn(item)``, in order, over ``workers`` spawned processes when there are
    enough items."""
    if workers <= 1 or len(items) < MIN_PARALLEL:
        for chunk in map(fn, items):
            yield from chunk
        return
    ctx = multiprocessing.get_context("spawn")  # never fork: zarr runs an event-loop thread
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for chunk in pool.map(fn, items, chunksize=max(1, min(16, len(items) // (4 * workers)))):
            yield from chunk


def _read_one(fs, config: VaspReadConfig, item: tuple[str, CalcFiles]) -> list:
    return [read_calculation(fs, item[1], item[0], config)]


def iter_vasp_tree(
    source: str, *, config: VaspReadConfig, workers: int = 1
) -> Iterator[CrystalRecord | Skip]:
    """Every VASP calculation folder under ``source`` (path or fsspec URL), in sorted order, read over
    ``workers`` processes. The tree is listed now (ValueError when it holds no calculation)."""
    fs, root, walked = _walk(source)
    calcs = []
    for folder, names in walked:
        found = {VASP_NAMES[_base(n)]: posixpath.join(folder, n) for n in names if _base(n) in VASP_NAMES}
        if found:
            calcs.append((_rel_id(root, folder), CalcFiles(**found)))
    if not calcs:
        raise ValueError(f"{source}: no VASP calculation folder (no INCAR/POSCAR/CONTCAR/OUTCAR/vasprun.xml)")
    return _parallel_map(functools.partial(_read_one, fs, config), calcs, workers)


def _search_pressure(fs, folder: str, names: list[str]) -> tuple[float | None, str | None]:
    """(PSTRESS in kBar, origin) of one search from input.dat and the last INCAR_k; they must agree."""
    values = []
    if "input.dat" in names:
        p = parse_pstress(read_text(fs, posixpath.join(folder, "input.dat")), "input.dat")
        if p is not None:
            values.append((p, "CALYPSO input.dat PSTRESS"))
    stages = sorted((int(m.group(1)), n) for n in names if (m := STAGE_INCAR.match(n)))
    if stages:
        name = stages[-1][1]
        p = parse_pstress(read_text(fs, posixpath.join(folder, name)), name)
        values.append((0.0 if p is None else p, f"{name} PSTRESS" if p is not None else f"{name} default"))
    if len(values) == 2 and not math.isclose(values[0][0], values[1][0], abs_tol=1e-9):
        raise ValueError(f"pressure disagreement (input.dat PSTRESS {values[0][0]} kBar, "
                         f"{values[1][1]} {values[1][0]} kBar)")  # fmt: skip
    return values[0] if values else (None, None)


def iter_calypso(source: str, *, config: CalypsoConfig, workers: int = 1) -> Iterator[CrystalRecord | Skip]:
    """Candidates of every CALYPSO search folder under ``source``, search by search, searches read over
    ``workers`` processes. The tree is listed now (ValueError when it holds no search)."""
    fs, root, walked = _walk(source)
    searches = []
    for folder, names in walked:
        candidates: dict[int, dict[str, str]] = defaultdict(dict)
        for name in names:
            if m := CANDIDATE.match(name):
                candidates[int(m.group(2))][m.group(1).lower()] = posixpath.join(folder, name)
        if candidates:
            searches.append((_rel_id(root, folder), folder, names, dict(sorted(candidates.items()))))
    if not searches:
        raise ValueError(f"{source}: no CALYPSO search folder (no CONTCAR_n / OUTCAR_n / POSCAR_n files)")
    return _parallel_map(functools.partial(_read_search, fs, config), searches, workers)


def _read_search(fs, config: CalypsoConfig, item: tuple) -> list[CrystalRecord | Skip]:
    """One search's candidates, the selection applied (runs in a worker process)."""
    search, folder, names, candidates = item
    try:
        kbar, origin = _search_pressure(fs, folder, names)
    except (OSError, ValueError) as err:
        return [Skip(f"{search}/{n}", f"{err} (search {search})") for n in candidates]
    extra = {"search_id": search}
    results = [
        read_calculation(
            fs,
            CalcFiles(**f),
            f"{search}/{n}",
            config.vasp,
            pressure_kbar=kbar,
            pressure_origin=origin,
            extra=extra,
        )  # fmt: skip
        for n, f in candidates.items()
    ]
    return list(_select(results, search, config.keep_fraction))


def _select(results: list, search: str, fraction: float | None) -> Iterator[CrystalRecord | Skip]:
    """The lowest-enthalpy-per-atom ``ceil(n * fraction)`` records of one search; the rest as Skips."""
    records = [r for r in results if isinstance(r, CrystalRecord)]
    yield from (r for r in results if isinstance(r, Skip))
    if fraction is None:
        yield from records
        return
    ranked = sorted(records, key=lambda r: (r.properties["enthalpy_per_atom"], r.id))
    keep = math.ceil(len(ranked) * fraction)
    yield from ranked[:keep]
    for rank, r in enumerate(ranked[keep:], start=keep + 1):
        h = r.properties["enthalpy_per_atom"]
        detail = f"{fraction:.0%}; search {search}, rank {rank} of {len(ranked)}, {h:.4f} eV/atom"
        yield Skip(r.id, f"outside the lowest-enthalpy fraction of its search ({detail})")
