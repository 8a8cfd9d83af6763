"""Export structures from a store to a folder of CIF files or one extended XYZ file (path or fsspec URL)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

import fsspec
import numpy as np

from xtal_data.store import CrystalStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def _selection(store: CrystalStore, indices: Sequence[int] | np.ndarray | None):
    return store.read() if indices is None else store.read(np.asarray(indices, dtype=np.int64))


def export_cif(store: CrystalStore, folder: str, *, indices: Sequence[int] | None = None) -> int:
    """Write ``<id>.cif`` per structure (P1, pymatgen's CifWriter; characters unsafe in file names become
    ``_``); pressure and properties are not part of CIF. Returns the number of files written."""
    from pymatgen.io.cif import CifWriter

    fs, root = fsspec.core.url_to_fs(str(folder))
    fs.makedirs(root, exist_ok=True)
    table = _selection(store, indices)
    names = [_UNSAFE.sub("_", str(i)) for i in table.ids]
    if len(set(names)) != len(names):
        raise ValueError("ids collide after making them safe file names; export to extxyz instead")
    for name, record in zip(names, table, strict=True):
        with fs.open(posixpath.join(root, f"{name}.cif"), "w") as fh:
            fh.write(str(CifWriter(record.to_pymatgen())))
    return len(table)


def export_extxyz(store: CrystalStore, path: str, *, indices: Sequence[int] | None = None) -> int:
    """Write one extended XYZ file; each frame's info holds ``id``, ``pressure`` (GPa) and the properties
    (missing values omitted). Needs ase (extra ``xtal-data[ase]``). Returns the number of frames."""
    try:
        from ase.io import write
    except ImportError as err:  # pragma: no cover - exercised only without ase
        raise ImportError("extended XYZ export needs ase: pip install 'xtal-data[ase]'") from err
    table = _selection(store, indices)
    frames = []
    for record in table:
        atoms = record.to_ase()
        atoms.info["id"] = record.id
        atoms.info["pressure"] = record.pressure
        for k, v in record.properties.items():
            if (isinstance(v, str) and v) or (not isinstance(v, str) and np.isfinite(v)):
                atoms.info[k] = v
        frames.append(atoms)
    with fsspec.open(str(path), "w") as fh:
        write(fh, frames, format="extxyz")
    return len(frames)
