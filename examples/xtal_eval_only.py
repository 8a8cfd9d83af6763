"""Score a folder of generated CIFs against a test set with xtal-eval alone (no torch anywhere).

Works in a venv with only ``pip install 'xtal-eval[plot]'`` (numpy, scipy, pymatgen, matplotlib).
The layout is what ``tools/sample --rows TARGETS`` writes: TARGETS is a table with a ``cif`` column
(ids from ``material_id``) and SAMPLES a folder of CIFs named ``{row:05d}_{formula}_{index:04d}.cif``,
``row`` being the target's row in TARGETS. A sample that is missing (the generator failed, e.g. an
invalid cell) counts as no match.

    python examples/xtal_eval_only.py TARGETS SAMPLES --num 20 --out eval/   # your own samples
    python examples/xtal_eval_only.py --demo demo/ --out demo/eval/          # made-up data first

Prints match@1 / match@num with RMSE per matcher preset and the success-rate curve, and writes
``csp.json`` and ``csp_curve.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import re
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from xtal_eval import Parallel, csp, load_structures
from xtal_eval.report import plot_success_curves, write_json

warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
NAME = re.compile(r"^(\d+)_.*_(\d+)\.cif$")


def samples_by_row(folder: Path, num_targets: int, num: int) -> list[list[Structure | None]]:
    """``num`` ordered samples per target; ``None`` where a file is missing (a failed generation)."""
    out: list[list[Structure | None]] = [[None] * num for _ in range(num_targets)]
    for path in sorted(folder.glob("*.cif")):
        m = NAME.match(path.name)
        if m is None:
            raise ValueError(f"{path}: not named {{row:05d}}_{{formula}}_{{index:04d}}.cif")
        row, index = int(m.group(1)), int(m.group(2))
        if row >= num_targets:
            raise ValueError(f"{path}: row {row} but the test set has {num_targets} targets")
        if index < num:
            out[row][index] = load_structures(path).structures[0]
    return out


def write_demo(folder: Path, num: int, seed: int = 0) -> tuple[Path, Path]:
    """A test set of six prototypes and ``num`` samples each: one close copy (0.02 Å noise) at
    position ``row % num``, strongly rattled copies (0.6 Å) elsewhere, one file left out per odd row."""
    from _prototypes import prototypes  # pymatgen only

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "samples").mkdir(exist_ok=True)
    rows = []
    for row, (name, s) in enumerate(prototypes()):
        rows.append(
            {
                "material_id": name,
                "formula": s.formula.replace(" ", ""),
                "pressure": 0.0,
                "cif": s.to(fmt="cif"),
            }
        )  # fmt: skip  (formula + pressure: a tools/sample rows file)
        for index in range(num):
            if row % 2 == 1 and index == (row + 1) % num:
                continue  # a failed generation
            sigma = 0.02 if index == row % num else 0.6
            cart = s.cart_coords + rng.normal(0, sigma, (len(s), 3))
            noisy = Structure(Lattice(s.lattice.matrix), s.species, cart, coords_are_cartesian=True)
            noisy.to(filename=str(folder / "samples" / f"{row:05d}_{name}_{index:04d}.cif"))
    with (folder / "targets.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder / "targets.csv", folder / "samples"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", type=Path, nargs="?", help="test set: CSV/feather/parquet with a cif column")
    ap.add_argument("samples", type=Path, nargs="?", help="folder of {row}_{formula}_{index}.cif files")
    ap.add_argument("--num", type=int, default=5, help="samples per target (k of match@k)")
    ap.add_argument("--presets", default="cdvae,paper,strict")
    ap.add_argument("--demo", type=Path, default=None, help="write demo data here and evaluate it")
    ap.add_argument("--out", type=Path, default=Path("xtal_eval_out"))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    args = ap.parse_args(argv)
    if args.demo is not None:
        args.targets, args.samples = write_demo(args.demo, args.num)
    if args.targets is None or args.samples is None:
        ap.error("give TARGETS and SAMPLES, or --demo DIR")

    targets = load_structures(args.targets)
    samples = samples_by_row(args.samples, len(targets), args.num)
    missing = sum(s is None for row in samples for s in row)
    print(f"{len(targets)} targets, {args.num} samples each, {missing} missing (count as no match)")
    report = csp(list(targets.structures), samples, presets=args.presets, ks=(1, args.num),
                 parallel=Parallel.from_jobs(args.jobs))  # fmt: skip
    k, summary = args.num, {}
    for r in report.results:
        curve, rmse = report.curves(r.preset)["all"], r.rmse(k)
        summary[r.preset] = {"match_rate@1": r.match_rate(1), f"match_rate@{k}": r.match_rate(k),
                             f"rmse@{k}": rmse, "success_curve": curve.tolist()}  # fmt: skip
        rmse_text = "n/a" if rmse is None else f"{rmse:.4f}"
        print(f"{r.preset:>6}: match@1 {r.match_rate(1):.3f}  match@{k} {r.match_rate(k):.3f}  "
              f"RMSE {rmse_text}  curve {np.round(curve, 3).tolist()}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "csp.json", summary)
    curves = {preset: np.asarray(s["success_curve"]) for preset, s in summary.items()}
    plot_success_curves(args.out / "csp_curve.png", curves, title="CSP success rate")
    print(f"wrote {args.out / 'csp.json'} and {args.out / 'csp_curve.png'}")
    return summary


if __name__ == "__main__":
    main()
