"""Small output helpers of the benchmarks: atomic PNG writing, JSON-ready numbers."""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["finite", "write_png"]


def write_png(fig, path: Path) -> None:
    """Save a matplotlib figure to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finite(x: float | None) -> float | None:
    """``x`` or None when it is None/NaN/inf (JSON-ready)."""
    return None if x is None or not math.isfinite(x) else float(x)
