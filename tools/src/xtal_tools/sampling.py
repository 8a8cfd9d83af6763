"""Sampling jobs: (formula, pressure) rows in, ordered samples out, on one process or many.

The rows are cut into fixed chunks of ``chunk_rows`` rows; chunk ``k`` is sampled with its own seed
derived from ``(seed, k)``. Chunks are dealt to ranks round-robin, so the merged output is the same
for any number of processes: a run under ``torchrun --nproc-per-node 4`` writes exactly what a
single process writes with the same seed (the test suite checks this with two CPU processes).

Under a launcher that sets ``RANK`` / ``WORLD_SIZE`` (torchrun, SLURM via torchrun, ...), every rank
writes its samples to ``OUT/.shards/rank-<r>.json`` and rank 0 merges them in row order once all
shards are complete. Nothing appears in ``OUT`` before the merge has succeeded.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

__all__ = [
    "SampleRow",
    "SamplingJob",
    "SamplingSummary",
    "read_rows",
    "validate_rows",
    "check_pressure",
    "chunk_seed",
    "rank_chunks",
    "run_sampling",
]


@dataclass(frozen=True)
class SampleRow:
    """One request: a full-cell ``formula`` (e.g. ``"Si4O8"``) at ``pressure`` GPa; optional ``id``."""

    formula: str
    pressure: float
    id: str | None = None


@dataclass(frozen=True)
class SamplingJob:
    """Sampler settings of one job (see :func:`cond_vae.sample` for their meaning)."""

    num_per_row: int = 1
    seed: int = 0
    n_step_each: int = 100
    step_lr: float = 1e-4
    skin: float | None = None
    batch_size: int = 500
    chunk_rows: int = 64
    formats: tuple[str, ...] = ("cif", "extxyz")

    def __post_init__(self) -> None:
        for name in ("num_per_row", "n_step_each", "batch_size", "chunk_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = set(self.formats) - {"cif", "extxyz", "store"}
        if unknown:
            raise ValueError(f"unknown output format(s) {sorted(unknown)}: choose from cif, extxyz, store")


@dataclass(frozen=True)
class SamplingSummary:
    """What a job produced: ``written`` valid structures, ``failed`` counts by reason, output paths."""

    num_rows: int
    num_samples: int
    written: int
    failed: dict[str, int] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    wall_s: float = 0.0


def check_pressure(value: object, where: str) -> float:
    """A finite, non-negative pressure in GPa from ``value``; ``ValueError`` prefixed with ``where``."""
    from cond_vae import check_scalar

    try:
        p = check_scalar(value, name="pressure", unit="GPa")
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if p < 0:
        raise ValueError(f"{where}: pressure {p} GPa is negative (the model is trained on P >= 0)")
    return p


def read_rows(path: str | os.PathLike) -> list[SampleRow]:
    """Rows of a CSV with columns ``formula``, ``pressure`` (GPa) and optionally ``id`` / ``material_id``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: missing columns, an empty file, or a bad pressure (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"rows file {path} does not exist")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        missing = {"formula", "pressure"} - columns
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)} (found {sorted(columns)})")
        id_col = "id" if "id" in columns else "material_id" if "material_id" in columns else None
        rows = []
        for line, rec in enumerate(reader, start=2):
            formula = (rec.get("formula") or "").strip()
            if not formula:
                raise ValueError(f"{path}:{line}: empty formula")
            pressure = check_pressure(rec.get("pressure"), f"{path}:{line}")
            rows.append(SampleRow(formula, pressure, (rec.get(id_col) or None) if id_col else None))
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def chunk_seed(seed: int, chunk: int) -> int:
    """An independent 63-bit seed for chunk ``chunk`` of a job seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(chunk)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def rank_chunks(num_rows: int, chunk_rows: int, rank: int, world_size: int) -> list[range]:
    """Row ranges of the chunks rank ``rank`` of ``world_size`` samples (round-robin over chunks)."""
    starts = range(0, num_rows, chunk_rows)
    return [range(s, min(s + chunk_rows, num_rows)) for k, s in enumerate(starts) if k % world_size == rank]


def validate_rows(rows: Sequence[SampleRow], model) -> None:
    """Check every row against the model (elements, atom count, pressure); ValueError names the row."""
    from cond_vae import parse_formula

    cfg = model.config
    for i, row in enumerate(rows):
        where = f"row {i}" + (f" ({row.id})" if row.id else "")
        try:
            parse_formula(row.formula, max_atoms=cfg.max_atoms, num_elements=cfg.num_elements)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        check_pressure(row.pressure, where)


def _sample_rank(model, rows, job: SamplingJob, rank: int, world_size: int) -> list:
    from cond_vae import sample

    out = []
    for chunk in rank_chunks(len(rows), job.chunk_rows, rank, world_size):
        samples = sample(
            model,
            [rows[i].formula for i in chunk],
            [rows[i].pressure for i in chunk],
            num_per_row=job.num_per_row,
            seed=chunk_seed(job.seed, chunk.start // job.chunk_rows),
            n_step_each=job.n_step_each,
            step_lr=job.step_lr,
            skin=job.skin,
            batch_size=job.batch_size,
        )
        out += [replace(s, row=chunk.start + s.row) for s in samples]
    return out


def _to_json(s) -> dict:
    c = s.crystal
    return {
        "row": s.row,
        "index": s.index,
        "formula": s.formula,
        "conditions": s.conditions,
        "reason": s.reason,
        "crystal": None
        if c is None
        else {
            "atom_types": c.atom_types.tolist(),
            "frac_coords": c.frac_coords.tolist(),
            "lattice": c.lattice.tolist(),
        },
    }


def _from_json(d: dict):
    from cond_vae import SampledStructure
    from xtal_graph import Crystal

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
    return SampledStructure(d["row"], d["index"], d["formula"], dict(d["conditions"]), crystal, d["reason"])


def _write_atomic_json(path: Path, payload) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def _wait_for_shards(shard_dir: Path, world_size: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        missing = [r for r in range(world_size) if not (shard_dir / f"rank-{r}.json").exists()]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"ranks {missing} wrote no shard in {shard_dir} within {timeout_s:.0f} s")
        time.sleep(0.2)


def _write_outputs(samples, rows, job: SamplingJob, out_dir: Path) -> tuple[int, tuple[str, ...]]:
    """Write every format into ``out_dir/.staging`` first, then move into ``out_dir``."""
    from cond_vae import write_cif, write_extxyz, write_store

    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = []
    written = 0
    if "cif" in job.formats:
        written = write_cif(samples, staging / "cif").written
        names.append("cif")
    if "extxyz" in job.formats:
        written = write_extxyz(samples, staging / "samples.extxyz").written
        names.append("samples.extxyz")
    if "store" in job.formats:
        written = write_store(samples, str(staging / "samples.zarr")).written
        names.append("samples.zarr")
    with (staging / "samples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "index", "id", "formula", "pressure_GPa", "valid", "reason"])
        for s in samples:
            w.writerow(
                [
                    s.row,
                    s.index,
                    rows[s.row].id or "",
                    s.formula,
                    s.conditions.get("pressure"),
                    int(s.valid),
                    s.reason,
                ]
            )
    names.append("samples.csv")
    for name in names:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staging / name, target)
    staging.rmdir()
    return written, tuple(str(out_dir / n) for n in names)


def run_sampling(
    model,
    rows: Sequence[SampleRow],
    job: SamplingJob,
    out_dir: str | os.PathLike,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier=None,
    shard_timeout_s: float = 24 * 3600,
) -> SamplingSummary | None:
    """Sample ``job.num_per_row`` structures per row and write them to ``out_dir``.

    With ``world_size > 1`` every rank calls this with the same arguments; each samples its chunks,
    writes its shard, and rank 0 merges and returns the summary (other ranks return ``None``).
    ``barrier`` (e.g. ``torch.distributed.barrier``) is called after the shard is written; without
    it, rank 0 polls the shard folder.

    Raises:
        ValueError: a bad row (unknown element, empty formula, too many atoms, bad pressure), named
            by its index, before any sampling starts.
    """
    t0 = time.perf_counter()
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to sample")
    validate_rows(rows, model)
    out_dir = Path(out_dir)
    shard_dir = out_dir / ".shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    samples = _sample_rank(model, rows, job, rank, world_size)
    if world_size > 1:
        _write_atomic_json(shard_dir / f"rank-{rank}.json", [_to_json(s) for s in samples])
        if barrier is not None:
            barrier()
        if rank != 0:
            return None
        _wait_for_shards(shard_dir, world_size, shard_timeout_s)
        samples = [
            _from_json(d)
            for r in range(world_size)
            for d in json.loads((shard_dir / f"rank-{r}.json").read_text())
        ]
    samples.sort(key=lambda s: (s.row, s.index))
    written, outputs = _write_outputs(samples, rows, job, out_dir)
    shutil.rmtree(shard_dir, ignore_errors=True)
    failed = Counter(s.reason.split(":")[0] for s in samples if not s.valid)
    return SamplingSummary(
        num_rows=len(rows),
        num_samples=len(samples),
        written=written,
        failed=dict(failed),
        outputs=outputs,
        wall_s=time.perf_counter() - t0,
    )
