"""Pressure dataset builder: relax structures at several pressures with an ASE calculator, resumably.

::

    from xtal_data.pressure_build import BuildConfig, build
    report = build("mp20.zarr", "runs/p", BuildConfig(pressures=(0, 50, 100), calculator="chgnet"))

Each input structure is relaxed at every pressure (GPa) with :func:`xtal_data.relax_ase.relax`; tasks run in
shards over ``workers`` processes (each loads the calculator once), every finished shard is written to the
build folder at once, and a killed build continues where it stopped when run again with the same arguments
(layout and guarantees: :mod:`xtal_data.build_shards`). Failed relaxations are kept in the shards, counted
and listed in ``failures.json``; unconverged ones are stored with ``converged = 0``. Needs
``xtal-data[ase]`` (and ``chgnet`` for the default calculator).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xtal_data.build_shards import (
    INPUTS,
    MANIFEST,
    assemble,
    done_shards,
    outcome_row,
    shard_path,
    shard_tasks,
    write_json_atomic,
)  # fmt: skip
from xtal_data.relax_ase import CALCULATORS, RelaxSettings, load_calculator, relax
from xtal_data.store import CrystalStore


@dataclass(frozen=True)
class BuildConfig:
    """What a build computes (a resumed build must use the same).

    Attributes:
        pressures: target pressures in GPa (finite, >= 0, distinct).
        calculator: short name (chgnet, emt) or ``"module:factory"``; ``calculator_kwargs`` go to the factory.
        settings: optimiser settings (fmax in eV/Å, max_steps, optimizer, cell filter).
        shard_size: tasks per shard (the work a kill can lose).
    """

    pressures: tuple[float, ...]
    calculator: str = "chgnet"
    calculator_kwargs: dict[str, Any] = field(default_factory=dict)
    settings: RelaxSettings = RelaxSettings()
    shard_size: int = 8

    def __post_init__(self) -> None:
        p = tuple(float(x) for x in self.pressures)
        if not p or any(not math.isfinite(x) or x < 0 for x in p) or len(set(p)) != len(p):
            raise ValueError(
                f"pressures must be distinct finite numbers >= 0 GPa, got {list(self.pressures)}"
            )
        object.__setattr__(self, "pressures", p)
        if self.calculator.strip().lower() not in CALCULATORS and ":" not in self.calculator:
            raise ValueError(
                f"calculator {self.calculator!r}: give 'module:factory' or one of {', '.join(CALCULATORS)}"
            )
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        try:
            json.dumps(self.calculator_kwargs)
        except TypeError as err:
            raise ValueError(f"calculator_kwargs must be JSON-serialisable ({err})") from None

    def to_dict(self) -> dict:
        return {**asdict(self), "pressures": list(self.pressures), "settings": self.settings.to_dict()}


@dataclass(frozen=True)
class BuildReport:
    """Outcome of :func:`build`: task counts, this run's work and timing, the assembled store's counts."""

    out: str
    tasks: int
    done_before: int
    ran: int
    seconds: float
    task_seconds: float
    assembled: dict | None

    def summary(self) -> str:
        rate = self.ran / max(self.task_seconds, 1e-9) * 3600
        lines = [f"{self.out}: {self.done_before + self.ran} of {self.tasks} tasks done "
                 f"({self.done_before} before this run, {self.ran} now in {self.seconds:.0f} s; "
                 f"{rate:.0f} relaxations per worker-hour)"]  # fmt: skip
        if self.assembled:
            a = self.assembled
            lines.append(f"store {self.out}/relaxed.zarr: {a['stored']} structures ({a['unconverged']} "
                         f"unconverged), {a['failed']} failed (failures.json)")  # fmt: skip
        return "\n".join(lines)


def load_inputs(source: str, *, max_atoms: int | None = None, limit: int | None = None):
    """Input structures as CrystalArrays: a store (path/URL) or any source ``xtal-data ingest`` reads (its
    pressures are ignored: inputs are starting points), then those with at most ``max_atoms`` atoms, the
    first ``limit`` of them (in source order). Returns (table, {reason: count} of unreadable inputs)."""
    skipped: dict[str, int] = {}
    try:
        table = CrystalStore.open(source).read()
    except FileNotFoundError:
        import tempfile

        from xtal_data.ingest import ingest

        with tempfile.TemporaryDirectory() as tmp:
            report = ingest(source, f"{tmp}/in.zarr", pressure=0.0, pressure_column=None, progress=False)
            skipped = report.reasons()
            table = CrystalStore.open(f"{tmp}/in.zarr").read()
    keep = [i for i in range(len(table)) if max_atoms is None or table.num_atoms[i] <= max_atoms]
    table = table.take(keep[:limit] if limit is not None else keep)
    if len(table) == 0:
        raise ValueError(f"{source}: no input structure left (max_atoms={max_atoms}, limit={limit})")
    return table, skipped


def prepare(source: str, out: Path, config: BuildConfig, selection: dict) -> dict:
    """Start a build (snapshot the inputs, write the manifest) or check that ``out`` holds the same one."""
    source = str(source) if "://" in str(source) else os.path.abspath(source)
    expected = {"source": source, "selection": selection, "config": config.to_dict()}
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        diff = [k for k in expected if manifest.get(k) != expected[k]]
        if diff:
            shown = "; ".join(f"{k}: was {manifest.get(k)}, now {expected[k]}" for k in diff)
            raise ValueError(
                f"{out} holds a different build ({shown}); use a new folder or the same arguments"
            )
        return manifest
    out.mkdir(parents=True, exist_ok=True)
    table, skipped = load_inputs(str(source), **selection)
    store = CrystalStore.create(str(out / INPUTS), overwrite=True)
    store.append(table, on_duplicate="error")
    manifest = {**expected, "num_inputs": len(table), "num_tasks": len(table) * len(config.pressures),
                "inputs_unreadable": skipped, "xtal_data_build": 1, "versions": _versions()}  # fmt: skip
    write_json_atomic(manifest_path, manifest)
    return manifest


def _versions() -> dict:
    """Versions of the packages a build's numbers depend on (recorded, not compared on resume)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("xtal-data", "ase", "chgnet", "torch", "pymatgen"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


_CALC = None


def _init_worker(spec: str, kwargs: dict, threads: int | None) -> None:
    global _CALC
    if threads:  # before the calculator imports torch; torch itself stays an optional dependency
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        if (torch := sys.modules.get("torch")) is not None:
            torch.set_num_threads(threads)
    _CALC = load_calculator(spec, **kwargs)


def _run_shard(k: int, jobs: list, settings: RelaxSettings) -> tuple[int, list[dict]]:
    """Relax one shard's tasks with this process's calculator: ``jobs`` = [(task, id, atoms, pressure)]."""
    rows = []
    for task, source_id, atoms, pressure in jobs:
        t0 = time.process_time()
        outcome = relax(atoms, _CALC, pressure, settings)
        rows.append(outcome_row(task, source_id, outcome, time.process_time() - t0))
    return k, rows


def build(
    source: str, out: str | Path, config: BuildConfig, *, workers: int = 1, max_atoms: int | None = None,
    limit: int | None = None, progress: bool = True, partial: bool = False,
    threads_per_worker: int | None = None, shards_per_process: int | None = 20,
) -> BuildReport:  # fmt: skip
    """Relax every selected structure of ``source`` at every pressure into the build folder ``out`` (local),
    resuming a build already there, then assemble ``out/relaxed.zarr`` (also from a partial build with
    ``partial``). ``threads_per_worker``: torch threads in each process (None: torch's default).

    ``shards_per_process``: each worker process is replaced by a fresh one after this many shards, which
    bounds the memory a calculator accumulates (CHGNet 0.4.2 on CPU grew to 13.6 GB over 978 relaxations
    and was killed by the OOM killer); None runs a single worker in this process, never restarted."""
    t0, out = time.perf_counter(), Path(out)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    manifest = prepare(source, out, config, {"max_atoms": max_atoms, "limit": limit})
    n_tasks, size, pressures = manifest["num_tasks"], config.shard_size, config.pressures
    done = done_shards(out, manifest)
    todo = [k for k in range(math.ceil(n_tasks / size)) if k not in done]
    done_before = n_tasks - sum(len(shard_tasks(k, size, n_tasks)) for k in todo)
    inputs = CrystalStore.open(str(out / INPUTS)).read()

    def jobs(k: int) -> list:
        return [(t, str(inputs.ids[t // len(pressures)]), inputs.record(t // len(pressures)).to_ase(),
                 pressures[t % len(pressures)]) for t in shard_tasks(k, size, n_tasks)]  # fmt: skip

    bar = _bar(progress, n_tasks, done_before)
    ran, task_seconds = 0, 0.0

    def finish(k: int, rows: list[dict]) -> None:
        nonlocal ran, task_seconds
        write_json_atomic(shard_path(out, k), {"shard": k, "results": rows})
        ran += len(rows)
        task_seconds += sum(r["seconds"] for r in rows)
        bar.update(len(rows))

    if shards_per_process is not None and shards_per_process < 1:
        raise ValueError(f"shards_per_process must be >= 1 or None, got {shards_per_process}")
    try:
        if workers == 1 and shards_per_process is None:
            if todo:
                _init_worker(config.calculator, config.calculator_kwargs, threads_per_worker)
            for k in todo:
                finish(*_run_shard(k, jobs(k), config.settings))
        elif todo:
            _run_pool(todo, jobs, config, workers, threads_per_worker, shards_per_process, finish)
    finally:
        bar.close()
    complete = len(done) + len(todo) == math.ceil(n_tasks / size)
    assembled = assemble(out, partial=partial) if complete or partial else None
    return BuildReport(str(out), n_tasks, done_before, ran, time.perf_counter() - t0, task_seconds, assembled)


def _run_pool(todo, jobs, config: BuildConfig, workers: int, threads: int | None, recycle, finish) -> None:
    ctx = multiprocessing.get_context("spawn")  # never fork: zarr runs an event-loop thread
    init = (config.calculator, config.calculator_kwargs, threads)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=init,
        max_tasks_per_child=recycle,
    ) as pool:
        queue, running = list(todo), set()
        while queue or running:
            while queue and len(running) < 2 * workers:  # bounded: inputs are not all pickled at once
                k = queue.pop(0)
                running.add(pool.submit(_run_shard, k, jobs(k), config.settings))
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                finish(*future.result())


def _bar(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="relax", unit=" tasks", disable=not enabled)
