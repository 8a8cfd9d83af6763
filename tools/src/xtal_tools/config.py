"""One configuration surface for every command: TOML tables <-> one frozen dataclass per command.

Every command resolves its settings into one frozen dataclass (``SampleConfig``, ``PredictConfig``,
``EvaluateConfig``, ...), from three sources in this order of precedence:

1. the flags given on the command line (a flag left out is ``None``: "not given");
2. the tables of a ``--config FILE.toml``;
3. the dataclass defaults.

The file has one table per part: the command's own table (``[sample]``, ``[csp]``, ``[evaluate]``,
``[benchmark]``, ``[train]``, ...) holds its scalar settings, and every nested dataclass field is a
shared top-level table named after the field: ``[sampler]`` (:class:`cond_vae.SamplerConfig`, the same
for every command that samples) and ``[relax]`` (:class:`xtal_tools.relaxation.RelaxConfig`)::

    [csp]
    formula = "SiO2"
    formula_units = "2-4"
    pressure = "0,50"
    num = 60

    [sampler]
    method = "ode"

    [relax]
    calculator = "chgnet"
    fmax = 0.05

Every run writes its resolved settings into ``OUT/run.toml`` in exactly this shape (plus the record
tables ``[run]``, ``[git]``, ``[versions]``, ``[derived]``, ``[summary]``, skipped when read back), so
``--config OUT/run.toml`` repeats a run. An unknown table or key is an error that names the file and
the known names. Values the user cannot set (decoder calls, cell formulas, warnings) go to
``[derived]``, never into the settings tables.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "RECORD_TABLES",
    "REPORT_PRESETS",
    "DECISION_PRESET",
    "read_table",
    "read_tables",
    "resolve",
    "to_tables",
]

T = TypeVar("T")

# Tables of a run.toml that record what happened rather than what was asked for: skipped when read.
RECORD_TABLES = frozenset({"run", "git", "versions", "derived", "summary"})

# Matcher presets: reports show all three side by side; a single yes/no decision (de-duplication in
# csp, the first match of known-phase, uniqueness of gen) uses the paper's.
REPORT_PRESETS = ("cdvae", "paper", "strict")
DECISION_PRESET = "paper"


def read_tables(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The tables of a TOML file (``{}`` for None), record tables of a ``run.toml`` skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid TOML, or a top-level value that is not a table (the message names the file).
    """
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path}: not valid TOML ({err})") from None
    loose = sorted(k for k, v in data.items() if not isinstance(v, dict))
    if loose:
        raise ValueError(f"--config {path}: {loose} must sit inside a table such as [sampler]")
    return {k: v for k, v in data.items() if k not in RECORD_TABLES}


def _nested(cls: type) -> dict[str, type]:
    """The dataclass-typed fields of ``cls`` (each a shared top-level table named after the field)."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name])
    }


def _build(cls: type[T], table: Mapping[str, Any], *, base: T, where: str) -> T:
    """``base`` with the values of ``table`` (unknown keys are an error naming the table)."""
    from cond_vae.toml import from_plain

    return from_plain(cls, table, base=base, where=where) if table else base


def resolve(
    cls: type[T],
    *,
    table: str,
    path: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    nested_flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> T:
    """One ``cls`` from ``--config`` tables and flags (flags win; ``None`` means "not given").

    Args:
        cls: the command's frozen config dataclass; its dataclass-typed fields are read from the
            top-level tables named after them (``sampler``, ``relax``).
        table: the name of the command's own table (``"sample"``, ``"csp"``, ...).
        path: the ``--config`` file, or None.
        flags: the command's scalar flags by field name.
        nested_flags: flags of the nested tables, e.g. ``{"sampler": {"method": "pc"}}``.

    Raises:
        FileNotFoundError, ValueError: a missing or unreadable file, an unknown table or key, an
            invalid value (the dataclass's own message, prefixed with where it came from).
    """
    tables = read_tables(path)
    nested = _nested(cls)
    unknown = sorted(set(tables) - {table, *nested})
    if unknown:
        raise ValueError(
            f"--config {path}: unknown table(s) {unknown} for this command; known: {sorted({table, *nested})}"
        )
    where = f"--config {path}: " if path is not None else ""
    try:
        default = cls()
        parts = {}
        for name, sub in nested.items():
            value = _build(sub, tables.get(name, {}), base=getattr(default, name), where=name)
            given = {k: v for k, v in (nested_flags or {}).get(name, {}).items() if v is not None}
            parts[name] = dataclasses.replace(value, **given) if given else value
        own = dict(tables.get(table, {}))
        clash = sorted(set(own) & set(nested))
        if clash:
            raise ValueError(f"[{table}] {clash}: give these as their own top-level tables")
        base = _build(cls, own, base=default, where=table)
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        return dataclasses.replace(base, **given, **parts)
    except TypeError as err:  # a value of the wrong type reaching a dataclass
        raise ValueError(f"{where}{err}") from None
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None


def read_table(
    cls: type[T], name: str, path: str | Path | None = None, flags: Mapping[str, Any] | None = None
) -> T:
    """One shared table of a file (e.g. ``[sampler]`` as :class:`cond_vae.SamplerConfig`), flags over it
    (None: not given), the other tables of the file ignored; for scripts that take only that table."""
    where = f"--config {path}: " if path is not None else ""
    try:
        value = _build(cls, read_tables(path).get(name, {}), base=cls(), where=name)
        given = {k: v for k, v in (flags or {}).items() if v is not None}
        return dataclasses.replace(value, **given) if given else value
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}{err}") from None


def to_tables(config: Any, *, table: str) -> dict[str, dict[str, Any]]:
    """The inverse of :func:`resolve`: ``{table: scalars, "sampler": {...}, ...}`` (TOML-ready: tuples
    as lists, paths as strings, ``None`` dropped by the writer), so that ``resolve`` of the written
    file gives ``config`` back."""
    from cond_vae.toml import to_plain

    nested = _nested(type(config))
    plain = to_plain(config)
    own = {k: v for k, v in plain.items() if k not in nested}
    return {table: own, **{name: plain[name] for name in nested}}
