"""The project's one low-level structure-file reader: format detection and CIF / POSCAR parsing.

Used by :mod:`xtal_eval.io` (benchmark inputs) and by xtal-data's ingestion (``xtal_data.sources`` and
``xtal_data.ingest``), so that both accept the same files and parse them the same way::

    structure_format("POSCAR_12")          # "poscar"; "a.cif" -> "cif"; "notes.txt" -> None
    parse_structures(text, "cif")          # every CIF data block, as pymatgen Structures
    read_structure_file(path)              # one file (first CIF block); errors name the file

pymatgen's parsers are called directly (about 15% faster than ``Structure.from_str``'s registry
dispatch). :func:`parse_structures` lets pymatgen's own exceptions through, for callers that report
them their own way; :func:`read_structure_file` turns every failure into a ``ValueError`` naming the file.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = [
    "POSCAR_PREFIXES",
    "STRUCTURE_SUFFIXES",
    "parse_structures",
    "read_structure_file",
    "structure_format",
]

STRUCTURE_SUFFIXES = {".cif": "cif", ".vasp": "poscar", ".poscar": "poscar"}  # lower-case suffix -> format
POSCAR_PREFIXES = ("POSCAR", "CONTCAR")  # file names starting so (any case) are POSCAR files
FORMATS = ("cif", "poscar")


def structure_format(name: str) -> str | None:
    """``"cif"``, ``"poscar"`` or None (not a structure file) from a file name or path (any case)."""
    base = posixpath.basename(str(name).replace("\\", "/")).lower()
    if base.startswith(tuple(p.lower() for p in POSCAR_PREFIXES)):
        return "poscar"
    return STRUCTURE_SUFFIXES.get(posixpath.splitext(base)[1])


def parse_structures(text: str, fmt: str) -> list[Structure]:
    """Structures in ``text``: every data block of a CIF (possibly none), the one of a POSCAR.

    Conventional cells as written (``primitive=False``). Raises ``ValueError`` for an unknown ``fmt``
    and otherwise whatever pymatgen raises on malformed text (callers name the item).
    """
    if fmt == "cif":
        from pymatgen.io.cif import CifParser

        return list(CifParser.from_str(text).parse_structures(primitive=False))
    if fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        return [Poscar.from_str(text).structure]
    raise ValueError(f"unknown structure format {fmt!r}; expected one of {FORMATS}")


def read_structure_file(path: str | Path, label: str | None = None) -> Structure:
    """The structure of a CIF (first data block) or POSCAR file; the format comes from the file name.

    Raises:
        ValueError: ``"<label>: cannot read structure file (<error>)"`` (``label`` defaults to the
            path) for an unknown format, unreadable text or a CIF without a structure.
    """
    label = str(path) if label is None else label
    try:
        fmt = structure_format(str(path))
        if fmt is None:
            raise ValueError(f"not a CIF or POSCAR file name: {Path(path).name}")
        structures = parse_structures(Path(path).read_text(encoding="utf-8", errors="replace"), fmt)
        if not structures:
            raise ValueError("no structure in CIF")
    except Exception as exc:
        raise ValueError(f"{label}: cannot read structure file ({type(exc).__name__}: {exc})") from exc
    return structures[0]
