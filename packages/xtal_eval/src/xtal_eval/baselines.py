"""Random structures with a given composition and volume: the baselines generated structures must beat.

Two generators, both seeded and both with the same minimum-distance rule::

    s = pyxtal_random("Si4O8", 180.0, seed=0)    # random space group and Wyckoff sites (PyXtal)
    s = uniform_random("Si4O8", 180.0, seed=0)   # random lattice, uniform positions, no symmetry (P1)
    res = random_baseline([("Si4O8", 180.0), ("Cu4", 47.0)], kind="pyxtal", num_per_target=20, seed=0)

``formula`` is the cell formula (``"Si4O8"``: 12 atoms in the cell); the cell volume (Å^3) is met
exactly. Minimum-distance rule: every pair distance, periodic images included, is at least
``min_distance_scale * (r_i + r_j)``, with the covalent radii of ``ase.data.covalent_radii``
(Cordero et al. 2008). The default scale 0.5 equals PyXtal's own ``atomic`` tolerance (which uses
slightly different radii); for PyXtal the rule is handed to it as a custom tolerance matrix and
checked again on the result.

``pyxtal_random`` places the atoms in the primitive cell of a centred group (the cell holds exactly the
formula's atoms) and draws the space group uniformly among the groups whose Wyckoff positions can hold
the composition; a group that fails is replaced by another one.

Torch-free. Needs ASE (covalent radii) and, for ``pyxtal_random`` only, PyXtal: both come with the
``baselines`` extra (``pip install 'xtal-eval[baselines]'``); the module imports without either.
Distances use the exact minimum image of :mod:`xtal_eval.geometry`.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from xtal_eval.geometry import min_image_distances, shortest_lattice_vector

__all__ = [
    "BaselineResult",
    "RandomStructureError",
    "min_distance_ok",
    "parse_cell_formula",
    "pyxtal_random",
    "random_baseline",
    "require_pyxtal",
    "uniform_random",
]

KINDS = ("pyxtal", "uniform")
MAX_PACKING = 0.74  # hard spheres of radius scale * r_cov cannot fill more (Kepler): fail at once
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")
# primitive vectors of a centred cell, rows in the conventional basis (ITA standard, R obverse)
_CENTRING = {
    "P": np.eye(3),
    "A": np.array([[1, 0, 0], [0, 0.5, 0.5], [0, -0.5, 0.5]]),
    "C": np.array([[0.5, 0.5, 0], [-0.5, 0.5, 0], [0, 0, 1]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
    "R": np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3,
}


class RandomStructureError(RuntimeError):
    """No structure met the rules within ``max_attempts``; ``reasons`` counts the rejections."""

    def __init__(self, formula: str, attempts: int, reasons: Counter):
        detail = ", ".join(f"{k}: {v}" for k, v in reasons.most_common())
        within = f"within {attempts} attempts" if attempts else "possible"
        super().__init__(f"{formula}: no random structure {within} ({detail})")
        self.formula, self.attempts, self.reasons = formula, attempts, dict(reasons)


def parse_cell_formula(formula: str) -> list[tuple[str, int]]:
    """``"Si4O8"`` -> ``[("Si", 4), ("O", 8)]`` (first-appearance order; repeats summed).

    Raises:
        ValueError: empty formula, unknown element, a zero count or unparsable text (named).
    """
    from ase.data import atomic_numbers

    text = str(formula).strip()
    if not text:
        raise ValueError("empty formula")
    if "".join(m.group(0) for m in _TOKEN.finditer(text)) != text:
        raise ValueError(f"formula {formula!r}: not a cell formula such as Si4O8")
    counts: Counter = Counter()
    for symbol, n in _TOKEN.findall(text):
        if symbol not in atomic_numbers or symbol == "X":
            raise ValueError(f"formula {formula!r}: unknown element {symbol!r}")
        if n and int(n) == 0:
            raise ValueError(f"formula {formula!r}: zero count for {symbol}")
        counts[symbol] += int(n) if n else 1
    return list(counts.items())


def _check_inputs(formula: str, volume: float, scale: float, max_attempts: int) -> list[tuple[str, int]]:
    comp = parse_cell_formula(formula)
    if not (isinstance(volume, int | float) and math.isfinite(volume) and volume > 0):
        raise ValueError(f"{formula}: volume must be a positive number of Å^3, got {volume!r}")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"{formula}: min_distance_scale must be >= 0, got {scale!r}")
    if max_attempts < 1:
        raise ValueError(f"{formula}: max_attempts must be >= 1, got {max_attempts}")
    return comp


def _check_packing(formula: str, comp: list[tuple[str, int]], volume: float, scale: float) -> None:
    """Fail at once when the rule's hard spheres fill more than :data:`MAX_PACKING` of the cell."""
    from ase.data import atomic_numbers, covalent_radii

    spheres = sum(n * 4 / 3 * math.pi * (scale * covalent_radii[atomic_numbers[el]]) ** 3 for el, n in comp)
    if spheres > MAX_PACKING * volume:
        reason = f"hard-sphere packing fraction {spheres / volume:.2f} > {MAX_PACKING}"
        raise RandomStructureError(formula, 0, Counter({reason: 1}))


def _thresholds(numbers: np.ndarray, scale: float) -> np.ndarray:
    """(N, N) minimum distances in Å: ``scale * (r_i + r_j)``."""
    from ase.data import covalent_radii

    r = covalent_radii[numbers]
    return scale * (r[:, None] + r[None, :])


def min_distance_ok(structure, *, min_distance_scale: float = 0.5) -> bool:
    """Whether every pair of sites, periodic images included, is ``>= scale * (r_cov_i + r_cov_j)`` apart."""
    numbers = np.array([site.specie.Z for site in structure])
    thr = _thresholds(numbers, min_distance_scale)  # (N, N)
    if thr.max() <= 0:
        return True
    lattice = structure.lattice.matrix
    frac = structure.frac_coords % 1.0
    dist = min_image_distances(frac, frac, lattice, cutoff=float(thr.max()))  # (N, N), inf beyond
    np.fill_diagonal(dist, shortest_lattice_vector(lattice))  # an atom and its own images
    return bool((dist >= thr * (1 - 1e-9)).all())


def _structure(lattice, species, frac):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(lattice), species, np.asarray(frac) % 1.0)


# ------------------------------------------------------------------ uniform (P1)
def _random_lattice(rng: np.random.Generator, volume: float, min_width_ratio: float) -> np.ndarray | None:
    """Lengths uniform in [1, 2] (relative), angles uniform in [60, 120] degrees, scaled to ``volume``."""
    lengths = rng.uniform(1.0, 2.0, size=3)
    alpha, beta, gamma = np.radians(rng.uniform(60.0, 120.0, size=3))
    from pymatgen.core import Lattice

    cos = np.cos([alpha, beta, gamma])
    if 1 - (cos**2).sum() + 2 * cos.prod() <= 1e-3:  # no such cell (or nearly flat)
        return None
    lat = Lattice.from_parameters(*lengths, *np.degrees([alpha, beta, gamma])).matrix
    lat = lat * (volume / abs(np.linalg.det(lat))) ** (1 / 3)
    widths = 1.0 / np.linalg.norm(np.linalg.inv(lat), axis=0)
    return lat if widths.min() >= min_width_ratio * volume ** (1 / 3) else None


def uniform_random(
    formula: str,
    volume: float,
    *,
    seed: int,
    min_distance_scale: float = 0.5,
    max_attempts: int = 50,
    tries_per_atom: int = 200,
    min_width_ratio: float = 0.5,
):
    """P1 structure: random lattice, atoms at uniformly random fractional positions, cell volume ``volume``.

    The lattice has relative lengths in [1, 2] and angles in [60, 120] degrees, and is rejected when a
    perpendicular width is below ``min_width_ratio * volume**(1/3)``. Atoms are placed one by one, each
    at the first of up to ``tries_per_atom`` uniform positions that keeps the minimum-distance rule
    (random sequential placement); an atom that does not fit starts a new attempt with a new lattice.

    Returns:
        pymatgen ``Structure`` with species in formula order.

    Raises:
        ValueError: bad formula, volume or settings.
        RandomStructureError: no structure after ``max_attempts`` attempts (reasons counted).
    """
    comp = _check_inputs(formula, volume, min_distance_scale, max_attempts)
    _check_packing(formula, comp, volume, min_distance_scale)
    from ase.data import atomic_numbers

    species = [el for el, n in comp for _ in range(n)]
    numbers = np.array([atomic_numbers[el] for el in species])
    thr = _thresholds(numbers, min_distance_scale)  # (N, N)
    rng = np.random.default_rng(seed)
    reasons: Counter = Counter()
    for _ in range(max_attempts):
        lat = _random_lattice(rng, float(volume), min_width_ratio)
        if lat is None:
            reasons["thin or degenerate lattice"] += 1
            continue
        if shortest_lattice_vector(lat) < thr.max():
            reasons["lattice shorter than the minimum distance"] += 1
            continue
        frac = np.empty((len(species), 3))
        for i in range(len(species)):
            cand = rng.random((tries_per_atom, 3))  # (T, 3)
            if i == 0:
                frac[0] = cand[0]
                continue
            dist = min_image_distances(cand, frac[:i], lat, cutoff=float(thr[i, :i].max()))  # (T, i)
            good = np.flatnonzero((dist >= thr[i, :i][None, :]).all(axis=1))
            if good.size == 0:
                break
            frac[i] = cand[good[0]]
        else:
            return _structure(lat, species, frac)
        reasons["atoms do not fit (minimum distance)"] += 1
    raise RandomStructureError(formula, max_attempts, reasons)


# ------------------------------------------------------------------ PyXtal (random space group)
def require_pyxtal() -> None:
    """Raise a clear ``ImportError`` when PyXtal (needed by :func:`pyxtal_random`) is not installed."""
    try:
        import pyxtal  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"the PyXtal baseline needs pyxtal: pip install 'xtal-eval[baselines]' (pyxtal>=1.0) ({err})"
        ) from None


@lru_cache(maxsize=256)
def _group(number: int):
    from pyxtal.symmetry import Group

    return Group(number)


@lru_cache(maxsize=1024)
def _compatible_groups(counts: tuple[int, ...]) -> tuple[int, ...]:
    """Space groups whose Wyckoff positions hold ``counts`` atoms per species in the primitive cell."""
    out = []
    for number in range(1, 231):
        g = _group(number)
        if g.check_compatible([n * g.cellsize() for n in counts])[0]:
            out.append(number)
    return tuple(out)


def _primitive(lattice: np.ndarray, species: list, frac: np.ndarray, centring: str, n_target: int):
    """The primitive cell of a centred conventional cell (None when the atoms do not fold onto N sites)."""
    m = _CENTRING[centring]
    new_frac = (frac @ np.linalg.inv(m)) % 1.0
    keep: list[int] = []
    for i in range(len(new_frac)):
        d = new_frac[keep] - new_frac[i]
        if not keep or not np.any(np.abs(d - np.round(d)).max(axis=1) < 1e-4):
            keep.append(i)
    if len(keep) != n_target:
        return None
    return m @ lattice, [species[i] for i in keep], new_frac[keep]


def pyxtal_random(
    formula: str,
    volume: float,
    *,
    seed: int,
    min_distance_scale: float = 0.5,
    max_attempts: int = 20,
):
    """Symmetric random structure from PyXtal with a seeded random space group, cell volume ``volume``.

    Each attempt takes the next group of a seeded random order of the compatible groups, draws a PyXtal
    lattice of that group's type with the target volume (``pyxtal.lattice.Lattice``), lets
    ``pyxtal().from_random`` place the atoms on Wyckoff sites with the minimum-distance rule as its
    tolerance matrix, folds a centred cell to its primitive cell and checks the rule again.

    Returns:
        pymatgen ``Structure`` (species sorted as in the formula), exactly ``volume`` Å^3.

    Raises:
        ValueError: bad formula, volume or settings, or no space group can hold the composition.
        RandomStructureError: no structure after ``max_attempts`` attempts (reasons counted).
    """
    comp = _check_inputs(formula, volume, min_distance_scale, max_attempts)
    _check_packing(formula, comp, volume, min_distance_scale)
    require_pyxtal()
    from ase.data import atomic_numbers as z_of
    from ase.data import covalent_radii
    from pyxtal import pyxtal
    from pyxtal.lattice import Lattice
    from pyxtal.tolerance import Tol_matrix

    symbols, counts = [el for el, _ in comp], tuple(n for _, n in comp)
    groups = _compatible_groups(counts)
    if not groups:
        raise ValueError(f"{formula}: no space group has Wyckoff positions for this composition")
    pairs = [
        (a, b, min_distance_scale * (covalent_radii[z_of[a]] + covalent_radii[z_of[b]]))
        for a in symbols
        for b in symbols
    ]
    tm = Tol_matrix(*pairs, prototype="atomic")
    rng = np.random.default_rng(seed)
    order = rng.permutation(groups)
    n_target = sum(counts)
    reasons: Counter = Counter()
    for attempt in range(max_attempts):
        g = _group(int(order[attempt % len(order)]))
        centring = g.symbol[0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lat = Lattice(g.lattice_type, volume * g.cellsize(), random_state=rng)
                xtal = pyxtal()
                xtal.from_random(
                    3, g.number, symbols, list(counts), conventional=False, lattice=lat,
                    tm=tm, max_count=1, random_state=rng,
                )  # fmt: skip
                s = xtal.to_pymatgen(resort=False)
        except Exception as err:  # noqa: BLE001  PyXtal signals every failure with a generic error
            reasons[f"pyxtal: {type(err).__name__}"] += 1
            continue
        species = [str(site.specie) for site in s]
        prim = _primitive(s.lattice.matrix, species, s.frac_coords, centring, n_target)
        if prim is None:
            reasons["primitive cell has a different number of atoms"] += 1
            continue
        lattice, species, frac = prim
        lattice = lattice * (volume / abs(np.linalg.det(lattice))) ** (1 / 3)
        order_idx = sorted(range(len(species)), key=lambda i: symbols.index(species[i]))
        out = _structure(lattice, [species[i] for i in order_idx], frac[order_idx])
        if not min_distance_ok(out, min_distance_scale=min_distance_scale):
            reasons["atoms too close"] += 1
            continue
        return out
    raise RandomStructureError(formula, max_attempts, reasons)


# ------------------------------------------------------------------ many targets
@dataclass(frozen=True)
class BaselineResult:
    """Random structures per target: ``structures[t][j]`` is a pymatgen ``Structure`` or None.

    ``reasons[t][j]`` says why an entry is None (``""`` when made); ``failures`` counts them by
    reason; ``seeds[t][j]`` is the seed each structure was made with (for the substitution baseline of
    :mod:`xtal_eval.substitution`: the index of the reference it came from, -1 for none); ``seconds``
    the wall time.
    """

    kind: str
    structures: list[list]
    reasons: list[list[str]]
    seeds: list[list[int]]
    failures: dict[str, int]
    seconds: float

    @property
    def num_made(self) -> int:
        return sum(s is not None for row in self.structures for s in row)


def derive_seed(seed: int, *key: int) -> int:
    """A 63-bit seed from ``seed`` and integer keys (target index, sample index, ...): order independent."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(k) for k in key))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _one_target(task: tuple) -> list[tuple[Any, str, str]]:
    """(structure or None, reason, failure key) for each seed of one target (a picklable task)."""
    kind, formula, volume, seeds, scale, max_attempts = task
    make = pyxtal_random if kind == "pyxtal" else uniform_random
    extra = {} if max_attempts is None else {"max_attempts": max_attempts}
    out = []
    for s_seed in seeds:
        try:
            out.append((make(formula, volume, seed=s_seed, min_distance_scale=scale, **extra), "", ""))
        except RandomStructureError as err:
            key = "no structure within max_attempts" if err.attempts else "packing too dense"
            out.append((None, str(err), key))
        except ValueError as err:  # inputs were checked: no space group holds the composition
            out.append((None, str(err), "no compatible space group"))
    return out


def random_baseline(
    targets: Sequence[tuple[str, float]],
    *,
    kind: str,
    num_per_target: int,
    seed: int,
    min_distance_scale: float = 0.5,
    max_attempts: int | None = None,
    parallel=None,
) -> BaselineResult:
    """``num_per_target`` random structures (``kind``: ``"pyxtal"`` or ``"uniform"``) per (formula, volume).

    Structure ``j`` of target ``t`` uses ``derive_seed(seed, kind_index, t, j)``: the same seed gives
    the same structures whatever the order or the split of the work. ``parallel``: an
    ``xtal_eval.Parallel`` (serial by default; ``Parallel.from_jobs(4)`` for a process pool, or Dask),
    one task per target. Bad inputs raise ``ValueError`` before anything is generated; a target
    without a structure keeps ``None`` and its reason.
    """
    from xtal_eval.parallel import run_tasks

    if kind not in KINDS:
        raise ValueError(f"unknown baseline kind {kind!r}: choose pyxtal or uniform")
    if num_per_target < 1:
        raise ValueError(f"num_per_target must be >= 1, got {num_per_target}")
    for formula, volume in targets:
        _check_inputs(formula, volume, min_distance_scale, 1)
    if kind == "pyxtal":
        require_pyxtal()
    seeds = [
        [derive_seed(seed, KINDS.index(kind), t, j) for j in range(num_per_target)]
        for t in range(len(targets))
    ]
    tasks = [
        (kind, formula, float(volume), seeds[t], min_distance_scale, max_attempts)
        for t, (formula, volume) in enumerate(targets)
    ]
    t0 = time.perf_counter()
    done = run_tasks(_one_target, tasks, parallel, desc=f"random ({kind})")
    failures = Counter(key for row in done for _, _, key in row if key)
    return BaselineResult(
        kind,
        structures=[[s for s, _, _ in row] for row in done],
        reasons=[[why for _, why, _ in row] for row in done],
        seeds=seeds,
        failures=dict(failures),
        seconds=time.perf_counter() - t0,
    )
