"""The encoder's graph of the true structure: which edges (settings -> edge set) and its geometry.

The edge set of a true structure never changes during training, so it can be built once
(``cond_vae.training.EncoderGraphData`` caches it per crystal, in memory or in a sidecar file) and
carried by the batch (``CrystalBatch.edge_index`` / ``cell_offsets``). Edge vectors and distances are
always recomputed from the batch tensors (:func:`xtal_graph.periodic_graph`), so a cached radius graph
gives bit-identical encoder inputs to one built on the fly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from xtal_graph import CrystalBatch, PeriodicGraph, Triplets, periodic_graph, radius_graph_pbc, triplets
from xtal_graph.crystalnn import CRYSTALNN_PARAMS, crystalnn_edges

from ._config import EncoderConfig

__all__ = ["encoder_edges", "encoder_graph", "encoder_graph_settings"]

GRAPH_FORMAT = 1  # bump when the stored edge layout or a builder's output changes


def encoder_graph_settings(config: EncoderConfig, dtype: torch.dtype) -> dict[str, Any]:
    """What determines the encoder's edge set: recorded with a cache so a mismatch is detected.

    The radius graph depends on the coordinates' dtype (the search runs on the batch's values, so a
    float32 batch can differ from float64 at the cutoff or among tied neighbours); CrystalNN runs
    on the float64 structure whatever the training dtype.
    """
    if config.graph == "radius":
        return {
            "format": GRAPH_FORMAT,
            "graph": "radius",
            "cutoff": float(config.cutoff),
            "max_neighbors": config.max_neighbors,
            "dtype": str(dtype).removeprefix("torch."),
        }
    return {"format": GRAPH_FORMAT, "graph": "crystalnn", "crystalnn": dict(CRYSTALNN_PARAMS)}


@torch.no_grad()
def encoder_edges(batch: CrystalBatch, config: EncoderConfig) -> tuple[Tensor, Tensor]:
    """The encoder's edge set of ``batch`` built now: ``edge_index (2, E)`` long (batch-wide atom
    indices, row 0 source, row 1 target) and ``cell_offsets (E, 3)`` long.

    ``"radius"`` searches in the batch's own dtype (as :func:`encoder_graph` does on the fly);
    ``"crystalnn"`` runs pymatgen on each crystal (slow: precompute it).
    """
    if config.graph == "radius":
        graph = radius_graph_pbc(
            batch.frac_coords, batch.lattice, batch.num_atoms, config.cutoff, config.max_neighbors
        )
        return graph.edge_index, graph.cell_offsets
    starts = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).tolist()
    index, offsets = [], []
    for start, crystal in zip(starts, batch.to_crystals(), strict=True):
        edge_index, cell_offsets = crystalnn_edges(crystal)
        index.append(edge_index + start)
        offsets.append(cell_offsets)
    device = batch.frac_coords.device
    return (
        torch.from_numpy(np.concatenate(index, axis=1)).to(device),
        torch.from_numpy(np.concatenate(offsets, axis=0)).to(device),
    )


def encoder_graph(batch: CrystalBatch, config: EncoderConfig) -> tuple[PeriodicGraph, Triplets]:
    """The encoder's graph and triplets of ``batch``: from the batch's precomputed edges when it
    carries them (they must come from the same settings), else built now. Vectors and distances
    (Å) come from the batch's coordinates and lattices."""
    if batch.edge_index is not None:
        edge_index, cell_offsets = batch.edge_index, batch.cell_offsets
    elif config.graph == "radius":
        graph = radius_graph_pbc(
            batch.frac_coords, batch.lattice, batch.num_atoms, config.cutoff, config.max_neighbors
        )
        return graph, triplets(graph, batch.frac_coords.shape[0])
    else:
        edge_index, cell_offsets = encoder_edges(batch, config)
    graph = periodic_graph(batch.frac_coords, batch.lattice, edge_index, cell_offsets, batch.batch)
    return graph, triplets(graph, batch.frac_coords.shape[0])
