"""One training step and one validation pass (used by ``_loop.Trainer``).

Randomness: before each micro-batch the global torch RNG is re-seeded from ``(seed, step, g)``, where
``g = m * world_size + rank`` numbers the micro-batches of the step across processes (see ``_data``).
The noise a crystal sees therefore depends only on the seed, the step and its micro-batch, not on
earlier history: resuming needs no RNG replay, and ``W`` processes reproduce one process with ``W``
times as many micro-batches. Validation re-seeds per global validation batch ``i`` from ``(seed, VAL, i)``,
so every validation sees the same noise (successive validation losses compare like with like), and
the result does not depend on the number of processes.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from xtal_graph import CrystalBatch, lattice_to_params

_VAL_STREAM = 0x56414C  # "VAL": separates validation seeds from training seeds


class NonFiniteLossError(FloatingPointError):
    """A batch gave a NaN/inf loss or gradient; ``ids`` names the crystals (all of the batch's when
    only the gradient was non-finite)."""

    def __init__(self, message: str, *, step: int, epoch: int, ids: tuple[str | None, ...]):
        super().__init__(message)
        self.step, self.epoch, self.ids = step, epoch, ids


def derive_seed(*words: int) -> int:
    """A 64-bit seed mixed from non-negative integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(words)).generate_state(1, dtype=np.uint64)[0])


@dataclass(frozen=True)
class StepStats:
    """Per-step result on this process, after the cross-process reduction."""

    sums: torch.Tensor  # (6,) float64: [loss, lattice, coord, kl] * crystals, crystals, bad crystals
    grad_norm: float
    bad_ids: tuple[str | None, ...]  # this process's crystals with a non-finite loss
    reason: str  # "" when the step was applied


def _bad_ids(out: Any, batch: CrystalBatch) -> tuple[tuple[str | None, ...], int]:
    per_crystal = out.per_crystal_total.detach()
    bad = ~torch.isfinite(per_crystal)
    if not bool(torch.isfinite(out.total.detach())) and not bool(bad.any()):
        bad = torch.ones_like(bad)  # the mean overflowed although each crystal is finite
    if not bool(bad.any()):
        return (), 0
    index = bad.nonzero().flatten().tolist()
    return tuple(batch.ids[i] for i in index), len(index)


def train_step(
    *,
    net: torch.nn.Module,
    params: list[torch.nn.Parameter],
    micro: list[CrystalBatch],
    seed: int,
    step: int,
    ctx: Any,
    teacher_forcing: bool,
    autocast: bool,
    grad_clip: float,
    grad_clip_mode: str,
    coord_loss_trains_lattice: bool = True,
) -> StepStats:
    """Forward and backward every micro-batch (gradients weighted by crystal count), reduce, clip.

    The optimiser update is left to the caller (skipped when ``reason`` is set).
    """
    device = ctx.device
    total_crystals = sum(b.num_crystals for b in micro)
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    bad_ids: list[str | None] = []
    for m, batch in enumerate(micro):
        torch.manual_seed(derive_seed(seed, step, m * ctx.world_size + ctx.rank))
        batch = batch.to(device=device)
        last = m == len(micro) - 1
        no_sync = net.no_sync() if (ctx.distributed and not last) else contextlib.nullcontext()
        with no_sync:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                couple = coord_loss_trains_lattice
                out = net(batch, teacher_forcing=teacher_forcing, coord_loss_trains_lattice=couple)
            (out.total * (batch.num_crystals / total_crystals)).backward()
        ids, count = _bad_ids(out, batch)
        bad_ids.extend(ids)
        parts = torch.stack([out.total, out.lattice, out.coord, out.kl]).detach().to(device, torch.float64)
        sums[:4] += parts * batch.num_crystals
        sums[4] += batch.num_crystals
        sums[5] += count
    if ctx.distributed:
        torch.distributed.all_reduce(sums)
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
    grad_norm = float(norm)
    reason = ""
    if float(sums[5]) > 0:
        reason = "non-finite loss"
    elif not math.isfinite(grad_norm):
        reason = "non-finite gradient"
    elif grad_clip_mode != "none":
        if grad_clip_mode == "value":
            torch.nn.utils.clip_grad_value_(params, grad_clip)
        else:
            torch.nn.utils.clip_grads_with_norm_(params, grad_clip, norm)
    if reason == "non-finite gradient":
        bad_ids = [i for b in micro for i in b.ids]
    return StepStats(sums=sums.cpu(), grad_norm=grad_norm, bad_ids=tuple(bad_ids), reason=reason)


@torch.no_grad()
def validate(
    *,
    model: torch.nn.Module,
    batches: Any,
    seed: int,
    ctx: Any,
) -> tuple[torch.Tensor, list[tuple[str | None, ...]]]:
    """Sums over this process's validation crystals, reduced over processes, in the model's own
    precision (never under autocast, so validation losses compare across training precisions).

    ``batches`` yields ``(global batch number, CrystalBatch)``.

    Returns ``(sums (7,) float64, bad)``: sums are ``[loss, lattice, coord, kl] * crystals``, lengths
    absolute error summed over crystals and axes (Å), angles likewise (degrees), crystals counted;
    ``bad`` lists the ids of batches with a non-finite loss (left out of the sums).
    """
    device = ctx.device
    was_training = model.training
    model.eval()
    sums = torch.zeros(7, dtype=torch.float64, device=device)
    bad: list[tuple[str | None, ...]] = []
    for i, batch in batches:
        torch.manual_seed(derive_seed(seed, _VAL_STREAM, i))
        batch = batch.to(device=device)
        out = model(batch, teacher_forcing=False)
        ids, count = _bad_ids(out, batch)
        if count:
            bad.append(ids)
            continue
        c = batch.num_crystals
        sums[:4] += torch.stack([out.total, out.lattice, out.coord, out.kl]).to(torch.float64) * c
        lengths, angles = lattice_to_params(batch.lattice.to(torch.float64))
        sums[4] += (out.pred_lengths.to(torch.float64) - lengths).abs().sum() / 3.0
        sums[5] += (out.pred_angles.to(torch.float64) - angles).abs().sum() / 3.0
        sums[6] += c
    if ctx.distributed:
        torch.distributed.all_reduce(sums)
    model.train(was_training)
    return sums.cpu(), bad
