"""Writers for sampled structures: CIF files, one extended-XYZ file, an xtal-data store.

Invalid samples (no structure) are never written; every writer returns a :class:`WriteReport`
counting them by reason. Files are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .sampling import SampledStructure

__all__ = ["WriteReport", "write_cif", "write_extxyz", "write_store"]


@dataclass(frozen=True)
class WriteReport:
    """``written`` structures, ``skipped`` counts by reason, ``paths`` written (files or the store URL)."""

    written: int
    skipped: dict[str, int] = field(default_factory=dict)
    paths: tuple[str, ...] = ()


def _split(samples: Sequence[SampledStructure]) -> tuple[list[SampledStructure], dict[str, int]]:
    valid = [s for s in samples if s.valid]
    skipped = Counter(s.reason.split(":")[0] for s in samples if not s.valid)
    return valid, dict(skipped)


def _name(s: SampledStructure) -> str:
    safe = re.sub(r"[^A-Za-z0-9]+", "", s.formula) or "x"
    return f"{s.row:05d}_{safe}_{s.index:04d}"


def write_cif(samples: Sequence[SampledStructure], directory: str | os.PathLike) -> WriteReport:
    """One CIF per valid sample, ``{row:05d}_{formula}_{index:04d}.cif`` in ``directory``."""
    from pymatgen.io.cif import CifWriter

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    valid, skipped = _split(samples)
    paths = []
    for s in valid:
        path = directory / f"{_name(s)}.cif"
        tmp = path.with_name(f".{path.name}.tmp")
        CifWriter(s.to_pymatgen()).write_file(str(tmp))
        os.replace(tmp, path)
        paths.append(str(path))
    return WriteReport(written=len(valid), skipped=skipped, paths=tuple(paths))


def write_extxyz(samples: Sequence[SampledStructure], path: str | os.PathLike) -> WriteReport:
    """All valid samples as frames of one extended-XYZ file.

    Each frame carries the lattice, pbc, id, row, index, formula and the conditions."""
    from ase.io import write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    valid, skipped = _split(samples)
    frames = []
    for s in valid:
        atoms = s.crystal.to_ase()
        atoms.info = {"id": f"{s.row}-{s.index}", "row": s.row, "index": s.index, "formula": s.formula}
        atoms.info.update(s.conditions)
        frames.append(atoms)
    tmp = path.with_name(f".{path.name}.tmp")
    write(str(tmp), frames, format="extxyz")
    os.replace(tmp, path)
    return WriteReport(written=len(valid), skipped=skipped, paths=(str(path),))


def write_store(
    samples: Sequence[SampledStructure],
    url: str,
    *,
    overwrite: bool = False,
    storage_options: dict | None = None,
) -> WriteReport:
    """Valid samples into a new xtal-data ``CrystalStore`` at ``url`` (needs the ``xtal-data`` package).

    Ids are ``"{row}-{index}"``; pressure goes to the store's pressure column, further conditions
    to its properties, and the input formula to the property ``input_formula``.
    """
    try:
        from xtal_data import CrystalRecord, CrystalStore
    except ImportError as err:  # pragma: no cover - optional dependency
        raise ImportError("write_store needs xtal-data: pip install 'cond-vae[data]'") from err
    valid, skipped = _split(samples)
    records = []
    for s in valid:
        extra = {k: v for k, v in s.conditions.items() if k != "pressure"}
        records.append(
            CrystalRecord(
                id=f"{s.row}-{s.index}",
                atomic_numbers=s.crystal.atom_types,
                frac_coords=s.crystal.frac_coords,
                lattice=s.crystal.lattice,
                pressure=float(s.conditions.get("pressure", 0.0)),
                properties={**extra, "input_formula": s.formula},
            )
        )
    store = CrystalStore.create(url, overwrite=overwrite, storage_options=storage_options)
    if records:
        store.append(records)
    return WriteReport(written=len(records), skipped=skipped, paths=(str(url),))
