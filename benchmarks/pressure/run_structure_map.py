"""Drive :mod:`xtal_tools.evaluation.structure_map` (the paper's Fig. 4) with the shipped default model.

    OMP_NUM_THREADS=1 python benchmarks/pressure/run_structure_map.py --out runs/structure_map

Silica as in the paper: ``--formulas Si4O8`` (12 atoms) sampled ``--num`` times at each ``--pressures`` value,
a PyXtal twin of the same volume beside each sample, the known silica phases (alpha-quartz at 0 GPa,
stishovite at 15 GPa) as landmarks; SOAP (DScribe; r_cut 6 Å, n_max 5, l_max 4, sigma 1 Å, as the paper)
and UMAP (or ``--embedding tsne``). No relaxation: the map shows the structures as generated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "tools" / "src" / "xtal_tools" / "models" / "default"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/structure_map"))
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--formulas", default="Si4O8")
    ap.add_argument("--pressures", default="0,10,25,50")
    ap.add_argument("--num", type=int, default=25)
    ap.add_argument("--descriptor", default="soap", choices=("soap", "rdf"))
    ap.add_argument("--embedding", default="umap", choices=("umap", "tsne"))
    ap.add_argument("--landmarks", default="SiO2-quartz,SiO2-stishovite", help="KNOWN_PHASES ids, or 'none'")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from cond_vae.checkpoint import load_checkpoint
    from xtal_tools.evaluation.phase_library import known_phase_targets
    from xtal_tools.evaluation.samplers import ModelSampler
    from xtal_tools.evaluation.structure_map import StructureMapSettings, run_structure_map
    from xtal_tools.records import machine_info

    t0 = time.perf_counter()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    model = load_checkpoint(args.checkpoint).eval()
    settings = StructureMapSettings(
        pressures=tuple(float(x) for x in args.pressures.split(",")),
        num_per_target=args.num,
        seed=args.seed,
        descriptor=args.descriptor,
        embedding=args.embedding,
    )
    landmarks = [] if args.landmarks == "none" else known_phase_targets(args.landmarks.split(","))
    warnings.filterwarnings("ignore", message=".*extrapolat.*")
    result = run_structure_map(ModelSampler(model), args.formulas.split(","), settings, landmarks=landmarks)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started_utc": started,
        "wall_s": time.perf_counter() - t0,
        "checkpoint": str(args.checkpoint),
        "model_trained_on_conditions": (getattr(model, "trained_on", None) or {}).get("conditions"),
        "machine": machine_info("cpu"),
    }
    summary = result.write(args.out, meta=meta)
    print(f"done in {meta['wall_s']:.1f} s: {summary['counts']}; stats {summary['stats']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
