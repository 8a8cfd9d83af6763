"""Sampling jobs: (formula, pressure) rows in, ordered samples out, on one process or many.

A thin layer over :mod:`cond_vae.sampling`: the rows become requests (:func:`cond_vae.sampling.make_requests`,
every row checked before anything is sampled), :func:`cond_vae.sampling.sample_requests` samples this
rank's share, and the structures are written. Every random number of a structure is keyed by
``(seed, row, sample index)``, so the output is the same for any number of processes: a run under
``torchrun --nproc-per-node 4`` writes exactly what a single process writes with the same seed and
sampler settings (the test suite checks this with two CPU processes), and what ``tools/csp``,
``tools/benchmark`` and ``tools/evaluate`` sample for the same rows.

Under a launcher that sets ``RANK`` / ``WORLD_SIZE`` (torchrun, SLURM via torchrun, ...), every rank
writes its samples to ``OUT/.shards/rank-<r>.json`` (:func:`cond_vae.sampling.write_shard`) and rank 0
merges them in (row, index) order once all shards are complete (:func:`cond_vae.sampling.merge_shards`).
Nothing appears in ``OUT`` before the merge has succeeded.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cond_vae.sampling import SamplerConfig

__all__ = [
    "SampleConfig",
    "SampleRow",
    "SamplingRun",
    "SamplingSummary",
    "check_pressure",
    "make_row_requests",
    "parse_pressures",
    "prepare_sampling",
    "read_rows",
    "request_rows",
    "run_sampling",
]


# progress in whole structures although the engine reports fractions of a block after every call
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} structures [{elapsed}<{remaining}]"


@dataclass(frozen=True)
class SampleRow:
    """One request: a full-cell ``formula`` (e.g. ``"Si4O8"``) at ``pressure`` GPa; optional ``id``."""

    formula: str
    pressure: float
    id: str | None = None


@dataclass(frozen=True)
class SampleConfig:
    """What ``tools/sample`` does: the ``[sample]`` table and ``[sampler]``.

    The rows are one ``formula`` (full cell, e.g. ``"Si4O8"``) at ``pressure`` GPa, or the CSV file
    ``rows`` (columns formula, pressure, optionally id). ``num`` structures per row, ``seed``, the
    ``sampler`` (:class:`cond_vae.SamplerConfig`), output ``formats`` (cif, extxyz, store) and the
    model: ``checkpoint`` ("" for the shipped default model) on ``device`` (auto, cpu, cuda).
    """

    checkpoint: str = ""
    formula: str = ""
    pressure: float | None = None
    rows: str = ""
    num: int = 10
    seed: int = 0
    device: str = "auto"
    formats: tuple[str, ...] = ("cif", "extxyz")
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ValueError(f"num must be >= 1, got {self.num}")
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
    decoder_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The run record's ``[summary]``."""
        return {"num_rows": self.num_rows, "num_samples": self.num_samples, "written": self.written,
                "failed": dict(self.failed), "wall_s": self.wall_s,
                "decoder_calls": self.decoder_calls}  # fmt: skip


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


def parse_pressures(text: str, flag: str = "--pressure") -> tuple[float, ...]:
    """``"0,50"`` -> ``(0.0, 50.0)``: each finite and >= 0 GPa, none repeated (``flag`` names the source)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError(f"{flag}: empty (give a number in GPa, or several: 0,50)")
    pressures = tuple(check_pressure(p, flag) for p in parts)
    if len(set(pressures)) != len(pressures):
        raise ValueError(f"{flag} {text!r}: a pressure is repeated")
    return pressures


def request_rows(config: SampleConfig) -> list[SampleRow]:
    """The rows a :class:`SampleConfig` asks for: its formula at its pressure, or its CSV's rows.

    Raises:
        ValueError, FileNotFoundError: neither or both given, no pressure, or a bad CSV (named).
    """
    if bool(config.formula.strip()) == bool(config.rows):
        raise ValueError("give either --formula with --pressure, or --rows CSV")
    if config.rows:
        return read_rows(config.rows)
    if config.pressure is None:
        raise ValueError("--formula needs --pressure (GPa)")
    return [SampleRow(config.formula.strip(), check_pressure(config.pressure, "--pressure"))]


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


def make_row_requests(rows: Sequence[SampleRow], model) -> list:
    """The rows as :class:`cond_vae.sampling.SampleRequest` (row ``i`` is request ``i``).

    Raises:
        ValueError: a bad row (unknown element, empty formula, too many atoms, bad pressure), named
            by its index (and id).
    """
    from cond_vae.sampling import make_requests

    rows = list(rows)
    if not rows:
        raise ValueError("no rows to sample")
    try:
        return make_requests(
            model, [r.formula for r in rows], [r.pressure for r in rows], ids=[r.id for r in rows]
        )
    except ValueError as err:
        message = str(err)
        for i, row in enumerate(rows):  # name the row's id too, as the CSV has it
            if row.id and message.startswith(f"row {i} "):
                message = f"row {i} ({row.id}){message[len(f'row {i}') :]}"
                break
        raise ValueError(message) from None


def _write_outputs(
    samples, rows, config: SampleConfig, out_dir: Path, prior=None
) -> tuple[int, tuple[str, ...]]:
    """Write every format into ``out_dir/.staging`` first, then move into ``out_dir``; ``samples.csv``
    names each structure's analogue (the training crystal it started from) when ``prior`` keeps them."""
    from cond_vae import write_cif, write_extxyz, write_store

    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = []
    written = 0
    if "cif" in config.formats:
        written = write_cif(samples, staging / "cif").written
        names.append("cif")
    if "extxyz" in config.formats:
        written = write_extxyz(samples, staging / "samples.extxyz").written
        names.append("samples.extxyz")
    if "store" in config.formats:
        written = write_store(samples, str(staging / "samples.zarr")).written
        names.append("samples.zarr")
    with (staging / "samples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "index", "id", "formula", "pressure_GPa", "valid", "reason", "analogue"])
        for s in samples:
            j = s.extra.get("analogue")
            analogue = "" if j is None or prior is None or not prior.has_analogues else prior.describe(j)
            w.writerow(
                [
                    s.row,
                    s.index,
                    rows[s.row].id or "",
                    s.formula,
                    s.conditions.get("pressure"),
                    int(s.valid),
                    s.reason,
                    analogue,
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
    config: SampleConfig,
    out_dir: str | os.PathLike,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier=None,
    shard_timeout_s: float = 24 * 3600,
    progress: bool | None = None,
) -> SamplingSummary | None:
    """Sample ``config.num`` structures per row and write them to ``out_dir``.

    With ``world_size > 1`` every rank calls this with the same arguments; each samples its share
    (blocks of ``config.sampler.batch_size`` structures dealt round-robin), writes its shard, and rank 0
    merges and returns the summary (other ranks return ``None``). ``barrier`` (e.g.
    ``torch.distributed.barrier``) is called after the shard is written; without it, rank 0 polls the
    shard folder. ``progress``: a bar on rank 0 (None: when stderr is a terminal).

    Raises:
        ValueError: a bad row (unknown element, empty formula, too many atoms, bad pressure), named
            by its index, before any sampling starts.
    """
    from cond_vae.sampling import merge_shards, sample_requests, write_shard

    t0 = time.perf_counter()
    rows = list(rows)
    requests = make_row_requests(rows, model)
    out_dir = Path(out_dir)
    shard_dir = out_dir / ".shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm

    total = -(-len(rows) * config.num // world_size)  # about this rank's share
    with tqdm(
        total=total,
        desc="sample",
        unit="structure",
        disable=True if rank != 0 else (None if progress is None else not progress),
        bar_format=BAR,
    ) as bar:
        samples = sample_requests(
            model,
            requests,
            num_per_row=config.num,
            seed=config.seed,
            sampler=config.sampler,
            rank=rank,
            world_size=world_size,
            progress=bar.update,
        )
    if world_size > 1:
        write_shard(shard_dir, rank, samples)
        if barrier is not None:
            barrier()
        if rank != 0:
            return None
        samples = merge_shards(shard_dir, world_size, timeout_s=shard_timeout_s)
    written, outputs = _write_outputs(samples, rows, config, out_dir, getattr(model, "latent_prior", None))
    shutil.rmtree(shard_dir, ignore_errors=True)
    failed = Counter(s.reason.split(":")[0] for s in samples if not s.valid)
    return SamplingSummary(
        num_rows=len(rows),
        num_samples=len(samples),
        written=written,
        failed=dict(failed),
        outputs=outputs,
        wall_s=time.perf_counter() - t0,
        decoder_calls=sum(int(s.extra.get("decoder_calls", 0)) for s in samples),
    )


@dataclass
class SamplingRun:
    """A checked, ready-to-run ``tools/sample`` job (:func:`prepare_sampling`): the opened model
    (:class:`xtal_tools.checkpoints.OpenModel`), the rows, and ``warnings`` about the request."""

    config: SampleConfig
    opened: Any
    rows: list[SampleRow]
    warnings: list[str]

    def derived(self) -> dict[str, Any]:
        """What the run record says about the job beyond its settings."""
        return {
            "checkpoint": str(self.opened.path),
            "device": self.opened.device,
            "world_size": self.opened.world_size,
            "num_rows": len(self.rows),
            "decoder_calls_per_structure": self.config.sampler.decoder_calls(len(self.opened.model.sigmas)),
        }

    def run(self, out_dir: str | os.PathLike, *, progress: bool | None = None) -> SamplingSummary | None:
        """Sample and write (:func:`run_sampling` on this process's rank); leaves the process group."""
        import torch

        with torch.inference_mode():
            summary = run_sampling(
                self.opened.model, self.rows, self.config, out_dir, rank=self.opened.rank,
                world_size=self.opened.world_size, barrier=self.opened.barrier, progress=progress,
            )  # fmt: skip
        self.opened.close()
        return summary


def prepare_sampling(config: SampleConfig) -> SamplingRun:
    """Open the model (joining a launcher's process group) and check every row against it, before
    anything is written.

    Raises:
        ValueError, FileNotFoundError: a bad request, rows file or checkpoint (the culprit named).
    """
    from xtal_tools.checkpoints import condition_warnings, open_model

    rows = request_rows(config)
    opened = open_model(config.checkpoint, device=config.device, join=True)
    make_row_requests(rows, opened.model)
    return SamplingRun(
        config, opened, rows, condition_warnings(opened.model, sorted({r.pressure for r in rows}))
    )
