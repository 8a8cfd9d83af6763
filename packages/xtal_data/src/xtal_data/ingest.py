"""Ingestion: any source -> a store, parsed in parallel, committed in batches, every skip reported.

Each batch of ``batch_size`` structures is one append transaction, so an interrupted ingestion leaves all
earlier batches readable and none half-written; re-running the same ingestion skips the ids already stored.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from xtal_data import __version__
from xtal_data.records import MIN_VOLUME, CrystalArrays, CrystalRecord
from xtal_data.search_sources import CalypsoConfig, iter_calypso, iter_vasp_tree
from xtal_data.sources import (
    PressureSpec,
    Skip,
    TextItem,
    iter_ase_db,
    iter_folder,
    iter_table,
    iter_xyz,
    read_table,
    source_kind,
)
from xtal_data.store import CrystalStore, remove_store, require_free
from xtal_data.vasp import VaspReadConfig

MAX_ATOMS = 1000
"""Default ingestion limit on atoms per structure (larger ones are skipped and counted)."""

SOURCE_TYPES = ("auto", "vasp", "calypso")
DUPLICATE_IN_SOURCE = "duplicate id in source"
DUPLICATE_IN_STORE = "id already in store"


@dataclass(frozen=True)
class IngestReport:
    """What an ingestion did: records read from the source, written, and skipped (id + reason)."""

    source: str
    store: str
    read: int
    written: int
    skipped: tuple[Skip, ...]
    seconds: float

    def reasons(self) -> dict[str, int]:
        """Number of skipped records per reason (the reason text up to its first colon-free summary)."""
        return dict(Counter(_reason_key(s.reason) for s in self.skipped).most_common())

    def summary(self, max_examples: int = 10) -> str:
        lines = [
            f"ingested {self.written} of {self.read} records from {self.source} into {self.store} "
            f"in {self.seconds:.1f} s ({self.read / max(self.seconds, 1e-9):.0f} records/s)",
            f"skipped {len(self.skipped)}" + (":" if self.skipped else ""),
        ]
        lines += [f"  {n:6d}  {reason}" for reason, n in self.reasons().items()]
        for s in self.skipped[:max_examples]:
            lines.append(f"  e.g. {s.id}: {s.reason}")
        return "\n".join(lines)


class NothingIngestedError(ValueError):
    """An ingestion that wrote nothing: an empty source, or every record skipped for a reason other than
    being stored already. ``report`` holds the skips; no store was created."""

    def __init__(self, report: IngestReport):
        self.report = report
        what = "no records" if not report.read else f"all {report.read} records skipped"
        super().__init__(f"nothing ingested from {report.source} ({what}); {report.store} not written\n"
                         + report.summary().split("\n", 1)[1])  # fmt: skip


def _reason_key(reason: str) -> str:
    """Group reasons: drop the ``structure 'x':`` prefix and the details in parentheses."""
    text = reason.split(": ", 1)[1] if reason.startswith("structure '") and ": " in reason else reason
    return text.split(" (")[0][:80]


_CELL = re.compile(r"^\s*_cell_(length_a|length_b|length_c|angle_alpha|angle_beta|angle_gamma)\s+"
                   r"([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)", re.MULTILINE)  # fmt: skip


def _cif_cell_problem(text: str) -> str | None:
    """'zero or degenerate cell volume (...)' when a CIF's cell parameters give no volume, else None."""
    cell = {k: float(v) for k, v in _CELL.findall(text)}
    if len(cell) < 6:
        return None
    a, b, c = cell["length_a"], cell["length_b"], cell["length_c"]
    cos = [math.cos(math.radians(cell[f"angle_{x}"])) for x in ("alpha", "beta", "gamma")]
    v2 = 1 - sum(x * x for x in cos) + 2 * cos[0] * cos[1] * cos[2]
    volume = a * b * c * math.sqrt(max(v2, 0.0)) if min(a, b, c) > 0 else 0.0
    if volume >= MIN_VOLUME:
        return None
    return f"zero or degenerate cell volume ({volume:.3g} Å^3 from a={a:g}, b={b:g}, c={c:g} Å)"


def _parse_text(text: str, fmt: str):
    """The first structure of CIF / POSCAR text (``xtal_eval.structure_files``, shared with xtal-eval)."""
    from xtal_eval.structure_files import parse_structures

    structures = parse_structures(text, fmt)
    if not structures:
        raise ValueError("no structure in CIF")
    return structures[0]


def parse_item(item: TextItem) -> CrystalRecord | Skip:
    """Parse one text structure (CIF or POSCAR) with pymatgen; any failure becomes a Skip with a reason."""
    if not item.text.strip():
        return Skip(item.id, f"empty {item.fmt.upper()} text")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structure = _parse_text(item.text, item.fmt)
            return CrystalRecord.from_pymatgen(
                structure, id=item.id, pressure=item.pressure, **item.properties
            )
        except Exception as err:  # pymatgen raises many exception types on malformed text
            detail = "; ".join(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))[:200]
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            reason = f"malformed {item.fmt.upper()} ({msg}{'; ' + detail if detail else ''})"
            if isinstance(err, ValueError) and msg.startswith(f"structure {item.id!r}"):
                reason = msg
            elif item.fmt == "cif" and (cell := _cif_cell_problem(item.text)):
                reason = cell
            return Skip(item.id, reason)


def iter_source(
    source: str,
    *,
    pressure: PressureSpec,
    id_column: str | None = None,
    cif_column: str = "cif",
    source_type: str = "auto",
    keep_fraction: float | None = None,
    require_converged: bool = True,
    workers: int = 1,
) -> tuple[Iterator[TextItem | CrystalRecord | Skip], dict]:
    """Items of any supported source plus an info dict (kind, columns used).

    ``source_type``: ``"auto"`` (from the name: table, folder of CIF/POSCAR, xyz, ASE db), ``"vasp"``
    (a tree of VASP calculation folders) or ``"calypso"`` (CALYPSO search folders); see
    :mod:`xtal_data.search_sources`.
    """
    if source_type not in SOURCE_TYPES:
        raise ValueError(f"unknown source type {source_type!r}: choose one of {', '.join(SOURCE_TYPES)}")
    if source_type != "calypso" and keep_fraction is not None:
        raise ValueError("keep_fraction (lowest-enthalpy part of each search) needs source type 'calypso'")
    if source_type in ("vasp", "calypso"):
        if pressure.constant is not None and not math.isfinite(pressure.constant):
            raise ValueError(f"pressure must be finite, got {pressure.constant}")
        vasp = VaspReadConfig(pressure.constant, require_converged, code=source_type)
        info = {"kind": source_type, "require_converged": require_converged}
        if source_type == "vasp":
            return iter_vasp_tree(source, config=vasp, workers=workers), info
        config = CalypsoConfig(replace(vasp, code="calypso+vasp"), keep_fraction)
        return iter_calypso(source, config=config, workers=workers), {**info, "keep_fraction": keep_fraction}
    kind = source_kind(source)
    if kind == "table":
        items, info = iter_table(
            read_table(source), pressure=pressure, id_column=id_column, cif_column=cif_column, source=source
        )
        return items, {"kind": kind, **info}
    if kind in ("folder", "structure-file"):
        if pressure.constant is None:
            raise ValueError(
                f"{source}: structure files carry no pressure; give the pressure in GPa (--pressure)"
            )
        return iter_folder(source, pressure=pressure), {"kind": kind}
    if kind == "xyz":
        return iter_xyz(source, pressure=pressure), {"kind": kind}
    return iter_ase_db(source, pressure=pressure), {"kind": kind}


def _parsed(
    items: list[TextItem], pool: ProcessPoolExecutor | None, workers: int
) -> Iterable[CrystalRecord | Skip]:
    if pool is None:
        return map(parse_item, items)
    return pool.map(parse_item, items, chunksize=max(1, min(64, len(items) // (4 * workers))))


def ingest(
    source: str,
    store: str | CrystalStore,
    *,
    pressure: float | None = None,
    pressure_column: str | None = "pressure",
    id_column: str | None = None,
    cif_column: str = "cif",
    source_type: str = "auto",
    keep_fraction: float | None = None,
    require_converged: bool = True,
    workers: int | None = None,
    batch_size: int = 4096,
    progress: bool = True,
    max_atoms: int | None = MAX_ATOMS,
    storage_options: dict | None = None,
) -> IngestReport:
    """Ingest ``source`` (CSV/feather/parquet with a CIF column, a folder of CIF/POSCAR files, an extended
    XYZ file or an ASE database; path or fsspec URL) into ``store`` (a store or a URL; created if absent).
    ``source_type="vasp"`` / ``"calypso"`` reads structure-search results instead (VASP calculation folders,
    CALYPSO search folders; pressure from PSTRESS; see :mod:`xtal_data.search_sources`).

    Args:
        pressure: constant pressure in GPa; required when the source has no ``pressure_column``. When both
            exist they must agree.
        id_column: table column with unique ids (default: material_id, id or name).
        workers: parsing processes (default: all cores; 1 parses in this process).
        batch_size: structures per append transaction.
        max_atoms: structures with more atoms are skipped (counted by reason); None: no limit.
        keep_fraction: (calypso) keep the lowest-enthalpy-per-atom fraction of each search (paper: 0.5).
        require_converged: (vasp, calypso) skip unfinished / unconverged runs (else keep, ``converged = 0``).

    Ids already in the store, or repeated in the source, are skipped and reported, never doubled. A new
    store is created only once there is a structure to write: when nothing can be ingested (an empty
    source, or every record skipped for a reason other than being stored already), NothingIngestedError
    is raised and nothing is left behind.
    """
    t0 = time.perf_counter()
    if max_atoms is not None and max_atoms < 1:
        raise ValueError(f"max_atoms must be at least 1 (or None for no limit), got {max_atoms}")
    spec = PressureSpec(constant=pressure, column=pressure_column)
    workers = (os.cpu_count() or 1) if workers is None else workers
    items, info = iter_source(
        str(source), pressure=spec, id_column=id_column, cif_column=cif_column, source_type=source_type,
        keep_fraction=keep_fraction, require_converged=require_converged, workers=workers,
    )  # fmt: skip
    target = _Target(store, storage_options)
    existing = target.existing_ids()
    seen = set(existing)
    skipped: list[Skip] = []
    n_read = n_written = 0
    pool = None
    bar = _progress_bar(progress, source, info.get("rows"))
    try:
        for batch in _batched(items, batch_size):
            n_read += len(batch)
            known = [not isinstance(it, Skip) and it.id in seen for it in batch]  # resume: no re-parsing
            texts = [it for it, k in zip(batch, known, strict=True) if isinstance(it, TextItem) and not k]
            if pool is None and workers > 1 and len(texts) >= 64:
                ctx = multiprocessing.get_context("spawn")  # never fork: zarr runs an event-loop thread
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            parsed = iter(_parsed(texts, pool, workers))
            records: list[CrystalRecord] = []
            for it, k in zip(batch, known, strict=True):
                out = it if k or not isinstance(it, TextItem) else next(parsed)
                if isinstance(out, Skip):
                    skipped.append(out)
                elif out.id in seen:
                    reason = DUPLICATE_IN_STORE if out.id in existing else DUPLICATE_IN_SOURCE
                    skipped.append(Skip(out.id, reason))
                elif max_atoms is not None and out.num_atoms > max_atoms:
                    skipped.append(Skip(out.id, _too_many(out.num_atoms, max_atoms)))
                else:
                    seen.add(out.id)
                    records.append(out)
            if records:
                opened = target.writable(source)
                n_written += opened.append(CrystalArrays.from_records(records), on_duplicate="error").written
            bar.update(len(batch))
    except BaseException:
        target.discard_if_empty()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    seconds = time.perf_counter() - t0
    report = IngestReport(str(source), target.url, n_read, n_written, tuple(skipped), seconds)
    # nothing written is an error unless the source's records are already in the store (a re-run; the
    # source may still hold records skipped for other reasons, e.g. unconverged calculations)
    if n_written == 0 and not any(s.reason == DUPLICATE_IN_STORE for s in skipped):
        raise NothingIngestedError(report)
    if target.store is not None:
        target.store.add_provenance({
            "action": "ingest", "source": str(source), "xtal_data_version": __version__, **info,
            "pressure_constant_gpa": pressure, "max_atoms": max_atoms, "read": n_read, "written": n_written,
            "skipped": report.reasons(),
        })  # fmt: skip
    return report


def _too_many(n: int, limit: int) -> str:
    return f"more atoms than the ingestion limit ({n} > {limit}; raise it with --max-atoms / max_atoms)"


class _Target:
    """The store being ingested into: opened at once if it exists, created only for the first write, and
    removed again if this ingestion created it and then failed before committing anything."""

    def __init__(self, store: str | CrystalStore, storage_options: dict | None):
        self.storage_options = storage_options
        self.created = self.started = False
        if isinstance(store, CrystalStore):
            store._require_writable()
            self.store, self.url = store, store.url
            return
        self.url = str(store)
        try:
            self.store: CrystalStore | None = CrystalStore.open(self.url, mode="r+",
                                                                storage_options=storage_options)  # fmt: skip
        except FileNotFoundError:
            require_free(self.url, storage_options)  # a non-store file or folder there: refuse before parsing
            self.store = None

    def existing_ids(self) -> frozenset[str]:
        return frozenset() if self.store is None else frozenset(self.store.ids.tolist())

    def writable(self, source: str) -> CrystalStore:
        if self.store is None:
            self.store = CrystalStore.create(self.url, storage_options=self.storage_options)
            self.created = True
        if not self.started:  # this entry stays if the ingestion is interrupted
            self.store.add_provenance({"action": "ingest started", "source": str(source)})
            self.started = True
        return self.store

    def discard_if_empty(self) -> None:
        if self.created and self.store is not None and len(self.store) == 0:
            remove_store(self.url, self.storage_options)


def _batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(enabled: bool, source: str, total: int | None):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(desc=f"ingest {os.path.basename(str(source).rstrip('/'))}", unit=" structures", total=total)
