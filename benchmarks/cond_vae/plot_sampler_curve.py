"""Plot ``rows.csv`` of ``bench_sampler_curve.py``: match@20 and match@1 (cdvae and paper presets) against
decoder calls per structure, one panel per dataset, one line per sampler; true-lattice points hollow.

    python benchmarks/cond_vae/plot_sampler_curve.py docs/benchmarks/sampler/shipped_rows.csv \\
        docs/benchmarks/sampler/curve.png
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATASETS = ("MP-20", "Perov-5", "Carbon-24")
# the reference point is measured on its own, smaller target set (see summary.json)
COLORS = {
    "ode": "tab:blue",
    "pc": "tab:orange",
    "ancestral": "tab:green",
    "langevin": "tab:red",
    "reference": "k",
}


def family(setting: str) -> str:
    return setting.split("-")[0]


def main(src: str, dst: str) -> None:
    rows = [r for r in csv.DictReader(open(src)) if not r["setting"].endswith("targets)")]
    metrics = [("match@20_cdvae", "match@20, cdvae"), ("match@20_paper", "match@20, paper"),
               ("match@1_cdvae", "match@1, cdvae")]  # fmt: skip
    fig, axes = plt.subplots(len(metrics), len(DATASETS), figsize=(13, 9), sharex=True, squeeze=False)
    for i, (col, title) in enumerate(metrics):
        for j, ds in enumerate(DATASETS):
            ax = axes[i][j]
            lines = defaultdict(list)
            for r in rows:
                if r["dataset"] != ds or r["setting"] == "pc-50-snr0.2":
                    continue
                key = (family(r["setting"]), r["true_lattice"] == "True")
                lines[key].append((int(r["decoder_calls"]), 100 * float(r[col] or 0)))
            for (fam, tl), pts in sorted(lines.items()):
                pts.sort()
                xs, ys = zip(*pts, strict=True)
                style, label = ("o--", fam + " (true lattice)") if tl else ("o-", fam)
                ax.plot(
                    xs, ys, style, color=COLORS.get(fam, "gray"), mfc="white" if tl else None, label=label
                )
            ax.set_xscale("log")
            ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
            ax.set_title(f"{ds}: {title}", fontsize=10)
            if i == len(metrics) - 1:
                ax.set_xlabel("decoder calls per structure")
            if j == 0:
                ax.set_ylabel("% of targets")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
