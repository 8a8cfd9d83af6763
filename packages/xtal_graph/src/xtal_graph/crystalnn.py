"""CrystalNN bonding graphs (pymatgen's ``CrystalNN``), as the reference's encoder graph.

The reference builds ``StructureGraph.with_local_env_strategy(structure, CrystalNN(distance_cutoffs=None,
x_diff_weight=-1, porous_adjustment=False))`` once per structure and stores every undirected bond in both
directions. :func:`crystalnn_edges` does the same, with one difference: each directed edge appears once
(the reference's graph can hold a bond of an atom to its own image twice, once per image sign).
It needs pymatgen and takes about 50-100 ms per MP-20 structure, so it is meant to be precomputed
(see ``cond_vae.training.EncoderGraphData``), not rebuilt at every step.
"""

from __future__ import annotations

import numpy as np

from .batch import Crystal

__all__ = ["CRYSTALNN_PARAMS", "crystalnn_edges"]

# The reference's CrystalNN settings (reference-anatomy.md §1.4).
CRYSTALNN_PARAMS = {"distance_cutoffs": None, "x_diff_weight": -1, "porous_adjustment": False}


def _canonical(a: int, b: int, image: tuple[int, int, int]) -> tuple[int, int, tuple[int, int, int]]:
    """One key per undirected bond: (low atom, high atom, image of the high one seen from the low)."""
    if a > b or (a == b and image < tuple(-t for t in image)):
        return b, a, tuple(-t for t in image)
    return a, b, image


def crystalnn_edges(crystal: Crystal) -> tuple[np.ndarray, np.ndarray]:
    """CrystalNN bonds of one structure as directed edges in both directions.

    Returns:
        ``edge_index (2, E)`` int64 local atom indices (row 0 the source ``j``, row 1 the target
        ``i``) and ``cell_offsets (E, 3)`` int64, such that ``frac[j] + offset`` is the bonded image
        of ``j`` seen from ``i`` (the xtal_graph edge convention). Sorted by target, then source,
        then offset.
    """
    from pymatgen.analysis.local_env import CrystalNN

    structure = crystal.to_pymatgen()  # same fractional coordinates: images refer to them
    strategy = CrystalNN(**CRYSTALNN_PARAMS)
    bonds: set[tuple[int, int, tuple[int, int, int]]] = set()
    for i, neighbours in enumerate(strategy.get_all_nn_info(structure)):
        for info in neighbours:
            image = tuple(int(round(t)) for t in info["image"])
            bonds.add(_canonical(i, int(info["site_index"]), image))  # type: ignore[arg-type]
    rows = []
    for a, b, image in bonds:  # b's image `image` bonds to a; so does a's image -image to b
        rows.append((a, b, *(-t for t in image)))  # edge a -> b (target b)
        rows.append((b, a, *image))  # edge b -> a (target a); for a == b the opposite image
    if not rows:
        return np.zeros((2, 0), dtype=np.int64), np.zeros((0, 3), dtype=np.int64)
    table = np.array(sorted(rows, key=lambda r: (r[1], r[0], r[2:])), dtype=np.int64)  # (E, 5)
    return np.ascontiguousarray(table[:, :2].T), np.ascontiguousarray(table[:, 2:])
