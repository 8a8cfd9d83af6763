"""Sampled structures as JSON records, and per-rank shards merged in (row, index) order.

Every process of a distributed run writes its share to ``<dir>/rank-<r>.json`` (atomically); rank 0
merges the shards once all are present. The merged list is what one process would have produced.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from xtal_graph import Crystal

from ._engine import SampledStructure

__all__ = ["from_record", "merge_shards", "to_record", "write_shard"]


def to_record(s: SampledStructure) -> dict:
    """A JSON-serialisable dict of one sample (coordinates as float64 lists: exact round trip)."""
    c = s.crystal
    crystal = None
    if c is not None:
        crystal = {
            "atom_types": c.atom_types.tolist(),
            "frac_coords": c.frac_coords.tolist(),
            "lattice": c.lattice.tolist(),
        }
    return {
        "row": s.row, "index": s.index, "formula": s.formula, "conditions": s.conditions, "reason": s.reason,
        "extra": s.extra, "crystal": crystal,
    }  # fmt: skip


def from_record(d: dict) -> SampledStructure:
    """Inverse of :func:`to_record`."""
    c = d["crystal"]
    crystal = None
    if c is not None:
        crystal = Crystal(
            atom_types=np.asarray(c["atom_types"], dtype=np.int64),
            frac_coords=np.asarray(c["frac_coords"], dtype=np.float64),
            lattice=np.asarray(c["lattice"], dtype=np.float64),
            properties=dict(d["conditions"]),
            id=f"{d['row']}-{d['index']}",
        )
    return SampledStructure(
        d["row"],
        d["index"],
        d["formula"],
        dict(d["conditions"]),
        crystal,
        d["reason"],
        dict(d.get("extra", {})),
    )


def write_shard(directory: str | os.PathLike, rank: int, samples: list[SampledStructure]) -> Path:
    """Write this rank's samples to ``directory/rank-<rank>.json`` (renamed into place when complete)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"rank-{rank}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps([to_record(s) for s in samples]))
    os.replace(tmp, path)
    return path


def merge_shards(
    directory: str | os.PathLike, world_size: int, *, timeout_s: float = 24 * 3600
) -> list[SampledStructure]:
    """Wait for every rank's shard, then all samples in (row, index) order."""
    directory = Path(directory)
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [r for r in range(world_size) if not (directory / f"rank-{r}.json").exists()]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"ranks {missing} wrote no shard in {directory} within {timeout_s:.0f} s")
        time.sleep(0.2)
    samples = [
        from_record(d)
        for r in range(world_size)
        for d in json.loads((directory / f"rank-{r}.json").read_text())
    ]
    return sorted(samples, key=lambda s: (s.row, s.index))
