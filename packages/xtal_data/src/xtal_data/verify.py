"""``xtal-data verify``: decode every chunk of a store and check every structure read back.

Chunks of stores written with checksums (the default since checksums were added) carry a CRC-32C, so any
damaged byte is found; older stores are checked by decoding and by the value bounds of
:mod:`xtal_data.integrity` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xtal_data.integrity import CorruptStoreError, bad_records, describe
from xtal_data.store import PER_STRUCTURE, CrystalStore

ATOM_ARRAYS = ("atoms/atomic_numbers", "atoms/frac_coords")


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`verify_store`.

    Attributes:
        url: the store.
        checksummed: whether its chunks carry CRC-32C checksums.
        chunks: number of chunks decoded.
        structures: number of committed structures checked.
        problems: one line per damaged chunk or structure, naming the array, chunk file, rows and ids.
    """

    url: str
    checksummed: bool
    chunks: int
    structures: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        sums = "with CRC-32C checksums" if self.checksummed else "without checksums (older store)"
        head = f"store {self.url}: {self.structures} structures, {self.chunks} chunks decoded, {sums}"
        if self.ok:
            return f"{head}\nok: no damaged chunk or structure"
        return "\n".join([head, f"{len(self.problems)} problems:", *(f"  {p}" for p in self.problems)])


def _chunk_key(path: str, k: int, ndim: int) -> str:
    return f"{path}/c/" + "/".join([str(k)] + ["0"] * (ndim - 1))


def _names(store: CrystalStore, ids: np.ndarray | None, lo: int, hi: int) -> str:
    if ids is None or hi <= lo:
        return ""
    first, last = str(ids[lo]), str(ids[hi - 1])
    return f", ids {first!r}..{last!r}" if hi - lo > 1 else f", id {first!r}"


def _decode_all(store: CrystalStore, path: str, rows: int, rows_of) -> tuple[int, list[str]]:
    """Decode every chunk of ``path`` up to ``rows`` rows; (chunks decoded, problem lines)."""
    try:
        arr = store._group[path]
    except Exception as err:  # a missing or unreadable array
        return 0, [f"{path}: array missing or unreadable ({type(err).__name__}: {err})"]
    step, problems = int(arr.chunks[0]), []
    n = math.ceil(min(rows, arr.shape[0]) / step)
    if arr.shape[0] < rows:
        problems.append(f"{path}: has {arr.shape[0]} rows, the store commits {rows}")
    for k in range(n):
        lo, hi = k * step, min((k + 1) * step, rows)
        try:
            arr[lo:hi]
        except Exception as err:  # numcodecs / zarr raise many types for a damaged chunk
            problems.append(f"{_chunk_key(path, k, arr.ndim)} (rows {lo}..{hi - 1}{rows_of(lo, hi)}): "
                            f"cannot decode ({describe(err)})")  # fmt: skip
    return n, problems


def verify_store(store: CrystalStore, *, progress: bool | None = None) -> VerifyReport:
    """Decode every chunk of every array of ``store`` and check every committed structure's values.

    ``progress``: a bar over the arrays on stderr (None: when stderr is a terminal)."""
    import sys

    from tqdm.auto import tqdm

    c, n_atoms = len(store), store.num_atoms_total
    try:
        ids = store.ids
    except CorruptStoreError:
        ids = None
    try:
        first_atom = store._array("offset", c).astype(np.int64)
    except CorruptStoreError:
        first_atom = None

    def structures(lo: int, hi: int) -> str:
        return f", structures {lo}..{hi - 1}{_names(store, ids, lo, hi)}"

    def atoms(lo: int, hi: int) -> str:
        if first_atom is None or not c:
            return ""
        s0, s1 = np.searchsorted(first_atom, [lo, hi - 1], side="right") - 1
        return f", atoms of structures {max(s0, 0)}..{s1}{_names(store, ids, max(s0, 0), s1 + 1)}"

    total, problems = 0, []
    paths = [(p, c, structures) for p in PER_STRUCTURE] + [(p, n_atoms, atoms) for p in ATOM_ARRAYS]
    paths += [(f"properties/{name}", c, structures) for name in store.property_names]
    for name in store.split_names:
        for part in store.attributes["splits"][name]["parts"]:
            path = f"splits/{name}/{part}"
            paths.append((path, int(store.attributes["splits"][name]["parts"][part]), lambda lo, hi: ""))
    disable = None if progress is None else not progress
    for path, rows, rows_of in tqdm(paths, desc="verify", unit="array", disable=disable, file=sys.stderr):
        n, found = _decode_all(store, path, rows, rows_of)
        total += n
        problems += found
    if not problems:
        problems += _check_values(store)
    return VerifyReport(store.url, store.config.checksum, total, c, tuple(problems))


def _check_values(store: CrystalStore) -> list[str]:
    """Structures whose values are impossible (non-finite or absurd lattice, bad atoms, broken offsets)."""
    problems = []
    step = store.config.chunk_structures
    for start in range(0, len(store), step):
        stop = min(start + step, len(store))
        try:
            table = store._read_range(start, stop, check=False)
        except CorruptStoreError as err:
            problems.append(str(err).split("; run ")[0])
            continue
        for i, what in bad_records(table):
            problems.append(f"structure {start + i} ({str(table.ids[i])!r}) has {what}")
    for name in store.split_names:
        try:
            store.split(name)
        except CorruptStoreError as err:
            problems.append(str(err).split("; run ")[0])
    return problems
