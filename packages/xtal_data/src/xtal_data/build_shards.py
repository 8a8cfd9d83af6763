"""The on-disk state of a pressure dataset build: manifest, input snapshot, result shards, assembly.

A build folder (local) holds::

    inputs.zarr/        the input structures, copied once (the build never re-reads its source)
    manifest.json       source, selection, settings, task count: written last when a build starts, so a
                        build folder without it is not started; a resumed build must match it
    shards/shard_000012.json   results of tasks [12 * shard_size, 13 * shard_size), written atomically
                        (temporary file + rename): a shard exists completely or not at all
    relaxed.zarr/       the assembled store (rebuilt from the shards by :func:`assemble`)
    failures.json       tasks whose relaxation failed: id, pressure, reason

Task ``t`` relaxes input structure ``t // P`` at pressure ``pressures[t % P]``; its record id is
``<input id>@<pressure>GPa``. A killed build loses at most the shards in flight, and the next run
redoes exactly those: no task is lost or done twice.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from xtal_data import __version__
from xtal_data.records import CrystalArrays, CrystalRecord
from xtal_data.store import CrystalStore

MANIFEST, INPUTS, SHARDS, STORE, FAILURES = (
    "manifest.json",
    "inputs.zarr",
    "shards",
    "relaxed.zarr",
    "failures.json",
)
STRESS_NAMES = ("stress_xx", "stress_yy", "stress_zz", "stress_yz", "stress_xz", "stress_xy")


def task_id(source_id: str, pressure: float) -> str:
    """Record id of one task: ``"<source id>@<pressure>GPa"`` (pressure in GPa, shortest exact form)."""
    return f"{source_id}@{pressure:g}GPa"


def write_json_atomic(path: Path, payload) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never a half-written file)."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def shard_path(out: Path, k: int) -> Path:
    return out / SHARDS / f"shard_{k:06d}.json"


def shard_tasks(k: int, shard_size: int, num_tasks: int) -> list[int]:
    return list(range(k * shard_size, min((k + 1) * shard_size, num_tasks)))


def done_shards(out: Path, manifest: dict) -> set[int]:
    """Shards whose file is complete and holds exactly its tasks; stray temporary files are removed and
    unreadable shard files are set aside as ``*.bad`` (their tasks run again)."""
    folder = out / SHARDS
    folder.mkdir(exist_ok=True)
    for tmp in folder.glob("*.tmp*"):
        tmp.unlink()
    done = set()
    n_tasks, size = manifest["num_tasks"], manifest["config"]["shard_size"]
    for path in folder.glob("shard_*.json"):
        k = int(path.stem.split("_")[1])
        try:
            tasks = [r["task"] for r in json.loads(path.read_text())["results"]]
        except (ValueError, KeyError, TypeError):
            tasks = None
        if tasks != shard_tasks(k, size, n_tasks):
            path.rename(path.with_suffix(".bad"))
            continue
        done.add(k)
    return done


def outcome_row(task: int, source_id: str, outcome, seconds: float) -> dict:
    """One task's result as a JSON-able dict (floats round-trip exactly through JSON)."""
    stress = [math.nan] * 6 if outcome.stress is None else [float(s) for s in outcome.stress]
    return {
        "task": task, "id": task_id(source_id, outcome.pressure), "source_id": source_id,
        "pressure": outcome.pressure, "ok": outcome.ok, "converged": outcome.converged,
        "steps": outcome.steps, "energy": outcome.energy, "enthalpy": outcome.enthalpy, "stress": stress,
        "reason": outcome.reason,
        "numbers": np.asarray(outcome.numbers).tolist(), "cell": np.asarray(outcome.cell).tolist(),
        "frac": np.asarray(outcome.frac).tolist(), "seconds": seconds,
    }  # fmt: skip


def read_rows(out: Path, shards: list[int]) -> list[dict]:
    rows = []
    for k in sorted(shards):
        rows += json.loads(shard_path(out, k).read_text())["results"]
    return rows


def _record(row: dict, calculator: str, settings_json: str) -> CrystalRecord:
    n = len(row["numbers"])
    props = {
        "energy": row["energy"], "energy_per_atom": row["energy"] / n,
        "enthalpy": row["enthalpy"], "enthalpy_per_atom": row["enthalpy"] / n,
        **dict(zip(STRESS_NAMES, row["stress"], strict=True)),
        "residual_pressure": -float(np.mean(row["stress"][:3])),
        "steps": float(row["steps"]), "converged": float(row["converged"]),
        "calculator": calculator, "calculator_settings": settings_json, "source_id": row["source_id"],
    }  # fmt: skip
    return CrystalRecord(
        row["id"], np.asarray(row["numbers"], dtype=np.int64), np.asarray(row["frac"], dtype=np.float64),
        np.asarray(row["cell"], dtype=np.float64), row["pressure"], props,
    ).validate()  # fmt: skip


def assemble(out: str | Path, *, partial: bool = False, batch_size: int = 4096) -> dict:
    """Rebuild ``relaxed.zarr`` (and ``failures.json``) from the finished shards; returns counts.

    Refuses an unfinished build unless ``partial``. The store is written beside the old one and swapped in,
    so it always holds each finished task once."""
    out = Path(out)
    manifest = json.loads((out / MANIFEST).read_text())
    n_shards = math.ceil(manifest["num_tasks"] / manifest["config"]["shard_size"])
    done = done_shards(out, manifest)
    if len(done) < n_shards and not partial:
        raise ValueError(f"{out}: {n_shards - len(done)} of {n_shards} shards unfinished; "
                         "run the build again or assemble a partial store (--partial)")  # fmt: skip
    rows = read_rows(out, sorted(done))
    config = manifest["config"]
    settings_json = json.dumps({"calculator_kwargs": config["calculator_kwargs"], **config["settings"]})
    records = [_record(r, config["calculator"], settings_json) for r in rows if r["ok"]]
    failures = [
        {k: r[k] for k in ("id", "source_id", "pressure", "reason", "steps")} for r in rows if not r["ok"]
    ]
    tmp = out / f"{STORE}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    store = CrystalStore.create(str(tmp))
    for start in range(0, len(records), batch_size):
        store.append(CrystalArrays.from_records(records[start : start + batch_size]), on_duplicate="error")
    counts = {
        "tasks": manifest["num_tasks"], "finished": len(rows), "stored": len(records),
        "failed": len(failures), "unconverged": sum(1 for r in rows if r["ok"] and not r["converged"]),
        "complete": len(done) == n_shards,
    }  # fmt: skip
    store.add_provenance({
        "action": "build-pressure", "source": manifest["source"], "xtal_data_version": __version__,
        "calculator": config["calculator"], "settings": json.loads(settings_json),
        "pressures_gpa": config["pressures"], **counts,
    })  # fmt: skip
    shutil.rmtree(out / STORE, ignore_errors=True)
    os.replace(tmp, out / STORE)
    write_json_atomic(out / FAILURES, failures)
    return counts
