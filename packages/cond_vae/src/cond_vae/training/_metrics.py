"""Metrics: loss sums over crystals, a CSV log (optionally TensorBoard), and the validation summary."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Order of the reduced statistics vector (sums over crystals, then the crystal count).
LOSS_PARTS = ("loss", "lattice", "coord", "kl")
CSV_COLUMNS = (
    "split",
    "step",
    "epoch",
    "lr",
    *LOSS_PARTS,
    "length_mae",
    "angle_mae",
    "grad_norm",
    "num_crystals",
    "skipped",
    "seconds",
)


@dataclass(frozen=True)
class ValMetrics:
    """Validation summary (means over crystals): loss parts (model units, predicted lattice, no teacher
    forcing), and lattice errors of the predicted cell: lengths MAE in Å, angles MAE in degrees."""

    step: int
    epoch: int
    loss: float
    lattice: float
    coord: float
    kl: float
    length_mae: float
    angle_mae: float
    num_crystals: int

    def as_row(self, *, lr: float, seconds: float) -> dict[str, Any]:
        return {
            "split": "val",
            "step": self.step,
            "epoch": self.epoch,
            "lr": lr,
            "loss": self.loss,
            "lattice": self.lattice,
            "coord": self.coord,
            "kl": self.kl,
            "length_mae": self.length_mae,
            "angle_mae": self.angle_mae,
            "num_crystals": self.num_crystals,
            "seconds": seconds,
        }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round trip: resumed and uninterrupted logs compare exactly
    return str(value)


class MetricsLog:
    """Appends rows to ``metrics.csv`` (rank 0 only) and counts them, so a resumed run can cut the
    file back to what its checkpoint had seen."""

    def __init__(self, path: str | Path, *, enabled: bool, tensorboard_dir: str | Path | None = None):
        self.path = Path(path)
        self.enabled = enabled
        self.rows = 0
        self._writer = None
        if enabled and tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:  # pragma: no cover - depends on the environment
                raise ValueError("tensorboard = true needs the 'tensorboard' package installed") from err
            self._writer = SummaryWriter(str(tensorboard_dir))

    def start(self, *, keep_rows: int | None) -> None:
        """Create the file with a header, or (resume) keep its first ``keep_rows`` data rows."""
        if not self.enabled:
            return
        if keep_rows is None or not self.path.exists():
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(CSV_COLUMNS)
            self.rows = 0
            return
        with self.path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = rows[1 : 1 + keep_rows]
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(kept)
        os.replace(tmp, self.path)
        self.rows = len(kept)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([_fmt(row.get(col)) for col in CSV_COLUMNS])
        self.rows += 1
        if self._writer is not None:
            for key in (*LOSS_PARTS, "length_mae", "angle_mae", "grad_norm", "lr"):
                value = row.get(key)
                if isinstance(value, float) and math.isfinite(value):
                    self._writer.add_scalar(f"{row['split']}/{key}", value, row["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``metrics.csv`` as dicts of strings."""
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))
