"""TOML for configs and run records: frozen dataclasses <-> plain dicts <-> TOML text.

One reader and one writer for the project::

    from cond_vae import toml
    text = toml.dumps({"train": toml.to_plain(config)})      # str
    config = toml.from_plain(TrainConfig, toml.read("run.toml")["train"])

Reading uses the standard library's ``tomllib``. Writing (:func:`dumps`) covers what our configs and
run records hold: nested tables (dicts) of strings, booleans, integers, floats (``nan``, ``inf`` and
``-inf`` included), ``pathlib.Path`` (written as its string), and lists or tuples of those; a dict
inside a list is written as an inline table ``{k = v, ...}``.

The ``None`` rule: TOML has no null, so ``dumps`` leaves out every ``None`` wherever it appears -- a
top-level or table value (the key is not written), a value inside an inline table (its key is not
written) and an element of a list (the element is dropped, so ``[1, None, 2]`` becomes ``[1, 2]``).
Loading restores a missing key only where the dataclass field's default is ``None``, which holds for
every optional field of ``TrainConfig`` (its TOML round trip is tested).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_plain(obj: Any) -> Any:
    """A dataclass (recursively) as dicts, lists and scalars; tuples become lists, paths strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_plain(cls: type[T], data: Mapping[str, Any], *, base: T | None = None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; keys missing from ``data`` come from ``base`` (or defaults).

    Nested dataclass fields accept nested tables (applied on top of the base's value); list values are
    turned back into tuples where the field is a tuple. Unknown keys raise ``ValueError`` naming them.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or cls.__name__}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in [{where or cls.__name__}]; known keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        current = getattr(base, name) if base is not None else None
        kwargs[name] = _coerce(hint, value, current, f"{where}.{name}" if where else name)
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, current: Any, where: str) -> Any:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    for option in options:
        if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
            return from_plain(option, value, base=current, where=where)
    origin = typing.get_origin(hint)
    if _is_union(hint):
        origins = {typing.get_origin(o) or o for o in options}
        origin = tuple if tuple in origins else None
    if origin is tuple and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if float in options and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


__all__ = ["dumps", "from_plain", "loads", "read", "to_plain"]


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` (a nested dict) as TOML text: each table's values first, then its sub-tables.

    ``None`` is left out everywhere (see the module docstring); ``Path`` values are written as strings.
    Raises ``TypeError`` for a value of any other type (e.g. a numpy scalar or a dataclass: convert
    with :func:`to_plain` first).
    """
    lines: list[str] = []
    _write_table(lines, data, prefix=())
    return "\n".join(lines).strip() + "\n"


def _write_table(lines: list[str], table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
    scalars = {k: v for k, v in table.items() if v is not None and not isinstance(v, Mapping)}
    tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    if prefix and (scalars or not tables):
        lines.append(f"[{'.'.join(_key(p) for p in prefix)}]")
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    if scalars:
        lines.append("")
    for key, value in tables.items():
        _write_table(lines, value, (*prefix, key))


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):  # inline table (e.g. an element of a list of configs)
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value if v is not None) + "]"
    if isinstance(value, Path):
        return _string(str(value))
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def loads(text: str) -> dict[str, Any]:
    """TOML text as a nested dict (``tomllib.loads``)."""
    return tomllib.loads(text)


def read(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a nested dict.

    Raises ``FileNotFoundError`` ("config file not found: ...") when it is missing and ``ValueError``
    ("<path>: invalid TOML: ...") when it does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from err
