"""Export structures from a store to a folder of CIF files or one extended XYZ file (path or fsspec URL)."""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Sequence

import fsspec
import numpy as np

from xtal_data.store import CrystalStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def _bar(iterable, total: int, desc: str, progress: bool | None):
    """``iterable`` under a tqdm bar on stderr: ``progress`` True/False, None: when stderr is a terminal."""
    import sys

    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    return tqdm(iterable, total=total, desc=desc, unit="structure", disable=disable, file=sys.stderr)


def _selection(store: CrystalStore, indices: Sequence[int] | np.ndarray | None):
    return store.read() if indices is None else store.read(np.asarray(indices, dtype=np.int64))


def export_cif(
    store: CrystalStore,
    folder: str,
    *,
    indices: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> int:
    """Write ``<id>.cif`` per structure (P1, pymatgen's CifWriter; characters unsafe in file names become
    ``_``); pressure and properties are not part of CIF. Returns the number of files written.

    Every structure is read (and checked) and every CIF text made before the first file is written, so a
    damaged store writes nothing. Existing files of the same names are refused unless ``overwrite``.
    ``progress``: a bar over the structures on stderr (None: when stderr is a terminal)."""
    from pymatgen.io.cif import CifWriter

    fs, root = fsspec.core.url_to_fs(str(folder))
    table = _selection(store, indices)
    names = [_UNSAFE.sub("_", str(i)) for i in table.ids]
    if len(set(names)) != len(names):
        raise ValueError("ids collide after making them safe file names; export to extxyz instead")
    paths = [posixpath.join(root, f"{name}.cif") for name in names]
    if fs.exists(root) and not fs.isdir(root):
        raise FileExistsError(f"{folder} is a file; CIF export needs a folder")
    clash = [p for p in paths if fs.exists(p)] if fs.exists(root) else []
    if clash and not overwrite:
        raise FileExistsError(
            f"{len(clash)} of the CIF files already exist in {folder} (e.g. {posixpath.basename(clash[0])}); "
            "pass --overwrite to replace them"
        )
    texts = [str(CifWriter(r.to_pymatgen())) for r in _bar(table, len(table), "export", progress)]
    fs.makedirs(root, exist_ok=True)
    for path, text in zip(paths, texts, strict=True):
        with fs.open(path, "w") as fh:
            fh.write(text)
    return len(table)


def export_extxyz(
    store: CrystalStore,
    path: str,
    *,
    indices: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> int:
    """Write one extended XYZ file; each frame's info holds ``id``, ``pressure`` (GPa) and the properties
    (missing values omitted). Needs ase (extra ``xtal-data[ase]``). Returns the number of frames.
    An existing file is refused unless ``overwrite``; nothing is written if the store cannot be read.
    ``progress``: a bar over the structures on stderr (None: when stderr is a terminal)."""
    try:
        from ase.io import write
    except ImportError as err:  # pragma: no cover - exercised only without ase
        raise ImportError("extended XYZ export needs ase: pip install 'xtal-data[ase]'") from err
    fs, target = fsspec.core.url_to_fs(str(path))
    if fs.exists(target) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    table = _selection(store, indices)
    frames = []
    for record in _bar(table, len(table), "export", progress):
        atoms = record.to_ase()
        atoms.info["id"] = record.id
        atoms.info["pressure"] = record.pressure
        for k, v in record.properties.items():
            if (isinstance(v, str) and v) or (not isinstance(v, str) and np.isfinite(v)):
                atoms.info[k] = v
        frames.append(atoms)
    text = io.StringIO()
    write(text, frames, format="extxyz")
    with fs.open(target, "w") as fh:
        fh.write(text.getvalue())
    return len(frames)
