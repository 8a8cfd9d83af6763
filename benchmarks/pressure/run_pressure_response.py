"""Drive :mod:`xtal_tools.evaluation.pressure_response` with the shipped default model and CHGNet.

    OMP_NUM_THREADS=1 nohup python benchmarks/pressure/run_pressure_response.py --out runs/pressure_response \
        > runs/pressure_response.log 2>&1 &

Compositions: ``--limit`` cell formulas of the CHGNet pressure set
(``data/pressure/chgnet_mp20_small_6p.zarr``)
with at most ``--max-atoms`` atoms, elements the model was trained on, stored at 0, 25 and 50 GPa and not
crushed by CHGNet (V(50)/V(0) >= 0.5), drawn with ``--seed``. Each is sampled ``--num`` times at every
``--pressures`` value; a PyXtal twin of the same volume is made for each sample; all are relaxed with CHGNet
at the requested pressure. The known phases of :data:`KNOWN_PHASES` are searched ``--phase-runs`` times with
at most ``--phase-budget`` samplings each by the model and by PyXtal. Progress goes to a journal in ``--out``
(``journal.jsonl``): run the same command again after a kill and it continues.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "data" / "pressure" / "chgnet_mp20_small_6p.zarr"
DEFAULT_MODEL = ROOT / "tools" / "src" / "xtal_tools" / "models" / "default"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/pressure_response"))
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--formulas", default=None, help="comma-separated cell formulas, or none (default: drawn from --data)"
    )
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--max-atoms", type=int, default=4)
    ap.add_argument("--pressures", default="0,10,25,50")
    ap.add_argument("--num", type=int, default=5)
    ap.add_argument("--phases", default="all", help="comma-separated ids of KNOWN_PHASES, 'all' or 'none'")
    ap.add_argument("--phase-runs", type=int, default=3)
    ap.add_argument("--phase-budget", type=int, default=50)
    ap.add_argument("--phase-batch", type=int, default=10)
    ap.add_argument("--relax-phases", action="store_true")
    ap.add_argument(
        "--fraction-pressures",
        default="0,10,25,40,50",
        help="pressures (GPa) of the phase-fraction check, or none",
    )
    ap.add_argument("--fraction-num", type=int, default=100)
    ap.add_argument("--calculator", default="chgnet")
    ap.add_argument("--max-steps", type=int, default=150)
    ap.add_argument("--fmax", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from cond_vae.checkpoint import load_checkpoint
    from xtal_tools.evaluation.phase_library import known_phase_targets
    from xtal_tools.evaluation.pressure_reference import reference_trend, store_compositions
    from xtal_tools.evaluation.pressure_response import PressureResponseSettings, run_pressure_response
    from xtal_tools.evaluation.samplers import ModelSampler
    from xtal_tools.records import machine_info
    from xtal_tools.relaxation import RelaxSettings, load_calculator

    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    model = load_checkpoint(args.checkpoint).eval()
    trained = getattr(model, "trained_on", None) or {}
    pressures = tuple(float(x) for x in args.pressures.split(","))
    if args.formulas == "none":  # known phases only
        formulas = []
    elif args.formulas:
        formulas = args.formulas.split(",")
    else:
        formulas = store_compositions(
            args.data,
            limit=args.limit,
            max_atoms=args.max_atoms,
            pressures=(0.0, 25.0, 50.0),
            seed=args.seed,
            elements=trained.get("elements"),
        )
    reference = (
        [] if not formulas else reference_trend(args.data, formulas=formulas, max_pressure=max(pressures))
    )
    phases = (
        []
        if args.phases == "none"
        else known_phase_targets(None if args.phases == "all" else args.phases.split(","))
    )
    settings = PressureResponseSettings(
        pressures=pressures,
        num_per_target=args.num,
        seed=args.seed,
        relax=RelaxSettings(fmax=args.fmax, max_steps=args.max_steps),
        phase_runs=args.phase_runs,
        phase_budget=args.phase_budget,
        phase_batch=args.phase_batch,
        relax_phases=args.relax_phases,
        fraction_pressures=()
        if args.fraction_pressures == "none"
        else tuple(float(x) for x in args.fraction_pressures.split(",")),
        fraction_num=args.fraction_num,
    )
    log(f"formulas {formulas}; phases {[p.id for p in phases]}; model trained at {trained.get('conditions')}")
    calc = load_calculator(args.calculator)
    warnings.filterwarnings("ignore", message=".*outside.*trained.*")  # the model's extrapolation warning
    warnings.filterwarnings("ignore", message=".*extrapolat.*")
    result = run_pressure_response(
        ModelSampler(model),
        formulas,
        settings,
        calculator=calc,
        reference=reference,
        phases=phases,
        journal=args.out / "journal.jsonl",
        progress=log,
    )
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": started,
        "wall_s": time.perf_counter() - t0,
        "formulas": formulas,
        "checkpoint": str(args.checkpoint),
        "model_trained_on_conditions": trained.get("conditions"),
        "calculator": args.calculator,
        "data": str(args.data),
        "machine": machine_info("cpu"),
        "python": platform.python_version(),
    }
    summary = result.write(args.out, meta=meta)
    log(f"done: {summary['n_structures']} structures; outputs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
