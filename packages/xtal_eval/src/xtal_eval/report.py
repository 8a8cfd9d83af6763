"""Write reports: JSON summaries and per-item CSV files (atomically: nothing half-written), PNG plots."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_histogram", "plot_success_curves", "to_jsonable", "write_csv", "write_json"]


def to_jsonable(value):
    """Plain JSON types: NaN/inf -> None, numpy scalars and arrays -> Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def _atomic_write(path: str | Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: Mapping) -> None:
    """Write ``data`` as indented JSON (NaN written as null)."""
    _atomic_write(path, lambda h: json.dump(to_jsonable(data), h, indent=2, allow_nan=False))


def write_csv(path: str | Path, rows: Sequence[Mapping]) -> None:
    """Write a list of flat dicts as CSV (columns from the first row; NaN/None as empty cells)."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in to_jsonable(dict(row)).items()})

    _atomic_write(path, write)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need the 'plot' extra: pip install 'xtal-eval[plot]'") from exc
    return plt


def plot_success_curves(path: str | Path, curves: Mapping[str, np.ndarray], *, title: str = "") -> None:
    """PNG of success rate (%) against the number of samples, one line per label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    for label, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), 100 * np.asarray(curve), label=label)
    ax.set_xlabel("number of samples")
    ax.set_ylabel("success rate (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_histogram(
    path: str | Path, values: Mapping[str, np.ndarray], *, xlabel: str, title: str = ""
) -> None:
    """PNG histogram of each labelled array (NaN dropped)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    for label, v in values.items():
        v = np.asarray(v, dtype=float)
        ax.hist(v[np.isfinite(v)], bins=30, alpha=0.5, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
