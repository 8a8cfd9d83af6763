"""CDVAE generation metrics: property distances, uniqueness, novelty and coverage (COV-R / COV-P).

* ``density_wasserstein`` / ``num_elements_wasserstein``: 1-D Wasserstein distance between generated and
  reference distributions of density (g/cm^3, pymatgen) and of the number of distinct elements.
* ``unique_groups`` / ``uniqueness``: pymatgen's ``group_structures`` (greedy; the first unmatched structure
  of a group is the reference, ``fit(reference, candidate)``), computed exactly but bucketed by reduced
  formula (structures in different buckets can never fit; within a bucket the reduced-site-count prefilter
  applies) and run bucket-parallel.
* ``novelty``: fraction of generated structures that fit no reference structure (``fit(reference, gen)``).
* ``coverage``: COV-R / COV-P and the mean minimum distances (AMSD/AMCD) from fingerprints, exactly as
  CDVAE's ``compute_cov``; ``COV_CUTOFFS`` holds the published per-dataset thresholds. Fingerprints
  (CrystalNN "ops" site fingerprints averaged over sites, Magpie composition features) come from matminer
  (:func:`fingerprints`, optional; matminer currently pins pandas < 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from xtal_eval.matching import match_prepared, prepare
from xtal_eval.parallel import Parallel, run_tasks
from xtal_eval.presets import MatcherPreset, resolve_presets

__all__ = [
    "COV_CUTOFFS",
    "Coverage",
    "coverage",
    "density_wasserstein",
    "fingerprints",
    "novelty",
    "num_elements_wasserstein",
    "unique_groups",
    "uniqueness",
]

COV_CUTOFFS: dict[str, tuple[float, float]] = {
    "mp20": (0.4, 10.0),
    "carbon": (0.2, 4.0),
    "perovskite": (0.2, 4.0),
}
"""(structure cutoff, composition cutoff) per dataset, from CDVAE's evaluation code."""


def _nonempty(name: str, items: Sequence) -> None:
    if len(items) == 0:
        raise ValueError(f"{name} is empty")


def density_wasserstein(generated: Sequence[Structure], reference: Sequence[Structure]) -> float:
    """Wasserstein distance between densities (g/cm^3) of ``generated`` and ``reference``."""
    _nonempty("generated", generated)
    _nonempty("reference", reference)
    return float(
        wasserstein_distance([float(s.density) for s in generated], [float(s.density) for s in reference])
    )


def num_elements_wasserstein(generated: Sequence[Structure], reference: Sequence[Structure]) -> float:
    """Wasserstein distance between the numbers of distinct elements."""
    _nonempty("generated", generated)
    _nonempty("reference", reference)
    return float(
        wasserstein_distance([len(s.composition) for s in generated], [len(s.composition) for s in reference])
    )


def _group_task(task) -> list[list[int]]:
    indices, structures, preset = task
    matcher = preset.matcher()
    prepared = [prepare(s) for s in structures]
    unmatched = list(range(len(indices)))
    groups = []
    while unmatched:
        ref = unmatched.pop(0)
        members = [ref]
        rest = []
        for j in unmatched:
            hit = match_prepared(
                prepared[ref], prepared[j], preset, criterion="fit", with_rms=False, matcher=matcher
            )
            (members if hit.matched else rest).append(j)
        unmatched = rest
        groups.append([indices[k] for k in members])
    return groups


def _buckets(structures: Sequence[Structure]) -> dict[str, list[int]]:
    """Indices by reduced formula: structures in different buckets never fit (cheap, no reduction)."""
    buckets: dict[str, list[int]] = {}
    for i, s in enumerate(structures):
        buckets.setdefault(s.composition.element_composition.reduced_formula, []).append(i)
    return buckets


def unique_groups(
    structures: Sequence[Structure],
    *,
    preset: str | MatcherPreset = "paper",
    parallel: Parallel | None = None,
) -> list[list[int]]:
    """Groups of mutually matching structures (indices), as pymatgen's ``group_structures`` forms them.

    Groups are listed by their first member's index; members keep input order.
    """
    _nonempty("structures", structures)
    (preset,) = resolve_presets(preset)
    tasks = [(idx, [structures[i] for i in idx], preset) for idx in _buckets(structures).values()]
    groups = [g for chunk in run_tasks(_group_task, tasks, parallel, desc="unique") for g in chunk]
    return sorted(groups, key=lambda g: g[0])


def uniqueness(
    structures: Sequence[Structure],
    *,
    preset: str | MatcherPreset = "paper",
    parallel: Parallel | None = None,
) -> float:
    """Number of distinct structures (groups) over the number of structures."""
    return len(unique_groups(structures, preset=preset, parallel=parallel)) / len(structures)


def _novel_task(task) -> list[bool]:
    gens, refs, preset = task
    matcher = preset.matcher()
    prepared_refs = [prepare(r) for r in refs]
    out = []
    for g in gens:
        pg = prepare(g)
        out.append(
            not any(
                match_prepared(r, pg, preset, criterion="fit", with_rms=False, matcher=matcher).matched
                for r in prepared_refs
            )
        )
    return out


def novelty(
    generated: Sequence[Structure],
    reference: Sequence[Structure],
    *,
    preset: str | MatcherPreset = "paper",
    parallel: Parallel | None = None,
) -> np.ndarray:
    """(G,) bool: generated structure i fits no reference structure (``fit(reference, generated)``).

    Only references with the same reduced formula are tried, and among those the reduced site counts must
    agree (exact prefilters); each structure is reduced at most once, and only when it has to be.
    """
    _nonempty("generated", generated)
    _nonempty("reference", reference)
    (preset,) = resolve_presets(preset)
    ref_buckets = _buckets(reference)
    gen_buckets = _buckets(generated)
    tasks, order = [], []
    for key, idx in gen_buckets.items():
        refs = [reference[i] for i in ref_buckets.get(key, [])]
        tasks.append(([generated[i] for i in idx], refs, preset))
        order.append(idx)
    novel = np.zeros(len(generated), dtype=bool)
    for idx, flags in zip(order, run_tasks(_novel_task, tasks, parallel, desc="novelty"), strict=True):
        novel[idx] = flags
    return novel


@dataclass(frozen=True)
class Coverage:
    """CDVAE coverage metrics (fractions; distances in fingerprint units).

    Attributes:
        cov_recall: fraction of reference items with a generated item within both cutoffs (struct and comp
            minima taken separately, as the reference code does).
        cov_precision: generated items within both cutoffs of the reference set, over all generated items
            (including those whose fingerprint is missing).
        amsd_recall, amsd_precision: mean minimum structure-fingerprint distance.
        amcd_recall, amcd_precision: mean minimum composition-fingerprint distance.
    """

    cov_recall: float
    cov_precision: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float


def coverage(
    gen_struct: np.ndarray,
    gen_comp: np.ndarray,
    ref_struct: np.ndarray,
    ref_comp: np.ndarray,
    *,
    cutoffs: str | tuple[float, float] = "mp20",
    comp_scaler: tuple[np.ndarray, np.ndarray] | None = None,
) -> Coverage:
    """COV-R / COV-P from fingerprints.

    Args:
        gen_struct: (G, Fs) structure fingerprints of generated crystals; rows with NaN are missing.
        gen_comp: (G, Fc) composition fingerprints.
        ref_struct, ref_comp: (R, Fs), (R, Fc) fingerprints of the reference (test) set.
        cutoffs: a key of :data:`COV_CUTOFFS` or (structure cutoff, composition cutoff).
        comp_scaler: (mean, std) to z-score composition fingerprints. CDVAE uses fixed MP-20 statistics;
            when None, the reference set's own mean and std are used (std 0 -> 1). NaN -> 0 afterwards.
    """
    struct_cut, comp_cut = COV_CUTOFFS[cutoffs] if isinstance(cutoffs, str) else cutoffs
    gs, gc = np.asarray(gen_struct, float), np.asarray(gen_comp, float)
    rs, rc = np.asarray(ref_struct, float), np.asarray(ref_comp, float)
    if len(gs) != len(gc) or len(rs) != len(rc):
        raise ValueError("structure and composition fingerprints must have the same number of rows")
    _nonempty("generated fingerprints", gs)
    _nonempty("reference fingerprints", rs)
    n_gen = len(gs)
    keep = np.isfinite(gs).all(axis=1) & np.isfinite(gc).all(axis=1)
    gs, gc = gs[keep], gc[keep]
    if comp_scaler is None:
        mean, std = np.nanmean(rc, axis=0), np.nanstd(rc, axis=0)
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = (np.asarray(x, float) for x in comp_scaler)
    gc, rc = np.nan_to_num((gc - mean) / std), np.nan_to_num((rc - mean) / std)
    s_dist, c_dist = cdist(gs, rs), cdist(gc, rc)  # (G', R)
    s_rec, c_rec = s_dist.min(axis=0), c_dist.min(axis=0)  # (R,)
    s_pre, c_pre = s_dist.min(axis=1), c_dist.min(axis=1)  # (G',)
    return Coverage(
        cov_recall=float(np.mean((s_rec <= struct_cut) & (c_rec <= comp_cut))),
        cov_precision=float(np.sum((s_pre <= struct_cut) & (c_pre <= comp_cut)) / n_gen),
        amsd_recall=float(s_rec.mean()),
        amsd_precision=float(s_pre.mean()),
        amcd_recall=float(c_rec.mean()),
        amcd_precision=float(c_pre.mean()),
    )


def fingerprints(structures: Sequence[Structure]) -> tuple[np.ndarray, np.ndarray]:
    """CDVAE's fingerprints: site-averaged CrystalNN "ops" (structure) and Magpie (composition).

    Needs the ``coverage`` extra (matminer, which requires pandas < 3). Failures give NaN rows, which
    :func:`coverage` counts as missing, as the reference does.

    Returns:
        ((C, Fs) structure fingerprints, (C, 132) composition fingerprints).
    """
    try:
        from matminer.featurizers.composition import ElementProperty
        from matminer.featurizers.site import CrystalNNFingerprint
    except ImportError as exc:
        raise ImportError(
            "coverage fingerprints need matminer: pip install 'xtal-eval[coverage]' (needs pandas < 3). "
            "Alternatively pass your own fingerprints to xtal_eval.generation.coverage."
        ) from exc
    site_fp = CrystalNNFingerprint.from_preset("ops")
    comp_fp = ElementProperty.from_preset("magpie")
    struct_rows, comp_rows = [], []
    for s in structures:
        try:
            struct_rows.append(np.mean([site_fp.featurize(s, i) for i in range(len(s))], axis=0))
        except Exception:  # noqa: BLE001 - CrystalNN fails on some cells; the reference keeps them as missing
            struct_rows.append(None)
        comp_rows.append(np.asarray(comp_fp.featurize(s.composition), dtype=float))
    width = next((len(r) for r in struct_rows if r is not None), 1)
    struct = np.array([r if r is not None else np.full(width, np.nan) for r in struct_rows])
    return struct, np.array(comp_rows)
