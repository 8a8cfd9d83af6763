"""Read-back checks: every failure to decode a chunk, and every impossible value read back, becomes a
:class:`CorruptStoreError` naming the store, the array and the structure (index and id).

Bounds on what a store may hold (Å, GPa): lattice vectors finite, at most :data:`MAX_LATTICE_LENGTH` long,
cell volume above :data:`MIN_VOLUME`; fractional coordinates finite in [0, 1); atomic numbers in 1..118;
at least one atom per structure; finite pressure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from xtal_data.records import MAX_LATTICE_LENGTH, MAX_Z, MIN_VOLUME, CrystalArrays


class CorruptStoreError(ValueError):
    """A store's data cannot be decoded or reads back impossible values (the message names where)."""


def verify_hint(url: str) -> str:
    return f"run 'xtal-data verify {url}' to list every damaged chunk and record"


@contextmanager
def reading(url: str, path: str, rows: tuple[int, int] | None = None) -> Iterator[None]:
    """Turn any error decoding ``path`` (rows ``[lo, hi)``) of store ``url`` into a CorruptStoreError."""
    try:
        yield
    except (CorruptStoreError, MemoryError):
        raise
    except Exception as err:  # zarr / numcodecs raise many types for a damaged chunk
        where = path if rows is None else f"{path} rows {rows[0]}..{rows[1] - 1}"
        message = f"store {url}: cannot read {where} ({describe(err)}); {verify_hint(url)}"
        raise CorruptStoreError(message) from err


def describe(err: BaseException) -> str:
    """A one-line account of a decoding error (a CRC-32C mismatch is called that)."""
    text = (str(err).splitlines() or [""])[0]
    if "checksum" in text.lower():
        return "CRC-32C checksum mismatch: the chunk's bytes were changed or cut short"
    return f"{type(err).__name__}: {text[:160]}"


def bad_records(table: CrystalArrays) -> list[tuple[int, str]]:
    """(row in ``table``, what is wrong) for every structure with impossible values, in row order."""
    with np.errstate(over="ignore", invalid="ignore"):  # damaged values may be huge
        return _bad_records(table)


def _bad_records(table: CrystalArrays) -> list[tuple[int, str]]:
    c = len(table)
    problems: dict[int, str] = {}

    def flag(mask: np.ndarray, text) -> None:
        for i in np.flatnonzero(mask):
            problems.setdefault(int(i), text(int(i)))

    lat = np.asarray(table.lattice, dtype=np.float64).reshape(c, 3, 3)
    finite = np.isfinite(lat).all(axis=(1, 2))
    flag(~finite, lambda i: f"a non-finite lattice {lat[i].tolist()}")
    lengths = np.linalg.norm(np.where(finite[:, None, None], lat, 0.0), axis=2)  # (C, 3)
    flag(lengths.max(axis=1, initial=0) > MAX_LATTICE_LENGTH,
         lambda i: f"an absurd lattice (vector lengths {lengths[i].round(3).tolist()} Å, "
                   f"limit {MAX_LATTICE_LENGTH:g})")  # fmt: skip
    volume = np.abs(np.linalg.det(np.where(finite[:, None, None], lat, 0.0))) if c else np.zeros(0)
    flag(volume < MIN_VOLUME, lambda i: f"a zero or degenerate cell volume ({volume[i]:.3g} Å^3)")
    flag(~np.isfinite(table.pressure), lambda i: f"pressure {table.pressure[i]} GPa")
    flag(table.num_atoms < 1, lambda i: f"{table.num_atoms[i]} atoms")
    owner = np.repeat(np.arange(c), np.maximum(table.num_atoms, 0))  # (N,) structure of each atom
    if owner.size == len(table.atomic_numbers):
        z, frac = table.atomic_numbers, table.frac_coords
        bad_z = (z < 1) | (z > MAX_Z)
        flag(np.bincount(owner[bad_z], minlength=c) > 0, lambda i: "atomic numbers outside 1..118")
        bad_f = ~(np.isfinite(frac) & (frac >= 0.0) & (frac < 1.0)).all(axis=1)
        flag(np.bincount(owner[bad_f], minlength=c) > 0,
             lambda i: "fractional coordinates outside [0, 1) or not finite")  # fmt: skip
    return sorted(problems.items())


def check_read(url: str, table: CrystalArrays, indices: np.ndarray) -> CrystalArrays:
    """Return ``table`` (structures ``indices`` of store ``url``) or raise CorruptStoreError naming the
    first damaged structures."""
    bad = bad_records(table)
    if not bad:
        return table
    shown = "; ".join(
        f"structure {int(indices[i])} ({str(table.ids[i])!r}) has {what}" for i, what in bad[:3]
    )
    more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
    raise CorruptStoreError(f"store {url} is damaged: {shown}{more}; {verify_hint(url)}")
