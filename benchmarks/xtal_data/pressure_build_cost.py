"""Cost and quality summary of a pressure build folder (``xtal-data build-pressure``), from its shards.

Usage::

    python benchmarks/xtal_data/pressure_build_cost.py runs/pressure200 [--json out.json]

Prints, per target pressure (GPa) and overall: relaxations finished, CPU seconds per relaxation (the
``time.process_time`` of the relaxing process, recorded per task in the shards), optimiser steps,
converged fraction, |residual pressure - target| (GPa), failures by reason; then relaxations and input
structures (all pressures) per CPU-hour. Reads only finished shards, so it works on a running build.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np


def load(folder: Path) -> tuple[dict, list[dict]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = []
    for path in sorted((folder / "shards").glob("shard_*.json")):
        rows += json.loads(path.read_text())["results"]
    return manifest, rows


def summarise(manifest: dict, rows: list[dict]) -> dict:
    pressures = manifest["config"]["pressures"]
    per_p = {}
    for p in pressures:
        sel = [r for r in rows if r["pressure"] == p]
        ok = [r for r in sel if r["ok"]]
        residual = [abs(-np.mean(r["stress"][:3]) - p) for r in ok]
        per_p[p] = {
            "finished": len(sel),
            "failed": len(sel) - len(ok),
            "cpu_s_mean": float(np.mean([r["seconds"] for r in sel])) if sel else float("nan"),
            "steps_median": float(np.median([r["steps"] for r in ok])) if ok else float("nan"),
            "steps_max": int(max((r["steps"] for r in ok), default=0)),
            "converged": float(np.mean([r["converged"] for r in ok])) if ok else float("nan"),
            "residual_gpa_median": float(np.median(residual)) if ok else float("nan"),
        }
    cpu = sum(r["seconds"] for r in rows)
    by_input = Counter(r["source_id"] for r in rows)
    complete_inputs = sum(1 for n in by_input.values() if n == len(pressures))
    atoms = [len(r["numbers"]) for r in rows]
    return {
        "tasks": manifest["num_tasks"],
        "finished": len(rows),
        "inputs_complete": complete_inputs,
        "cpu_seconds": cpu,
        "relaxations_per_cpu_hour": len(rows) / cpu * 3600 if cpu else float("nan"),
        "inputs_per_cpu_hour": len(rows) / len(pressures) / cpu * 3600 if cpu else float("nan"),
        "atoms_mean": float(np.mean(atoms)) if atoms else float("nan"),
        "failures": dict(Counter(r["reason"].split(":")[0] for r in rows if not r["ok"])),
        "per_pressure": per_p,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()
    s = summarise(*load(args.folder))
    print(f"{s['finished']} of {s['tasks']} relaxations finished ({s['inputs_complete']} inputs at "
          f"every pressure), {s['cpu_seconds']:.0f} CPU s, {s['atoms_mean']:.1f} atoms per cell")  # fmt: skip
    print(f"{s['relaxations_per_cpu_hour']:.0f} relaxations per CPU-hour = "
          f"{s['inputs_per_cpu_hour']:.0f} input structures (all pressures) per CPU-hour")  # fmt: skip
    print("failures:", s["failures"] or "none")
    print(
        "P (GPa)  finished  failed  CPU s/relax  median steps  max steps  converged  median |P_res - P| GPa"
    )
    for p, v in s["per_pressure"].items():
        print(f"{p:7g}  {v['finished']:8d}  {v['failed']:6d}  {v['cpu_s_mean']:11.2f}  "
              f"{v['steps_median']:12.0f}  {v['steps_max']:9d}  {v['converged']:9.3f}  "
              f"{v['residual_gpa_median']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
