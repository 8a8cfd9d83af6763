"""Ragged-range helpers: vectorised 'for each row, for k in range(count[row])' in pure torch."""

from __future__ import annotations

import torch
from torch import Tensor


def ragged_expand(counts: Tensor, total: int | None = None) -> tuple[Tensor, Tensor]:
    """Expand rows by ``counts (R,)`` (non-negative int64).

    Returns ``(parent, local)``, both ``(sum(counts),)``: the row each output belongs to and its
    position ``0 .. counts[row] - 1`` within the row. Output order is row-major. (Same result as
    ``repeat_interleave``, built from a cumulative sum of row-end markers, about 3x faster on CPU.)
    ``total``: ``sum(counts)`` when the caller already has it (saves a device-to-host read on a GPU).
    """
    ends = torch.cumsum(counts, 0)  # (R,)
    if total is None:
        total = int(ends[-1]) if ends.numel() else 0
    # int32 indices when they fit: half the memory traffic of int64, and index_select takes them
    dtype = torch.int32 if max(total, counts.shape[0]) < 2**31 - 1 else torch.int64
    marks = torch.zeros(total + 1, dtype=dtype, device=counts.device)
    marks.index_add_(0, ends, torch.ones_like(ends, dtype=dtype))
    parent = torch.cumsum(marks[:-1], 0, dtype=dtype)  # rows ending at or before each output position
    starts = (ends - counts).to(dtype)
    local = torch.arange(total, dtype=dtype, device=counts.device) - starts.index_select(0, parent)
    return parent, local


def segment_starts(sorted_ids: Tensor, num_segments: int) -> tuple[Tensor, Tensor]:
    """For ids sorted ascending: ``(counts (S,), starts (S,))`` of each id's contiguous run."""
    counts = segment_counts(sorted_ids, num_segments)
    return counts, torch.cumsum(counts, 0) - counts


def segment_counts(ids: Tensor, num_segments: int) -> Tensor:
    """``(S,)`` int64 occurrences of each id in ``0 .. S - 1`` (``bincount`` with a known size: on a GPU
    it needs no device-to-host read of the largest id)."""
    counts = torch.zeros(num_segments, dtype=torch.long, device=ids.device)
    return counts.index_add_(0, ids, torch.ones_like(ids, dtype=torch.long))
