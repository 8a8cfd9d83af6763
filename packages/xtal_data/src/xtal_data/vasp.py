"""VASP calculation folders -> records with their pressure, energy, enthalpy and provenance.

A calculation is read from up to five files (each may be gzipped, ``OUTCAR.gz``):

* structure: ``CONTCAR`` (non-empty), else the last ionic step of ``vasprun.xml``, else ``POSCAR`` (only
  for a single-point run, ``NSW = 0``: a relaxation's POSCAR is its unrelaxed input);
* pressure: ``PSTRESS`` (kBar, divided by 10 -> GPa) from ``INCAR``, else from the parameters echoed in
  ``OUTCAR`` / ``vasprun.xml``; an INCAR without PSTRESS means VASP's default 0. Without any of the three
  the caller's pressure (GPa) is used; a caller's pressure that disagrees with the files, or an OUTCAR
  whose echoed PSTRESS (the one VASP ran with) differs from the INCAR's, skips the calculation;
* energy (eV, whole cell, ``free energy TOTEN``), enthalpy ``H = E + P V`` (eV; VASP's own line when it
  prints one) and convergence from ``OUTCAR``, else from ``vasprun.xml``.

A calculation is skipped, with its reason, when it cannot be read, did not finish (OUTCAR without VASP's
final timing section), or did not converge (a relaxation without "reached required accuracy", or the last
ionic step hitting NELM electronic steps) unless ``require_converged=False``; kept records then carry
``converged = 0``. Provenance properties: ``source_path``, ``source_code``, ``structure_file``,
``pressure_origin``.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass

import fsspec

from xtal_data.records import CrystalRecord, PropertyValue
from xtal_data.sources import Skip

KBAR_PER_GPA = 10.0
EV_PER_A3_PER_GPA = 1.0 / 160.21766208  # 1 GPa in eV/Å^3
FINISHED_MARK = "General timing and accounting informations for this job"
CONVERGED_MARK = "reached required accuracy"


@dataclass(frozen=True)
class OutcarSummary:
    """What an OUTCAR says. Energies in eV (whole cell), ``pstress_kbar`` in kBar (None: not echoed)."""

    free_energy: float
    enthalpy: float  # NaN when VASP printed no enthalpy line (PSTRESS = 0)
    pstress_kbar: float | None
    nsw: int | None
    ibrion: int | None
    finished: bool
    reached_accuracy: bool
    electronic_converged: bool

    @property
    def is_relaxation(self) -> bool:
        return bool(self.nsw) and self.ibrion in (1, 2, 3)


def _last_float(pattern: str, text: str) -> float | None:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def parse_outcar(text: str) -> OutcarSummary:
    """Summarise an OUTCAR's text; ValueError when it holds no ``free energy TOTEN`` line."""
    energy = _last_float(r"free\s+energy\s+TOTEN\s*=\s*(-?[\d.]+(?:[eE][-+]?\d+)?)", text)
    if energy is None:
        raise ValueError("no 'free energy TOTEN' line")
    enthalpy = _last_float(r"enthalpy is\s+TOTEN\s*=\s*(-?[\d.]+(?:[eE][-+]?\d+)?)", text)
    nsw = _last_float(r"\bNSW\s*=\s*(-?\d+)", text)
    ibrion = _last_float(r"\bIBRION\s*=\s*(-?\d+)", text)
    nelm = _last_float(r"\bNELM\s*=\s*(\d+)", text)
    iterations = re.findall(r"Iteration\s+(\d+)\(\s*(\d+)\)", text)
    electronic_ok = True
    if iterations and nelm:
        last_ionic = iterations[-1][0]
        electronic_ok = max(int(e) for i, e in iterations if i == last_ionic) < int(nelm)
    return OutcarSummary(
        free_energy=energy,
        enthalpy=math.nan if enthalpy is None else enthalpy,
        pstress_kbar=_last_float(r"\bPSTRESS\s*=\s*(-?[\d.]+)", text),
        nsw=None if nsw is None else int(nsw),
        ibrion=None if ibrion is None else int(ibrion),
        finished=FINISHED_MARK in text,
        reached_accuracy=CONVERGED_MARK in text,
        electronic_converged=electronic_ok,
    )


def parse_pstress(text: str, name: str = "INCAR") -> float | None:
    """``PSTRESS`` in kBar from INCAR-style text (``KEY = value``, ``;`` separators, ``#``/``!``
    comments, any case); None when absent. ValueError naming ``name`` when the value is not a number."""
    value = None
    for line in text.splitlines():
        for statement in re.split(r"[#!]", line, maxsplit=1)[0].split(";"):
            key, sep, raw = statement.partition("=")
            if sep and key.strip().upper() == "PSTRESS":
                try:
                    value = float(raw.split()[0]) if raw.split() else None
                except ValueError:
                    raise ValueError(f"{name}: PSTRESS {raw.strip()!r} is not a number") from None
                if value is None or not math.isfinite(value):
                    raise ValueError(f"{name}: PSTRESS has no finite value")
    return value


@dataclass(frozen=True)
class CalcFiles:
    """Paths (on one fsspec filesystem) of one calculation's files; None where absent."""

    contcar: str | None = None
    poscar: str | None = None
    outcar: str | None = None
    vasprun: str | None = None
    incar: str | None = None


@dataclass(frozen=True)
class VaspReadConfig:
    """How to read calculations.

    Attributes:
        pressure: GPa used when no INCAR / OUTCAR / vasprun.xml states PSTRESS (None: such a calculation
            is skipped); when the files state it, it must agree.
        require_converged: skip unconverged or unfinished runs (else keep them with ``converged = 0``).
        code: provenance label stored as ``source_code``.
    """

    pressure: float | None = None
    require_converged: bool = True
    code: str = "vasp"


def read_text(fs, path: str) -> str:
    """A (possibly gzipped) text file; UnicodeDecodeError / OSError propagate."""
    with fs.open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _vasprun(fs, path: str):
    from fsspec.implementations.local import LocalFileSystem
    from pymatgen.io.vasp import Vasprun

    local = path if isinstance(fs, LocalFileSystem) else None
    if local is None:
        local = fsspec.open_local(f"simplecache::{fs.unstrip_protocol(path)}")
    return Vasprun(local, parse_dos=False, parse_eigen=False, parse_potcar_file=False)


def _poscar_structure(text: str):
    from xtal_eval.structure_files import parse_structures

    if not text.strip():
        raise ValueError("empty file")
    return parse_structures(text, "poscar")[0]


def _short(err: Exception) -> str:
    msg = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {msg}"[:160]


def read_calculation(
    fs, files: CalcFiles, ident: str, config: VaspReadConfig, *, pressure_kbar: float | None = None,
    pressure_origin: str | None = None, extra: dict[str, PropertyValue] | None = None,
) -> CrystalRecord | Skip:  # fmt: skip
    """One calculation as a record or a Skip with its reason. ``pressure_kbar`` (with its origin) overrides
    the files' PSTRESS (a CALYPSO search states it once for all its candidates)."""
    outcar = run = None
    xml_error = ""
    if files.outcar:
        try:
            outcar = parse_outcar(read_text(fs, files.outcar))
        except (OSError, ValueError) as err:
            return Skip(ident, f"unreadable OUTCAR ({_short(err)}; {files.outcar})")
    contcar_ok = bool(files.contcar) and fs.size(files.contcar) > 0
    if files.vasprun and (outcar is None or not contcar_ok):
        try:
            run = _vasprun(fs, files.vasprun)
        except Exception as err:  # pymatgen raises many types on truncated XML
            if outcar is None:
                return Skip(ident, f"unreadable vasprun.xml ({_short(err)}; {files.vasprun})")
            xml_error = f"unreadable vasprun.xml: {_short(err)}"
    if outcar is None and run is None:
        return Skip(ident, f"no OUTCAR or vasprun.xml (convergence and energy unknown; {ident})")
    if outcar is not None:
        finished = outcar.finished
        relaxation = outcar.is_relaxation
        converged = finished and outcar.electronic_converged and (outcar.reached_accuracy or not relaxation)
        why = "unconverged ionic relaxation (no 'reached required accuracy' in OUTCAR)"
        if not outcar.electronic_converged:
            why = "unconverged electronic steps (last ionic step hit NELM)"
        if not finished:
            why = "unfinished run (OUTCAR has no final timing section)"
        energy, enthalpy = outcar.free_energy, outcar.enthalpy
    else:
        relaxation = int(run.parameters.get("NSW", 0) or 0) > 0 and run.parameters.get("IBRION") in (1, 2, 3)
        converged = bool(run.converged_electronic and (run.converged_ionic or not relaxation))
        why = "unconverged run (vasprun.xml)"
        energy, enthalpy = float(run.ionic_steps[-1]["e_fr_energy"]), math.nan
    if not converged and config.require_converged:
        return Skip(ident, f"{why} ({ident})")

    if pressure_kbar is None:
        try:
            pressure_kbar, pressure_origin = _pstress(fs, files, outcar, run)
        except (OSError, ValueError) as err:
            return Skip(ident, f"unreadable INCAR ({_short(err)})")
    echoed = outcar.pstress_kbar if outcar is not None else None
    if (
        pressure_kbar is not None
        and echoed is not None
        and not math.isclose(pressure_kbar, echoed, abs_tol=1e-9)
    ):
        return Skip(ident, f"pressure disagreement ({pressure_origin} {pressure_kbar} kBar, "
                           f"OUTCAR PSTRESS {echoed} kBar)")  # fmt: skip
    if pressure_kbar is None:
        if config.pressure is None:
            return Skip(ident, "no pressure (no INCAR, OUTCAR or vasprun.xml PSTRESS; give it in GPa)")
        pressure, pressure_origin = float(config.pressure), "given"
    else:
        pressure = pressure_kbar / KBAR_PER_GPA
        if config.pressure is not None and not math.isclose(pressure, config.pressure, abs_tol=1e-9):
            return Skip(ident, f"pressure disagreement ({pressure_origin} says {pressure} GPa, "
                               f"given {config.pressure} GPa)")  # fmt: skip

    structure, structure_file = None, None
    try:
        if contcar_ok:
            structure, structure_file = _poscar_structure(read_text(fs, files.contcar)), files.contcar
        elif run is not None:
            structure, structure_file = run.final_structure, files.vasprun
        elif files.poscar and not relaxation:
            structure, structure_file = _poscar_structure(read_text(fs, files.poscar)), files.poscar
    except Exception as err:  # pymatgen raises many types on malformed POSCAR text
        return Skip(ident, f"unreadable structure ({_short(err)}; {files.contcar or files.poscar})")
    if structure is None:
        note = xml_error or (
            "only the unrelaxed POSCAR" if files.poscar else "no CONTCAR, vasprun.xml or POSCAR"
        )
        return Skip(ident, f"no final structure ({note}; {ident})")

    n = len(structure)
    if math.isnan(enthalpy):
        enthalpy = energy + pressure * EV_PER_A3_PER_GPA * float(structure.volume)
    props: dict[str, PropertyValue] = {
        "energy": energy, "energy_per_atom": energy / n,
        "enthalpy": enthalpy, "enthalpy_per_atom": enthalpy / n,
        "converged": float(converged), "source_path": fs.unstrip_protocol(structure_file),
        "source_code": config.code, "structure_file": structure_file.rsplit("/", 1)[-1],
        "pressure_origin": pressure_origin or "", **(extra or {}),
    }  # fmt: skip
    try:
        return CrystalRecord.from_pymatgen(structure, id=ident, pressure=pressure, **props)
    except ValueError as err:
        return Skip(ident, str(err))


def _pstress(fs, files: CalcFiles, outcar: OutcarSummary | None, run) -> tuple[float | None, str | None]:
    """(PSTRESS in kBar, where it came from) from INCAR, else OUTCAR, else vasprun.xml."""
    if files.incar:
        value = parse_pstress(read_text(fs, files.incar), files.incar)
        return (0.0, "INCAR default (no PSTRESS)") if value is None else (value, "INCAR PSTRESS")
    if outcar is not None and outcar.pstress_kbar is not None:
        return outcar.pstress_kbar, "OUTCAR PSTRESS"
    if run is not None:
        return float(run.parameters.get("PSTRESS", 0.0) or 0.0), "vasprun.xml PSTRESS"
    return None, None
