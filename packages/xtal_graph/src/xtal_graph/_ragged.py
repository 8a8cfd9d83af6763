"""Ragged-range helpers: vectorised 'for each row, for k in range(count[row])' in pure torch."""

from __future__ import annotations

import torch
from torch import Tensor


def ragged_expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """Expand rows by ``counts (R,)`` (non-negative int64).

    Returns ``(parent, local)``, both ``(sum(counts),)``: the row each output belongs to and its
    position ``0 .. counts[row] - 1`` within the row. Output order is row-major.
    """
    total = int(counts.sum())
    rows = torch.arange(counts.shape[0], device=counts.device)
    parent = torch.repeat_interleave(rows, counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts  # (R,)
    local = torch.arange(total, device=counts.device) - starts.index_select(0, parent)
    return parent, local


def segment_starts(sorted_ids: Tensor, num_segments: int) -> tuple[Tensor, Tensor]:
    """For ids sorted ascending: ``(counts (S,), starts (S,))`` of each id's contiguous run."""
    counts = torch.bincount(sorted_ids, minlength=num_segments)
    return counts, torch.cumsum(counts, 0) - counts
