"""Read structure sets from the formats benchmarkers have at hand.

Accepted sources (:func:`load_structures`):

* a :class:`StructureSet`, or a sequence of pymatgen ``Structure`` / ASE ``Atoms`` objects;
* a folder of CIF / POSCAR files (``*.cif``, ``*.vasp``, ``*.poscar``, ``POSCAR*``, ``CONTCAR*``), read in
  natural name order (``2.cif`` before ``10.cif``), ids = file stems;
* one CIF (every data block) or one POSCAR file;
* a CSV, feather or parquet table with a ``cif`` column (ids from ``material_id`` when present; feather and
  parquet need ``pyarrow``);
* an extended XYZ file (needs ``ase``);
* an xtal-data store, when that package is installed (``pip install xtal-data``, which depends on xtal-eval).

Every failure names the source and the item (row, file or id): nothing is skipped silently.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from xtal_eval.structure_files import parse_structures, read_structure_file, structure_format

__all__ = ["StructureSet", "load_structures", "pair_sets"]


@dataclass(frozen=True)
class StructureSet:
    """An ordered set of structures with optional ids.

    Attributes:
        structures: the structures.
        ids: one id per structure when the source carries ids (file names, an id column), else None.
        source: where they came from (for messages).
    """

    structures: tuple[Structure, ...]
    ids: tuple[str, ...] | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if self.ids is not None:
            if len(self.ids) != len(self.structures):
                raise ValueError(f"{self.source}: {len(self.ids)} ids for {len(self.structures)} structures")
            seen: set[str] = set()
            for i in self.ids:
                if i in seen:
                    raise ValueError(f"{self.source}: duplicate id {i!r}")
                seen.add(i)

    def __len__(self) -> int:
        return len(self.structures)

    def labels(self) -> list[str]:
        """Ids when present, else ``"#<index>"``: what error messages and CSV rows call each item."""
        return list(self.ids) if self.ids is not None else [f"#{i}" for i in range(len(self))]


def _check(structure: Structure, label: str) -> Structure:
    if len(structure) == 0:
        raise ValueError(f"{label}: structure has no sites")
    if not (np.isfinite(structure.frac_coords).all() and np.isfinite(structure.lattice.matrix).all()):
        raise ValueError(f"{label}: structure has non-finite coordinates or lattice")
    if structure.volume <= 0:
        raise ValueError(f"{label}: cell volume is not positive")
    return structure


def _from_cif_text(text: str, label: str) -> Structure:
    try:
        structures = parse_structures(text, "cif")
        if not structures:
            raise ValueError("no structure in CIF")
        return _check(structures[0], label)
    except ValueError as exc:
        if str(exc).startswith(label):
            raise
        raise ValueError(f"{label}: cannot read CIF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:
        raise ValueError(f"{label}: cannot read CIF ({type(exc).__name__}: {exc})") from exc


def _from_file(path: Path, label: str) -> Structure:
    return _check(read_structure_file(path, label), label)


def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


def _is_structure_file(path: Path) -> bool:
    return path.is_file() and structure_format(path.name) is not None


def _read_folder(folder: Path) -> StructureSet:
    files = sorted((p for p in folder.iterdir() if _is_structure_file(p)), key=lambda p: _natural_key(p.name))
    if not files:
        raise ValueError(f"{folder}: no CIF or POSCAR files found")
    structures = tuple(_from_file(p, f"{folder}/{p.name}") for p in files)
    return StructureSet(structures=structures, ids=tuple(p.stem for p in files), source=str(folder))


def _read_table_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        csv.field_size_limit(sys.maxsize)
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    try:
        import pyarrow.feather as feather
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise ImportError(f"{path}: reading {suffix} files needs pyarrow (pip install pyarrow)") from exc
    table = feather.read_table(path) if suffix == ".feather" else parquet.read_table(path)
    return table.to_pylist()


def _read_table(path: Path, cif_column: str, id_column: str | None, limit: int | None = None) -> StructureSet:
    rows = _read_table_rows(path)[:limit]
    if not rows:
        raise ValueError(f"{path}: table has no rows")
    if cif_column not in rows[0]:
        raise ValueError(f"{path}: no {cif_column!r} column (columns: {', '.join(map(str, rows[0]))})")
    if id_column is None and "material_id" in rows[0]:
        id_column = "material_id"
    if id_column is not None and id_column not in rows[0]:
        raise ValueError(f"{path}: no id column {id_column!r}")
    ids = [str(r[id_column]) for r in rows] if id_column else None
    structures = []
    for i, row in enumerate(rows):
        label = f"{path} row {i}" + (f" (id {ids[i]})" if ids else "")
        text = row[cif_column]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{label}: empty {cif_column!r} cell")
        structures.append(_from_cif_text(text, label))
    return StructureSet(structures=tuple(structures), ids=tuple(ids) if ids else None, source=str(path))


def _from_atoms(atoms, label: str) -> Structure:
    from pymatgen.io.ase import AseAtomsAdaptor

    if not all(atoms.pbc):
        raise ValueError(f"{label}: ASE Atoms must be periodic in all three directions")
    return _check(AseAtomsAdaptor.get_structure(atoms), label)


def _is_ase_atoms(obj) -> bool:
    atoms_cls = getattr(sys.modules.get("ase"), "Atoms", None)  # ase is loaded if the caller made Atoms
    return atoms_cls is not None and isinstance(obj, atoms_cls)


def _read_xyz(path: Path) -> StructureSet:
    try:
        from ase.io import read
    except ImportError as exc:
        raise ImportError(f"{path}: reading extended XYZ needs ase: pip install 'xtal-eval[ase]'") from exc
    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as exc:
        raise ValueError(f"{path}: cannot read extended XYZ ({type(exc).__name__}: {exc})") from exc
    structures = tuple(_from_atoms(a, f"{path} frame {i}") for i, a in enumerate(frames))
    ids = [a.info.get("id", a.info.get("material_id")) for a in frames]
    has_ids = all(i is not None for i in ids)
    return StructureSet(structures, tuple(map(str, ids)) if has_ids else None, source=str(path))


def _read_store(path: Path) -> StructureSet | None:
    """Read an xtal-data store when ``xtal_data`` is installed, else None (a lazy, optional import:
    xtal-data depends on xtal-eval, so xtal-eval cannot declare it)."""
    try:
        from xtal_data import CrystalStore
    except ImportError:
        return None
    try:
        records = list(CrystalStore.open(str(path)))
    except Exception as exc:
        raise ValueError(f"{path}: cannot read xtal-data store ({type(exc).__name__}: {exc})") from exc
    structures = tuple(_check(r.to_pymatgen(), f"{path} id {r.id}") for r in records)
    return StructureSet(structures, tuple(str(r.id) for r in records), source=str(path))


def load_structures(
    source: str | Path | StructureSet | Sequence,
    *,
    cif_column: str = "cif",
    id_column: str | None = None,
    limit: int | None = None,
) -> StructureSet:
    """Load a set of structures from any supported source (see the module docstring).

    ``limit`` reads only the first rows of a table (handy for quick looks at large files).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: an unreadable item (named), an unknown format, or an empty set.
    """
    if isinstance(source, StructureSet):
        out = source
    elif isinstance(source, (str, Path)):
        out = _load_path(Path(source), cif_column, id_column, limit)
    else:
        items = list(source)
        structures = []
        for i, item in enumerate(items):
            if isinstance(item, Structure):
                structures.append(_check(item, f"item {i}"))
            elif _is_ase_atoms(item):
                structures.append(_from_atoms(item, f"item {i}"))
            else:
                raise ValueError(
                    f"item {i}: expected a pymatgen Structure or ASE Atoms, got {type(item).__name__}"
                )
        out = StructureSet(tuple(structures))
    if len(out) == 0:
        raise ValueError(f"{out.source}: no structures (empty set)")
    return out


def _load_path(path: Path, cif_column: str, id_column: str | None, limit: int | None) -> StructureSet:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        store = _read_store(path) if (path / "zarr.json").exists() or (path / ".zgroup").exists() else None
        return store if store is not None else _read_folder(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".feather", ".parquet"):
        return _read_table(path, cif_column, id_column, limit)
    if suffix in (".xyz", ".extxyz"):
        return _read_xyz(path)
    if suffix == ".cif":
        return _read_cif_file(path)
    if _is_structure_file(path):
        return StructureSet((_from_file(path, str(path)),), (path.stem,), source=str(path))
    raise ValueError(f"{path}: unknown structure format {suffix!r}")


def _read_cif_file(path: Path) -> StructureSet:
    try:
        structures = parse_structures(path.read_text(encoding="utf-8", errors="replace"), "cif")
    except Exception as exc:
        raise ValueError(f"{path}: cannot read CIF ({type(exc).__name__}: {exc})") from exc
    if not structures:
        raise ValueError(f"{path}: CIF holds no readable structure")
    checked = tuple(_check(s, f"{path} block {i}") for i, s in enumerate(structures))
    ids = (path.stem,) if len(checked) == 1 else tuple(f"{path.stem}:{i}" for i in range(len(checked)))
    return StructureSet(checked, ids, source=str(path))


def pair_sets(
    first: StructureSet, second: StructureSet, *, by: str = "auto"
) -> tuple[list, list, list[str], str]:
    """Pair two sets item by item.

    Args:
        by: ``"order"``, ``"id"``, or ``"auto"``: by id when both sets carry ids that overlap, else by order.

    Returns:
        (first structures, second structures, labels, mode) with mode ``"order"`` or ``"id"``. Pairing by id
        follows the order of ``second``.

    Raises:
        ValueError: different lengths (order), missing ids (id; the message names up to five), a bad ``by``.
    """
    if by not in ("auto", "order", "id"):
        raise ValueError(f"pairing must be 'auto', 'order' or 'id', got {by!r}")
    both_ids = first.ids is not None and second.ids is not None
    if by == "id" and not both_ids:
        raise ValueError("pairing by id needs ids on both sides (file names or an id column)")
    if by == "auto":
        by = "id" if both_ids and set(first.ids) & set(second.ids) else "order"
    if by == "order":
        if len(first) != len(second):
            raise ValueError(
                f"cannot pair by order: {first.source} has {len(first)} structures, "
                f"{second.source} has {len(second)}"
            )
        return list(first.structures), list(second.structures), second.labels(), "order"
    index = dict(zip(first.ids, first.structures, strict=True))
    missing = [i for i in second.ids if i not in index]
    extra = sorted(set(first.ids) - set(second.ids))
    if missing or extra:
        raise ValueError(
            f"cannot pair by id: {len(missing)} ids of {second.source} are missing from {first.source} "
            f"(e.g. {missing[:5]}), {len(extra)} ids of {first.source} are not in {second.source} "
            f"(e.g. {extra[:5]})"
        )
    return [index[i] for i in second.ids], list(second.structures), list(second.ids), "id"
