"""Readers that turn a source (table, folder, extended XYZ, ASE database) into items to ingest.

A reader yields :class:`TextItem` (structure text still to parse, e.g. a CIF), ready
:class:`~xtal_data.records.CrystalRecord` objects, or :class:`Skip` entries (a record that cannot be used,
with its id and the reason). Every source accepts a local path or an fsspec URL.
"""

from __future__ import annotations

import csv
import io
import math
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
import numpy as np

from xtal_data.records import CrystalRecord, PropertyValue

TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".feather", ".parquet")
XYZ_SUFFIXES = (".xyz", ".extxyz")
DB_SUFFIXES = (".db",)
ID_COLUMNS = ("material_id", "id", "name")


@dataclass(frozen=True)
class TextItem:
    """One structure as text (``fmt`` is ``"cif"`` or ``"poscar"``), with pressure (GPa) and properties."""

    id: str
    fmt: str
    text: str
    pressure: float
    properties: dict[str, PropertyValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """A record that was not ingested: its id (or position) and why."""

    id: str
    reason: str


@dataclass(frozen=True)
class PressureSpec:
    """Where pressures come from: a constant (GPa), a column / info key, or both (then they must agree)."""

    constant: float | None = None
    column: str | None = "pressure"

    def resolve(self, value: object, where: str) -> float:
        """Pressure of one record from its column value (None: the source has no such column)."""
        if value is None:
            if self.constant is None:
                raise ValueError(f"{where}: no pressure; pass a constant pressure (GPa) or a pressure column")
            return float(self.constant)
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"{where}: pressure value is missing")
        try:
            p = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: pressure is not a number ({value!r})") from None
        if not math.isfinite(p):
            what = "missing" if math.isnan(p) else f"not finite ({p})"
            raise ValueError(f"{where}: pressure value is {what}")
        if self.constant is not None and p != self.constant:
            raise ValueError(
                f"{where}: pressure column disagrees with the constant given "
                f"(column {p} GPa, constant {self.constant} GPa)"
            )
        return p


def _structure_format(name: str) -> str | None:
    """``"cif"`` / ``"poscar"`` / None: ``xtal_eval.structure_files.structure_format`` (imported on use:
    xtal-eval's package import loads pymatgen, which plain store work does not need)."""
    from xtal_eval.structure_files import structure_format

    return structure_format(name)


def source_kind(source: str) -> str:
    """``"table"``, ``"folder"``, ``"xyz"``, ``"ase-db"`` or ``"structure-file"`` for a path or URL."""
    fs, path = fsspec.core.url_to_fs(str(source))
    if not fs.exists(path):
        raise FileNotFoundError(f"source not found: {source}")
    if fs.isdir(path):
        return "folder"
    name = posixpath.basename(path).lower()
    if name.endswith(TABLE_SUFFIXES):
        return "table"
    if name.endswith(XYZ_SUFFIXES):
        return "xyz"
    if name.endswith(DB_SUFFIXES):
        return "ase-db"
    from xtal_eval.structure_files import STRUCTURE_SUFFIXES

    if _structure_format(name):
        return "structure-file"
    known = ", ".join(TABLE_SUFFIXES + XYZ_SUFFIXES + DB_SUFFIXES + tuple(STRUCTURE_SUFFIXES))
    raise ValueError(
        f"cannot tell the format of {source}: expected a folder, a file ending in {known}, or POSCAR*"
    )


# ---------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Table:
    """A table read from CSV/feather/parquet: named columns as (R,) arrays, plus unparsable rows."""

    columns: dict[str, np.ndarray]
    bad_rows: tuple[Skip, ...]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def _convert_column(values: list[str]) -> np.ndarray:
    """CSV text column -> float64 (empty -> NaN) when every non-empty cell is a number, else str."""
    try:
        return np.array([float(v) if v.strip() else np.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def read_csv(source: str, *, id_column: str | None = None) -> Table:
    """Read a CSV with the standard library so that a truncated or ragged row is reported, not fatal."""
    with fsspec.open(str(source), "rt", compression="infer", newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if not header:
            raise ValueError(f"{source}: empty CSV (no header row)")
        good: list[list[str]] = []
        bad: list[Skip] = []
        id_pos = _find_id_position(header, id_column, source)
        for line_no, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                ident = row[id_pos] if id_pos is not None and id_pos < len(row) else f"row {line_no - 1}"
                detail = f"row {line_no - 1} has {len(row)} fields, header has {len(header)}"
                bad.append(Skip(str(ident), f"wrong number of CSV fields ({detail})"))
                continue
            good.append(row)
    cols = {name or f"Unnamed: {i}": [r[i] for r in good] for i, name in enumerate(header)}
    return Table({k: _convert_column(v) for k, v in cols.items()}, tuple(bad))


def _find_id_position(header: list[str], id_column: str | None, source: str) -> int | None:
    if id_column is not None:
        if id_column not in header:
            raise ValueError(f"{source}: no id column {id_column!r}; columns are {header}")
        return header.index(id_column)
    return next((header.index(c) for c in ID_COLUMNS if c in header), None)


def read_table(source: str) -> Table:
    """Read CSV (stdlib csv), feather or parquet (pandas + pyarrow) from a path or URL."""
    name = str(source).lower()
    if ".csv" in posixpath.basename(name):
        return read_csv(source)
    import pandas as pd

    with fsspec.open(str(source), "rb") as fh:
        try:
            df = pd.read_feather(fh) if name.endswith(".feather") else pd.read_parquet(fh)
        except Exception as err:  # pyarrow raises several types for damaged files
            raise ValueError(f"{source}: cannot read table ({type(err).__name__}: {err})") from err
    columns = {}
    for col in df.columns:
        values = df[col].to_numpy()
        if values.dtype.kind in "biuf":
            columns[str(col)] = values.astype(np.float64)
        else:
            columns[str(col)] = np.array(
                [v if isinstance(v, str) else _to_text(v) for v in values], dtype=object
            )
    return Table(columns, ())


def _to_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value.tolist() if hasattr(value, "tolist") else value)


def iter_table(
    table: Table, *, pressure: PressureSpec, id_column: str | None, cif_column: str, source: str
) -> tuple[Iterator[TextItem | Skip], dict]:
    """Rows of a table as TextItems; returns (iterator, info) where info lists the columns used/ignored."""
    names = list(table.columns)
    id_col = id_column or next((c for c in ID_COLUMNS if c in names), None)
    if id_col is None or id_col not in names:
        raise ValueError(
            f"{source}: no id column (looked for {id_column or ID_COLUMNS}); columns are {names}"
        )
    if cif_column not in names:
        raise ValueError(f"{source}: no CIF column {cif_column!r}; columns are {names}")
    p_col = pressure.column if pressure.column in names else None
    if p_col is None and pressure.constant is None:
        raise ValueError(
            f"{source}: no pressure column {pressure.column!r}; give the pressure in GPa (e.g. --pressure 0)"
        )
    if p_col is not None and pressure.constant is not None:
        values = np.asarray(table.columns[p_col], dtype=np.float64)
        n_bad = int(np.sum(values != pressure.constant))
        if n_bad:
            raise ValueError(
                f"{source}: pressure column {p_col!r} says {values[values != pressure.constant][0]} GPa "
                f"in {n_bad} rows but the constant given is {pressure.constant} GPa; drop one of the two"
            )
    ignored = [c for c in names if c.startswith("Unnamed:")]
    props = [c for c in names if c not in {id_col, cif_column, p_col, *ignored}]
    info = {"id_column": id_col, "cif_column": cif_column, "pressure_column": p_col,
            "property_columns": props, "ignored_columns": ignored,
            "rows": len(table) + len(table.bad_rows)}  # fmt: skip

    def rows() -> Iterator[TextItem | Skip]:
        yield from table.bad_rows
        ids, cifs = table.columns[id_col], table.columns[cif_column]
        for r in range(len(table)):
            ident = _id_text(ids[r])
            if not ident:
                yield Skip(f"row {r + 1}", "missing id")
                continue
            text = cifs[r]
            if not isinstance(text, str) or not text.strip():
                yield Skip(ident, "missing CIF text")
                continue
            try:
                p = pressure.resolve(table.columns[p_col][r] if p_col else None, f"structure {ident!r}")
            except ValueError as err:
                yield Skip(ident, str(err))
                continue
            values = {c: _property_value(table.columns[c][r]) for c in props}
            yield TextItem(ident, "cif", text, p, values)

    return rows(), info


def _id_text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else (str(int(value)) if value.is_integer() else repr(value))
    return str(value).strip()


def _property_value(value: object) -> PropertyValue:
    return value if isinstance(value, str) else float(value)


# ---------------------------------------------------------------------- folders and single files


def iter_folder(source: str, *, pressure: PressureSpec) -> Iterator[TextItem | Skip]:
    """CIF / POSCAR files under a folder (recursively); id = path relative to the folder, no suffix."""
    fs, root = fsspec.core.url_to_fs(str(source))
    if pressure.constant is None:
        raise ValueError(
            f"{source}: structure files carry no pressure; give the pressure in GPa (--pressure)"
        )
    paths = sorted(fs.find(root)) if fs.isdir(root) else [root]
    for path in paths:
        fmt = _structure_format(posixpath.basename(path))
        if fmt is None:
            continue
        rel = posixpath.relpath(path, root) if path != root else posixpath.basename(path)
        stem = posixpath.splitext(rel)[0] if fmt == "cif" or rel.lower().endswith(".vasp") else rel
        try:
            with fs.open(path, "rb") as fh:
                text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            yield Skip(stem, f"cannot read file ({path}: {err})")
            continue
        yield TextItem(stem, fmt, text, float(pressure.constant))


# ---------------------------------------------------------------------- ASE formats (optional extra)


def _require_ase():
    try:
        import ase  # noqa: F401
    except ImportError as err:  # pragma: no cover - exercised only without ase
        raise ImportError(
            "reading extended XYZ / ASE databases needs ase: pip install 'xtal-data[ase]'"
        ) from err


def _atoms_record(atoms, ident: str, meta: dict, pressure: PressureSpec) -> CrystalRecord | Skip:
    info = dict(meta)
    raw_p = info.pop(pressure.column, None) if pressure.column else None
    props: dict[str, PropertyValue] = {}
    for k, v in info.items():
        if isinstance(v, bool | int | float | np.integer | np.floating):
            props[k] = float(v)
        elif isinstance(v, str) and k not in ID_COLUMNS:
            props[k] = v
    calc = getattr(atoms, "calc", None)
    if calc is not None and "energy" in getattr(calc, "results", {}):
        props.setdefault("energy", float(calc.results["energy"]))
    try:
        p = pressure.resolve(raw_p, f"structure {ident!r}")
        return CrystalRecord.from_ase(atoms, id=ident, pressure=p, **props)
    except ValueError as err:
        return Skip(ident, str(err))


def iter_xyz(source: str, *, pressure: PressureSpec) -> Iterator[CrystalRecord | Skip]:
    """Frames of an extended XYZ file; id from ``info`` (material_id / id / name) or ``<stem>:<frame>``.
    A frame that cannot be parsed ends the file (extended XYZ cannot resynchronise); that is reported."""
    _require_ase()
    from ase.io import iread

    stem = posixpath.splitext(posixpath.basename(str(source)))[0]
    with fsspec.open(str(source), "rt") as fh:
        text = fh.read()
    frames = iread(io.StringIO(text), index=":", format="extxyz")
    k = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as err:  # ase raises many types on malformed frames
            yield Skip(
                f"{stem}:{k}",
                f"malformed extended XYZ frame ({type(err).__name__}: {err}); rest of file not read",
            )
            return
        ident = next((str(atoms.info[c]) for c in ID_COLUMNS if c in atoms.info), f"{stem}:{k}")
        yield _atoms_record(atoms, ident, atoms.info, pressure)
        k += 1


def iter_ase_db(source: str, *, pressure: PressureSpec) -> Iterator[CrystalRecord | Skip]:
    """Rows of an ASE database (local file); id from key-value pairs (material_id / id / name) or
    ``<stem>:<row id>``; key-value pairs and the energy become properties."""
    _require_ase()
    import ase.db

    local = fsspec.open_local(f"simplecache::{source}") if "://" in str(source) else str(source)
    stem = posixpath.splitext(posixpath.basename(str(source)))[0]
    with ase.db.connect(local, type="db") as db:
        for row in db.select():
            kvp = dict(row.key_value_pairs)
            ident = next((str(kvp[c]) for c in ID_COLUMNS if c in kvp), f"{stem}:{row.id}")
            try:
                atoms = row.toatoms()
            except Exception as err:
                yield Skip(ident, f"cannot rebuild atoms ({type(err).__name__}: {err})")
                continue
            if row.get("energy") is not None:
                kvp.setdefault("energy", float(row.energy))
            yield _atoms_record(atoms, ident, kvp, pressure)
