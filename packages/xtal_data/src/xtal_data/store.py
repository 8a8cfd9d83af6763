"""The Zarr (v3) crystal store on any fsspec URL; layout documented in docs/xtal_data_format.md.

A store is a Zarr group. Per-structure arrays have C rows, per-atom arrays N rows; ``offset[i]`` is the first
atom of structure i. The group attribute ``xtal_data.num_structures`` is the commit marker: it is written
last, after every array of an append is in place, and readers never look past it. An interrupted append
therefore leaves the store as it was before that append (its partial tail is overwritten by the next one).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from xtal_data import __version__
from xtal_data.integrity import CorruptStoreError, check_read, reading
from xtal_data.records import CrystalArrays, CrystalRecord, as_str_array, concat_ranges

SCHEMA_NAME = "xtal-data"
SCHEMA_VERSION = 1
ATTR = "xtal_data"
PER_STRUCTURE = ("id", "formula", "num_atoms", "offset", "lattice", "pressure")
DISK_DTYPE = {
    "num_atoms": np.int32,
    "offset": np.int64,
    "lattice": np.float64,
    "pressure": np.float64,
    "atoms/atomic_numbers": np.uint8,
    "atoms/frac_coords": np.float64,
}


@dataclass(frozen=True)
class StoreConfig:
    """Chunking and compression of a new store (defaults chosen by benchmarks/xtal_data/chunking.py).

    Attributes:
        chunk_structures: rows per chunk of the per-structure arrays.
        chunk_atoms: rows per chunk of the per-atom arrays.
        cname, clevel, shuffle: Blosc compressor settings.
        checksum: append a CRC-32C to every chunk (zarr's ``crc32c`` codec), so a damaged chunk is an
            error on read instead of wrong numbers. Stores written before checksums read as ``False``.
    """

    chunk_structures: int = 4096
    chunk_atoms: int = 32768
    cname: str = "zstd"
    clevel: int = 5
    shuffle: str = "noshuffle"
    checksum: bool = True

    def codec(self) -> BloscCodec:
        return BloscCodec(cname=self.cname, clevel=self.clevel, shuffle=self.shuffle)

    def compressors(self) -> list:
        """The bytes-to-bytes codec chain of every array: Blosc, then (with ``checksum``) CRC-32C."""
        return [self.codec(), Crc32cCodec()] if self.checksum else [self.codec()]


@dataclass(frozen=True)
class AppendResult:
    """Outcome of :meth:`CrystalStore.append`: how many were written and which ids were skipped."""

    written: int
    duplicate_ids: tuple[str, ...]


def _storage_options(url: str, storage_options: dict | None) -> dict | None:
    if storage_options is None and url.startswith("file://"):
        return {"auto_mkdir": True}  # zarr 3 over fsspec's local filesystem cannot create folders otherwise
    return storage_options


def _exists_message(url: str, storage_options: dict | None) -> str:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if fs.exists(f"{path.rstrip('/')}/zarr.json"):
        return f"a store already exists at {url}; write to a new path, or delete that store first"
    kind = "folder" if fs.isdir(path) else "file"
    return f"{url} is an existing {kind} that is not an xtal-data store; choose a new store path"


def require_free(url: str, storage_options: dict | None = None) -> None:
    """Raise FileExistsError (saying what is there) unless ``url`` is absent or an empty folder."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if fs.exists(path) and not (fs.isdir(path) and not fs.ls(path)):
        raise FileExistsError(_exists_message(url, storage_options))


def remove_store(url: str, storage_options: dict | None = None) -> None:
    """Delete the store at ``url`` (used only for a store this process created and never filled)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def _open_group(url: str, mode: str, storage_options: dict | None) -> zarr.Group:
    so = _storage_options(str(url), storage_options)
    kwargs = {"storage_options": so} if so else {}
    return zarr.open_group(str(url), mode=mode, zarr_format=3, **kwargs)


class CrystalStore:
    """A crystal store; create with :meth:`create`, open with :meth:`open`.

    ``len(store)`` is the number of committed structures; ``store[i]`` a :class:`CrystalRecord`;
    ``store.read(indices)`` a :class:`CrystalArrays`.
    """

    def __init__(self, group: zarr.Group, url: str, read_only: bool):
        self._group = group
        self.url = url
        self.read_only = read_only
        meta = group.attrs.asdict().get(ATTR)
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA_NAME:
            raise ValueError(f"{url} is not an xtal-data store (no '{ATTR}' attributes)")
        if int(meta.get("schema_version", 0)) > SCHEMA_VERSION:
            raise ValueError(
                f"{url} has schema version {meta['schema_version']}, newer than this xtal-data "
                f"({__version__}) understands ({SCHEMA_VERSION}); upgrade xtal-data"
            )
        self._meta = meta
        self._cache: dict[str, np.ndarray] = {}
        self._id_set: set[str] | None = None  # ids of this store, kept up to date by this object's appends

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        url: str,
        *,
        config: StoreConfig = StoreConfig(),
        overwrite: bool = False,
        storage_options: dict | None = None,
    ) -> CrystalStore:
        """Create an empty store at ``url`` (path or fsspec URL). Refuses anything already there (a store,
        or a file or folder that is not one) unless ``overwrite``."""
        url = str(url)
        try:
            group = _open_group(url, "w" if overwrite else "w-", storage_options)
        except (FileExistsError, zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError) as err:
            raise FileExistsError(_exists_message(url, storage_options)) from err
        comp = config.compressors()
        cs, ca = config.chunk_structures, config.chunk_atoms
        for name in ("id", "formula"):
            group.create_array(name, shape=(0,), chunks=(cs,), dtype=str, compressors=comp)
        group.create_array("num_atoms", shape=(0,), chunks=(cs,), dtype=np.int32, compressors=comp)
        group.create_array("offset", shape=(0,), chunks=(cs,), dtype=np.int64, compressors=comp)
        group.create_array("lattice", shape=(0, 3, 3), chunks=(cs, 3, 3), dtype=np.float64, compressors=comp)
        group.create_array("pressure", shape=(0,), chunks=(cs,), dtype=np.float64, compressors=comp)
        atoms = group.create_group("atoms")
        atoms.create_array("atomic_numbers", shape=(0,), chunks=(ca,), dtype=np.uint8, compressors=comp)
        atoms.create_array("frac_coords", shape=(0, 3), chunks=(ca, 3), dtype=np.float64, compressors=comp)
        group.create_group("properties")
        group.create_group("splits")
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        meta = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "created": now,
            "created_by": f"xtal-data {__version__}",
            "units": {"lattice": "angstrom", "pressure": "GPa", "frac_coords": "fractional, [0, 1)"},
            "config": {"chunk_structures": cs, "chunk_atoms": ca, "cname": config.cname,
                       "clevel": config.clevel, "shuffle": config.shuffle, "checksum": config.checksum},
            "num_structures": 0,
            "num_atoms": 0,
            "properties": {},
            "splits": {},
            "provenance": [],
        }  # fmt: skip
        group.attrs.update({ATTR: meta})
        return cls(group, url, read_only=False)

    @classmethod
    def open(cls, url: str, *, mode: str = "r", storage_options: dict | None = None) -> CrystalStore:
        """Open an existing store; ``mode`` is ``"r"`` (read only) or ``"r+"`` (append, split)."""
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
        url = str(url)
        try:
            group = _open_group(url, mode, storage_options)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
            raise FileNotFoundError(f"no xtal-data store at {url}") from err
        except (FileExistsError, NotADirectoryError) as err:  # a plain file at url
            raise FileNotFoundError(f"no xtal-data store at {url} (a file is there)") from err
        except (ValueError, TypeError, KeyError) as err:  # unreadable zarr.json
            raise CorruptStoreError(f"store {url}: cannot read its metadata ({err})") from err
        return cls(group, url, read_only=(mode == "r"))

    # ------------------------------------------------------------------ metadata
    def __len__(self) -> int:
        return int(self._meta["num_structures"])

    @property
    def num_atoms_total(self) -> int:
        return int(self._meta["num_atoms"])

    @property
    def property_names(self) -> dict[str, str]:
        """Property name -> ``"float"`` or ``"str"``."""
        return dict(self._meta["properties"])

    @property
    def config(self) -> StoreConfig:
        """Chunking and compression this store was created with."""
        return StoreConfig(**{"checksum": False, **self._meta["config"]})

    @property
    def provenance(self) -> list[dict]:
        return list(self._meta["provenance"])

    @property
    def attributes(self) -> dict:
        """All store-level metadata (schema, units, config, counts, provenance, splits)."""
        return dict(self._meta)

    def _write_meta(self, **updates: Any) -> None:
        meta = {**self._meta, **updates}
        self._group.attrs.update({ATTR: meta})  # the single commit point
        self._meta = meta

    def add_provenance(self, entry: dict) -> None:
        """Append one provenance entry (JSON-serialisable dict) to the store attributes."""
        self._require_writable()
        stamp = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        self._write_meta(provenance=[*self._meta["provenance"], {**stamp, **entry}])

    def _require_writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"store {self.url} is open read-only; open it with mode='r+'")

    # ------------------------------------------------------------------ reading
    def _array(self, path: str, stop: int) -> np.ndarray:
        key = f"{path}:{stop}"
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if not k.startswith(path + ":")}
            with reading(self.url, path, (0, stop)):
                self._cache[key] = np.asarray(self._group[path][:stop])
        return self._cache[key]

    @property
    def ids(self) -> np.ndarray:
        """(C,) str ids of the committed structures."""
        return as_str_array(self._array("id", len(self)))

    @property
    def num_atoms(self) -> np.ndarray:
        """(C,) int64 atoms per structure."""
        return self._array("num_atoms", len(self)).astype(np.int64)

    @property
    def formula(self) -> np.ndarray:
        """(C,) str reduced formulas."""
        return as_str_array(self._array("formula", len(self)))

    @property
    def pressure(self) -> np.ndarray:
        """(C,) float64 pressures in GPa."""
        return self._array("pressure", len(self))

    def get_property(self, name: str) -> np.ndarray:
        """(C,) values of one property (float64 with NaN, or str with "")."""
        if name not in self._meta["properties"]:
            raise KeyError(f"store {self.url} has no property {name!r}; it has {sorted(self.property_names)}")
        out = self._array(f"properties/{name}", len(self))
        return as_str_array(out) if self._meta["properties"][name] == "str" else out

    def read(self, indices: slice | Sequence[int] | np.ndarray | None = None) -> CrystalArrays:
        """Read structures (all by default; a slice, or integer indices in any order) into memory."""
        c = len(self)
        if indices is None:
            indices = slice(0, c)
        if isinstance(indices, slice):
            start, stop, step = indices.indices(c)
            if step != 1:
                return self.read(np.arange(start, stop, step))
            return self._read_range(start, stop)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -c or idx.max() >= c):
            raise IndexError(f"index out of range for a store of {c} structures")
        idx = np.where(idx < 0, idx + c, idx)
        if idx.size == 0:
            return self._read_range(0, 0)
        order = np.unique(idx)
        lo, hi = int(order[0]), int(order[-1]) + 1
        if (hi - lo) <= 4 * order.size:  # dense enough: read the span, then pick
            block = self._read_range(lo, hi)
            return block.take(idx - lo)
        return self._read_points(idx)

    def _get(self, path: str, sel: slice | tuple, rows: tuple[int, int] | None) -> np.ndarray:
        """Rows of one array; a chunk that cannot be decoded is a CorruptStoreError naming it."""
        with reading(self.url, path, rows):
            arr = self._group[path]
            return np.asarray(arr.get_orthogonal_selection(sel) if isinstance(sel, tuple) else arr[sel])

    def _atom_range(self, offsets: np.ndarray, num_atoms: np.ndarray, rows: np.ndarray) -> None:
        """Refuse atom counts / offsets that point outside the committed atoms (damaged index arrays)."""
        end = offsets + num_atoms
        bad = np.flatnonzero((num_atoms < 1) | (offsets < 0) | (end > self.num_atoms_total))
        if bad.size:
            i = int(rows[bad[0]])
            raise CorruptStoreError(
                f"store {self.url} is damaged: structure {i} has {int(num_atoms[bad[0]])} atoms at offset "
                f"{int(offsets[bad[0]])} of {self.num_atoms_total}; run 'xtal-data verify {self.url}'"
            )

    def _read_range(self, start: int, stop: int, *, check: bool = True) -> CrystalArrays:
        rows, sel = (start, stop), slice(start, stop)
        num_atoms = self._get("num_atoms", sel, rows).astype(np.int64)
        offsets = self._get("offset", sel, rows).astype(np.int64)
        a0 = int(offsets[0]) if stop > start else 0
        self._atom_range(offsets, num_atoms, np.arange(start, stop))
        if stop > start and not np.array_equal(offsets - a0, np.cumsum(num_atoms) - num_atoms):
            raise CorruptStoreError(
                f"store {self.url} is damaged: offsets of structures {start}..{stop - 1} "
                f"do not follow their atom counts; run 'xtal-data verify {self.url}'"
            )
        a1 = a0 + int(num_atoms.sum())
        props = {name: self._read_prop(name, sel) for name in self._meta["properties"]}
        table = CrystalArrays(
            ids=as_str_array(self._get("id", sel, rows)),
            formula=as_str_array(self._get("formula", sel, rows)),
            num_atoms=num_atoms,
            atomic_numbers=self._get("atoms/atomic_numbers", slice(a0, a1), (a0, a1)).astype(np.int64),
            frac_coords=self._get("atoms/frac_coords", slice(a0, a1), (a0, a1)).astype(np.float64),
            lattice=self._get("lattice", sel, rows).astype(np.float64),
            pressure=self._get("pressure", sel, rows).astype(np.float64),
            properties=props,
        )  # fmt: skip
        return check_read(self.url, table, np.arange(start, stop)) if check else table

    def _read_points(self, idx: np.ndarray) -> CrystalArrays:
        """Scattered structures: per-structure columns come from an in-memory cache (loaded on first use,
        roughly 100 bytes per structure); atoms are read from only the chunks that hold them."""
        col = lambda path: self._array(path, len(self))[idx]  # noqa: E731
        num_atoms = col("num_atoms").astype(np.int64)
        offsets = col("offset").astype(np.int64)
        self._atom_range(offsets, num_atoms, idx)
        atom_idx = concat_ranges(offsets, num_atoms)
        atom_rows = (int(atom_idx.min()), int(atom_idx.max()) + 1) if atom_idx.size else (0, 0)
        props = {}
        for name, kind in self._meta["properties"].items():
            values = col(f"properties/{name}")
            props[name] = as_str_array(values) if kind == "str" else values.astype(np.float64)
        table = CrystalArrays(
            ids=as_str_array(col("id")),
            formula=as_str_array(col("formula")),
            num_atoms=num_atoms,
            atomic_numbers=self._get("atoms/atomic_numbers", (atom_idx,), atom_rows).astype(np.int64),
            frac_coords=self._get("atoms/frac_coords", (atom_idx, slice(None)), atom_rows).astype(np.float64),
            lattice=col("lattice").astype(np.float64),
            pressure=col("pressure").astype(np.float64),
            properties=props,
        )
        return check_read(self.url, table, idx)

    def _read_prop(self, name: str, sel: slice) -> np.ndarray:
        out = self._get(f"properties/{name}", sel, (sel.start, sel.stop))
        return as_str_array(out) if self._meta["properties"][name] == "str" else out.astype(np.float64)

    def __getitem__(self, i: int) -> CrystalRecord:
        c = len(self)
        if not -c <= i < c:
            raise IndexError(f"structure {i} out of range for a store of {c}")
        return self._read_points(np.array([i % c])).record(0)

    def __iter__(self):
        chunk = int(self._meta["config"]["chunk_structures"])
        for start in range(0, len(self), chunk):
            yield from self._read_range(start, min(start + chunk, len(self)))

    def __repr__(self) -> str:
        return f"CrystalStore({self.url!r}, structures={len(self)}, atoms={self.num_atoms_total})"

    # ------------------------------------------------------------------ writing
    def append(
        self, table: CrystalArrays | Sequence[CrystalRecord], *, on_duplicate: str = "skip"
    ) -> AppendResult:
        """Append structures as one transaction (committed by the final attribute write).

        ``on_duplicate``: ``"skip"`` drops (and returns) ids already in the store or repeated within
        ``table``; ``"error"`` raises ValueError listing them and writes nothing.
        """
        self._require_writable()
        if on_duplicate not in ("skip", "error"):
            raise ValueError(f"on_duplicate must be 'skip' or 'error', got {on_duplicate!r}")
        if not isinstance(table, CrystalArrays):
            table = CrystalArrays.from_records(list(table))
        ids = as_str_array(table.ids)
        if self._id_set is None:
            self._id_set = set(self.ids.tolist())
        stored, new = self._id_set, set()
        keep, dups = [], []
        for i, ident in enumerate(ids.tolist()):
            if ident in stored or ident in new:
                dups.append(ident)
            else:
                new.add(ident)
                keep.append(i)
        if dups and on_duplicate == "error":
            shown = ", ".join(dups[:10]) + (" ..." if len(dups) > 10 else "")
            raise ValueError(f"{len(dups)} ids already in store {self.url} (or repeated): {shown}")
        if len(keep) < len(table):
            table = table.take(keep)
        if len(table) == 0:
            return AppendResult(0, tuple(dups))
        self._write_table(table)
        return AppendResult(len(table), tuple(dups))

    def _write_table(self, t: CrystalArrays) -> None:
        g, c0, n0 = self._group, len(self), self.num_atoms_total
        c1, n1 = c0 + len(t), n0 + int(t.num_atoms.sum())
        kinds = dict(self._meta["properties"])
        for name, values in t.properties.items():
            kind = "str" if values.dtype.kind in "UTO" else "float"
            if "/" in name or not name or name.startswith("__"):
                raise ValueError(f"invalid property name {name!r} (no '/', not empty, no leading '__')")
            if kinds.setdefault(name, kind) != kind:
                raise ValueError(
                    f"property {name!r} is {kinds[name]} in the store but {kind} in the new data"
                )
        if not np.all((t.atomic_numbers >= 1) & (t.atomic_numbers <= 118)):
            raise ValueError("atomic numbers must be in 1..118")
        columns = {
            "id": as_str_array(t.ids), "formula": as_str_array(t.formula), "num_atoms": t.num_atoms,
            "offset": n0 + t.offsets[:-1], "lattice": t.lattice, "pressure": t.pressure,
            "atoms/atomic_numbers": t.atomic_numbers, "atoms/frac_coords": t.frac_coords,
        }  # fmt: skip
        for path, values in columns.items():
            arr = g[path]
            lo, hi = (n0, n1) if path.startswith("atoms/") else (c0, c1)
            arr.resize((hi, *arr.shape[1:]))
            arr[lo:hi] = np.asarray(values, dtype=DISK_DTYPE.get(path, values.dtype))
        comp = self.config.compressors()
        chunks = (int(self._meta["config"]["chunk_structures"]),)
        for name, kind in kinds.items():
            path = f"properties/{name}"
            fill = "" if kind == "str" else np.nan
            if name not in self._meta["properties"]:  # new (or left over by an interrupted append)
                dtype = str if kind == "str" else np.float64
                arr = g.create_array(path, shape=(c1,), chunks=chunks, dtype=dtype, compressors=comp,
                                     overwrite=True)  # fmt: skip
                if c0:
                    arr[:c0] = np.full(c0, fill, dtype=object if kind == "str" else np.float64)
            else:
                arr = g[path]
                arr.resize((c1,))
            values = t.properties.get(name)
            if values is None:
                values = np.full(len(t), fill, dtype=object if kind == "str" else np.float64)
            arr[c0:c1] = as_str_array(values) if kind == "str" else values.astype(np.float64)
        self._cache.clear()
        self._write_meta(num_structures=c1, num_atoms=n1, properties=kinds)
        if self._id_set is not None:
            self._id_set.update(as_str_array(t.ids).tolist())

    # ------------------------------------------------------------------ splits
    @property
    def split_names(self) -> list[str]:
        return sorted(self._meta["splits"])

    def write_split(self, name: str, parts: dict[str, np.ndarray], info: dict | None = None) -> None:
        """Store a split: part name -> (k,) int64 structure indices (disjoint, within the store)."""
        self._require_writable()
        c, seen = len(self), np.zeros(len(self), dtype=bool)
        for part, idx in parts.items():
            idx = np.asarray(idx, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= c):
                raise ValueError(f"split {name!r} part {part!r} has indices outside 0..{c - 1}")
            if seen[idx].any() or len(np.unique(idx)) != idx.size:
                raise ValueError(f"split {name!r}: part {part!r} overlaps another part or repeats an index")
            seen[idx] = True
        group = self._group.require_group("splits").require_group(name)
        for part, idx in parts.items():
            group.create_array(part, data=np.asarray(idx, dtype=np.int64), overwrite=True,
                               compressors=self.config.compressors())  # fmt: skip
        entry = {"parts": {p: int(len(i)) for p, i in parts.items()}, "num_structures": c, **(info or {})}
        self._write_meta(splits={**self._meta["splits"], name: entry})

    def split(self, name: str) -> dict[str, np.ndarray]:
        """Part name -> (k,) int64 indices of a stored split."""
        if name not in self._meta["splits"]:
            raise KeyError(f"store {self.url} has no split {name!r}; it has {self.split_names}")
        parts = self._meta["splits"][name]["parts"]
        out = {p: self._get(f"splits/{name}/{p}", slice(None), None).astype(np.int64) for p in parts}
        for p, idx in out.items():
            if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
                raise CorruptStoreError(
                    f"store {self.url}: split {name!r} part {p!r} holds indices outside "
                    f"0..{len(self) - 1}; run 'xtal-data verify {self.url}'"
                )
        return out
