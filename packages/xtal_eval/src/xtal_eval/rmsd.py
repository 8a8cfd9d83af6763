"""Relaxation RMSD: how far atoms move between a structure and its relaxed counterpart (paper, Table III).

Atoms correspond one to one, in order. Each displacement is the minimum-image vector of the fractional
difference, measured in the *unrelaxed* lattice; the RMSD is in Å and not normalised. Unlike the reference
script (27 images), the minimum image is exact in any cell (:mod:`xtal_eval.geometry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from xtal_eval.geometry import min_image_vectors

__all__ = ["RelaxationRmsd", "relaxation_rmsd", "relaxation_rmsds"]


def _check_pair(unrelaxed: Structure, relaxed: Structure, label: str) -> None:
    if len(unrelaxed) != len(relaxed):
        raise ValueError(f"{label}: {len(unrelaxed)} sites before relaxation but {len(relaxed)} after")
    if len(unrelaxed) == 0:
        raise ValueError(f"{label}: structure has no sites")
    for i, (s1, s2) in enumerate(zip(unrelaxed, relaxed, strict=True)):
        if s1.species != s2.species:
            raise ValueError(
                f"{label}: site {i} is {s1.species_string} before relaxation but {s2.species_string} after; "
                "atoms must correspond in order"
            )


def relaxation_rmsd(unrelaxed: Structure, relaxed: Structure, *, label: str = "pair") -> float:
    """RMS over atoms of the minimum-image displacement, in Å, in the unrelaxed lattice.

    Raises:
        ValueError: different numbers of sites, or a different species at some site (named in the message).
    """
    _check_pair(unrelaxed, relaxed, label)
    dfrac = relaxed.frac_coords - unrelaxed.frac_coords  # (N, 3)
    disp = min_image_vectors(dfrac, unrelaxed.lattice.matrix)  # (N, 3)
    return float(np.sqrt(np.mean(np.sum(disp**2, axis=1))))


@dataclass(frozen=True)
class RelaxationRmsd:
    """RMSDs of many pairs.

    Attributes:
        rmsd: (M,) per-pair RMSD in Å.
        mean: mean over pairs (Å).
        median: median over pairs (Å).
    """

    rmsd: np.ndarray
    mean: float
    median: float


def relaxation_rmsds(
    unrelaxed: Sequence[Structure], relaxed: Sequence[Structure], *, ids: Sequence[str] | None = None
) -> RelaxationRmsd:
    """:func:`relaxation_rmsd` for every pair, order by order.

    Raises:
        ValueError: empty input, different lengths, or a bad pair (named by its id or index).
    """
    if len(unrelaxed) != len(relaxed):
        raise ValueError(f"{len(unrelaxed)} unrelaxed structures but {len(relaxed)} relaxed ones")
    if len(unrelaxed) == 0:
        raise ValueError("no structures given (empty input)")
    labels = list(ids) if ids is not None else [f"pair {i}" for i in range(len(unrelaxed))]
    values = np.array(
        [relaxation_rmsd(u, r, label=str(lab)) for u, r, lab in zip(unrelaxed, relaxed, labels, strict=True)]
    )
    return RelaxationRmsd(rmsd=values, mean=float(values.mean()), median=float(np.median(values)))
