"""Reconstruction metrics (CDVAE ``RecEval``): match rate and mean normalised RMSD of prediction i vs truth i.

A pair matches when ``get_rms_dist(pred, gt)`` finds a mapping (argument order as in the reference); the
RMSD is its first element, the RMS displacement over ``(V/N)^(1/3)``, averaged over matched pairs only.
Three gates are reported side by side: ``none``; ``pred`` (CDVAE: an invalid prediction counts as
unmatched; with true atom types this includes SMACT validity of the true composition, which caps MP-20 at
about 91%); ``pred_and_gt`` (DiffCSP). Gates need the ``smact`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from xtal_eval.pairs import PairTable, match_pairs
from xtal_eval.parallel import Parallel
from xtal_eval.presets import MatcherPreset
from xtal_eval.symmetry import spacegroup_agreement
from xtal_eval.validity import validity

__all__ = ["GATES", "ReconMetrics", "ReconReport", "reconstruction"]

GATES = ("none", "pred", "pred_and_gt")


@dataclass(frozen=True)
class ReconMetrics:
    """Summary for one preset and one validity gate.

    Attributes:
        preset, gate: what was measured.
        n: number of pairs (the denominator).
        n_matched: matched pairs.
        match_rate: ``n_matched / n`` (a fraction, not a percentage).
        mean_rmsd: mean normalised RMSD over matched pairs; None when nothing matched.
        spacegroup_agreement: fraction of matched pairs with equal space groups (None when not computed or
            nothing matched).
    """

    preset: str
    gate: str
    n: int
    n_matched: int
    match_rate: float
    mean_rmsd: float | None
    spacegroup_agreement: float | None = None


@dataclass(frozen=True)
class ReconReport:
    """Everything :func:`reconstruction` measured.

    Attributes:
        metrics: one :class:`ReconMetrics` per (preset, gate).
        table: the per-pair outcomes (ungated).
        pred_valid, gt_valid: (M,) validity (structural and SMACT), or None when not computed.
        same_spacegroup: (M,) bool space-group agreement per pair, or None when not computed.
    """

    metrics: tuple[ReconMetrics, ...]
    table: PairTable
    pred_valid: np.ndarray | None
    gt_valid: np.ndarray | None
    same_spacegroup: np.ndarray | None

    def get(self, preset: str, gate: str = "none") -> ReconMetrics:
        for m in self.metrics:
            if m.preset == preset and m.gate == gate:
                return m
        raise KeyError(f"no metrics for preset {preset!r} and gate {gate!r}")


def _summarise(preset: str, gate: str, matched: np.ndarray, rms: np.ndarray, same_sg) -> ReconMetrics:
    n_matched = int(matched.sum())
    mean = float(rms[matched].mean()) if n_matched else None
    sg = float(same_sg[matched].mean()) if (same_sg is not None and n_matched) else None
    return ReconMetrics(preset, gate, len(matched), n_matched, n_matched / len(matched), mean, sg)


def reconstruction(
    preds: Sequence[Structure],
    gts: Sequence[Structure],
    *,
    presets: str | MatcherPreset | Sequence[str | MatcherPreset] = ("cdvae", "paper", "strict"),
    gates: bool = True,
    spacegroup: bool = False,
    parallel: Parallel | None = None,
) -> ReconReport:
    """Reconstruction match rate and mean RMSD of ``preds[i]`` against ``gts[i]``, for every preset.

    Args:
        preds, gts: paired structures (same length, pred i reconstructs gt i).
        presets: matcher presets reported side by side.
        gates: also report the ``pred`` and ``pred_and_gt`` validity gates (needs the ``smact`` extra).
        spacegroup: also report space-group agreement of matched pairs (spglib, symprec 0.1 Å).
        parallel: execution backend.

    Raises:
        ValueError: empty input or different lengths.
    """
    table = match_pairs(preds, gts, presets=presets, criterion="rms", parallel=parallel)
    pred_valid = validity(preds).valid if gates else None
    gt_valid = validity(gts).valid if gates else None
    same_sg = spacegroup_agreement(preds, gts) if spacegroup else None
    metrics = []
    for preset in table.presets:
        matched, rms = table.matched(preset), table.rms(preset)
        masks = {"none": np.ones_like(matched)}
        if gates:
            masks["pred"] = pred_valid
            masks["pred_and_gt"] = pred_valid & gt_valid
        for gate, mask in masks.items():
            metrics.append(_summarise(preset.name, gate, matched & mask, rms, same_sg))
    return ReconReport(tuple(metrics), table, pred_valid, gt_valid, same_sg)
