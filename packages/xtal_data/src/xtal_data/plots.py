"""Figures (extra ``xtal-data[plot]``): element counts on the periodic table (paper Fig. 1a) and histograms
of atoms per cell and pressure (paper Fig. S3). matplotlib is imported inside each function."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xtal_data.stats import StoreStats


def _require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("plots need matplotlib: pip install 'xtal-data[plot]'") from err
    return plt


def _table_position(z: int) -> tuple[int, int]:
    """(row, column) on an 18-column table; lanthanides and actinides in two rows below (rows 8, 9)."""
    from pymatgen.core import Element

    el = Element.from_Z(z)
    if 57 <= z <= 71:
        return 8, 3 + z - 57
    if 89 <= z <= 103:
        return 9, 3 + z - 89
    return el.row, el.group


def plot_periodic_table(
    counts: np.ndarray, path: str | Path, *, title: str = "structures containing element"
) -> Path:
    """Heat map of ``counts`` ((119,) indexed by atomic number) on the periodic table, log colour scale;
    elements with zero count are left blank. Writes a PNG and returns its path."""
    plt = _require_matplotlib()
    from matplotlib.colors import LogNorm
    from pymatgen.core import Element

    counts = np.asarray(counts)
    grid = np.full((10, 19), np.nan)
    fig, ax = plt.subplots(figsize=(13, 7))
    for z in range(1, 119):
        r, c = _table_position(z)
        grid[r, c] = counts[z] if counts[z] > 0 else np.nan
        ax.text(c, r - 0.15, Element.from_Z(z).symbol, ha="center", va="center", fontsize=9)
        if counts[z]:
            ax.text(c, r + 0.25, f"{counts[z]}", ha="center", va="center", fontsize=6)
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=0.3, color="0.6"))
    positive = counts[counts > 0]
    norm = LogNorm(vmin=max(positive.min(), 1), vmax=max(positive.max(), 2)) if positive.size else None
    image = ax.imshow(grid, cmap="viridis", norm=norm)
    ax.set_xlim(0.5, 18.5)
    ax.set_ylim(9.5, 0.5)
    ax.set_axis_off()
    ax.set_title(title)
    if positive.size:
        fig.colorbar(image, ax=ax, shrink=0.6, label="count")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot_histograms(stats: StoreStats, path: str | Path) -> Path:
    """Histograms of atoms per cell and of pressure (GPa) side by side; writes a PNG, returns its path."""
    plt = _require_matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    n = stats.atoms_per_cell
    if len(n):
        left.hist(n, bins=np.arange(0.5, n.max() + 1.5, 1.0), color="tab:blue")
        p = stats.pressure
        bins = 1 if np.ptp(p) == 0 else min(50, len(np.unique(p)))
        right.hist(p, bins=bins, color="tab:orange")
    left.set(xlabel="atoms per cell", ylabel="structures", title="atoms per cell")
    right.set(xlabel="pressure (GPa)", ylabel="structures", title="pressure")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
