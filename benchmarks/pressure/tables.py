"""Markdown tables from the ``summary.json`` files the two drivers write.

python benchmarks/pressure/tables.py runs/pressure_response [runs/structure_map]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def pressure_tables(summary: dict) -> str:
    out = []
    ps = summary["settings"]["pressures"]
    out.append("### Volume per atom (Å^3/atom) against the requested pressure\n")
    out.append(
        "| composition | source | " + " | ".join(f"{p:g} GPa" for p in ps) + " | slope (Å^3/atom/GPa) |"
    )
    out.append("|---|---|" + "---:|" * (len(ps) + 1))
    for f, v in summary["volume"].items():
        gen = [f"{_f(m)} ± {_f(s)}" for m, s in zip(v["generated_mean"], v["generated_std"], strict=True)]
        out.append(
            f"| {f} | generated (unrelaxed) | "
            + " | ".join(gen)
            + f" | {_f(v['slope_generated'], '{:.3f}')} |"
        )
        rel = [_f(x) for x in v["relaxed_generated_mean"]]
        out.append(
            f"| {f} | generated, relaxed at P | "
            + " | ".join(rel)
            + f" | {_f(v['slope_relaxed_generated'], '{:.3f}')} |"
        )
        ref = dict(zip(v["reference_GPa"], v["reference"], strict=True))
        out.append(
            f"| {f} | data (CHGNet set) | "
            + " | ".join(_f(ref.get(p)) for p in ps)
            + f" | {_f(v['slope_reference'], '{:.3f}')} |"
        )
    out.append("\n### Relaxation at the requested pressure (CHGNet)\n")
    out.append(
        "| P (GPa) | source | relaxed / asked | converged | mean steps | mean RMSD (Å) | median RMSD (Å) "
        "| median initial P (GPa) | mean relaxed V (Å^3/atom) |"
    )
    out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for p in ps:
        for source in ("generated", "pyxtal"):
            r = summary["relaxation"][source][f"{p:g}"]
            out.append(
                f"| {p:g} | {source} | {r['n_relaxed']}/{r['n']} | {_f(r['convergence_rate'])} | "
                f"{_f(r['mean_steps'], '{:.1f}')} | {_f(r['mean_rmsd_A'])} | {_f(r['median_rmsd_A'])} | "
                f"{_f(r['median_initial_pressure_GPa'], '{:.1f}')} | "
                f"{_f(r['mean_relaxed_volume_per_atom_A3'])} |"
            )
    if summary["known_phases"]:
        out.append("\n### Known phases: samplings to the first match\n")
        out.append(
            "| phase | formula | P (GPa) | model: found | model: mean samplings | model: per run "
            "| PyXtal: found | PyXtal: mean samplings | PyXtal: per run |"
        )
        out.append("|---|---|---:|---:|---:|---|---:|---:|---|")
        for pid, ph in summary["known_phases"].items():
            g, r = ph.get("generated", {}), ph.get("pyxtal", {})
            out.append(
                f"| {pid} | {ph['formula']} | {ph['pressure_GPa']:g} | {g.get('success_count')} | "
                f"{_f(g.get('mean_samplings'), '{:.1f}')} | {g.get('first_match_per_run')} | "
                f"{r.get('success_count')} | {_f(r.get('mean_samplings'), '{:.1f}')} | "
                f"{r.get('first_match_per_run')} |"
            )
    fr = summary.get("phase_fractions") or []
    if fr:
        ps = sorted({r["pressure_GPa"] for r in fr})
        out.append("\n### Which known phase the model makes (fraction of unrelaxed samples matching)\n")
        out.append("| phase (stable at) | " + " | ".join(f"{p:g} GPa" for p in ps) + " |")
        out.append("|---|" + "---:|" * len(ps))
        for ph in dict.fromkeys(r["phase"] for r in fr):
            got = {r["pressure_GPa"]: r for r in fr if r["phase"] == ph}
            first = next(iter(got.values()))
            cells = [f"{got[p]['n_matched']}/{got[p]['n_samples']}" if p in got else "-" for p in ps]
            out.append(f"| {ph} ({first['phase_pressure_GPa']:g} GPa) | " + " | ".join(cells) + " |")
    return "\n".join(out)


def map_tables(summary: dict) -> str:
    st = summary["stats"]
    return "\n".join([
        "| | generated | PyXtal |", "|---|---:|---:|",
        f"| median pairwise SOAP distance (standardised) | {_f(st['spread_mean'].get('generated'))} | "
        f"{_f(st['spread_mean'].get('pyxtal'))} |",
        f"| same-pressure fraction of {st['neighbours']} nearest generated neighbours | "
        f"{_f(st['pressure_neighbour_agreement'], '{:.3f}')} "
        f"(chance {_f(st['pressure_neighbour_chance'], '{:.3f}')}) | |",
    ])  # fmt: skip


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        s = json.loads((Path(arg) / "summary.json").read_text())
        print(map_tables(s) if "stats" in s else pressure_tables(s))
        print(f"\nwall {s.get('wall_s', 0):.0f} s; seconds {s.get('seconds')}\n")
