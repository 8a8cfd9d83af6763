"""Parsing and checking of sampler inputs: cell formulas (e.g. ``Si4O8``) and pressures (GPa)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["ParsedFormula", "check_scalar", "parse_formula"]

_TOKEN = re.compile(r"\s*(?:(?P<el>[A-Z][a-z]?)|(?P<open>\()|(?P<close>\))|(?P<num>\d+))")


@lru_cache(maxsize=1)
def _symbols() -> dict[str, int]:
    from pymatgen.core.periodic_table import Element

    return {e.symbol: e.Z for e in Element if e.symbol not in ("D", "T") and 1 <= e.Z <= 118}


@dataclass(frozen=True)
class ParsedFormula:
    """A cell formula: ``atom_types`` (atomic numbers, one per atom, in order of first appearance)."""

    formula: str
    atom_types: tuple[int, ...]

    @property
    def num_atoms(self) -> int:
        return len(self.atom_types)


def parse_formula(formula: str, *, max_atoms: int, num_elements: int = 100) -> ParsedFormula:
    """Parse a full-cell formula such as ``"Si4O8"`` or ``"(H2O)4"`` into its atoms.

    Counts must be integers (the formula is the whole cell: ``Si4O8`` is 12 atoms, not SiO2 x 4).

    Raises:
        ValueError: empty or malformed formula, unknown element, element beyond ``num_elements``,
            zero atoms, or more than ``max_atoms`` atoms (the message names the culprit).
    """
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"formula {formula!r}: empty")
    counts = _parse(formula)
    symbols = _symbols()
    for el in counts:
        if el not in symbols:
            raise ValueError(f"formula {formula!r}: unknown element {el!r}")
        if symbols[el] > num_elements:
            raise ValueError(
                f"formula {formula!r}: element {el} (Z={symbols[el]}) is beyond the model's "
                f"{num_elements} elements"
            )
    total = sum(counts.values())
    if total == 0:
        raise ValueError(f"formula {formula!r}: zero atoms")
    if total > max_atoms:
        raise ValueError(
            f"formula {formula!r}: {total} atoms, more than the model supports (max_atoms={max_atoms})"
        )
    atom_types = tuple(symbols[el] for el, n in counts.items() for _ in range(n))
    return ParsedFormula(formula=formula.strip(), atom_types=atom_types)


def _parse(formula: str) -> Counter[str]:
    """Counts per element symbol (no validation of symbols); ValueError on bad syntax."""
    stack: list[Counter[str]] = [Counter()]
    pos, text = 0, formula.strip()
    last: Counter[str] | None = None  # the group a following number multiplies
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"formula {formula!r}: unexpected character {text[pos]!r} at position {pos}")
        pos = m.end()
        if m.group("el"):
            last = Counter({m.group("el"): 1})
            stack[-1].update(last)
        elif m.group("open"):
            stack.append(Counter())
            last = None
        elif m.group("close"):
            if len(stack) == 1:
                raise ValueError(f"formula {formula!r}: unbalanced ')'")
            last = stack.pop()
            stack[-1].update(last)
        else:
            if last is None:
                raise ValueError(f"formula {formula!r}: number {m.group('num')} without an element or group")
            factor = int(m.group("num"))
            if factor == 0:
                raise ValueError(f"formula {formula!r}: zero atoms of {'+'.join(sorted(last))}")
            for el, n in last.items():  # the group was already added once
                stack[-1][el] += n * (factor - 1)
            last = None
    if len(stack) != 1:
        raise ValueError(f"formula {formula!r}: unbalanced '('")
    return stack[0]


# Above this no crystal structure prediction makes physical sense for this model (the highest pressures
# of published structure searches are a few TPa); a typo such as 1e9 GPa is refused, not sampled.
MAX_PRESSURE_GPA = 10_000.0


def check_scalar(value: object, *, name: str = "pressure", unit: str = "GPa") -> float:
    """A finite float from ``value`` (number or numeric string), else ``ValueError`` naming it.

    A pressure beyond ``MAX_PRESSURE_GPA`` in magnitude is refused as well."""
    if isinstance(value, bool):
        raise ValueError(f"{name} {value!r}: not a number")
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r}: not a number ({unit})") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} {value!r}: must be finite ({unit})")
    if name == "pressure" and abs(out) > MAX_PRESSURE_GPA:
        raise ValueError(
            f"pressure {out:g} GPa is beyond any physical sense for crystal structure prediction "
            f"(more than {MAX_PRESSURE_GPA:,.0f} GPa in magnitude); check the unit (GPa, not kbar or Pa)"
        )
    return out
