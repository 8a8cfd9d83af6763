"""Device-to-host reads per decoder call of the sampler: a GPU stalls at each one (the host waits for every
queued kernel), so the loop keeps them few. Counted on the CPU by intercepting the tensor methods that
read a value to the host; the budget is what the graph search needs (sizes of ragged levels, the edge
count) plus the input checks, each read once."""

from __future__ import annotations

from collections import Counter

import torch
from cond_vae.sampling import SamplerConfig, sample
from torch.overrides import TorchFunctionMode

from tests.cond_vae._helpers import random_crystals, tiny_model

READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero", "equal", "bincount"}
BUDGET_PER_CALL = 16


class _CountReads(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in READS:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def _reads(model, levels: int) -> int:
    with _CountReads() as mode:
        sample(
            model, ["SiO2", "Fe2O3"], 5.0, num_per_row=2, seed=0, sampler=SamplerConfig("ode", levels=levels)
        )
    return sum(mode.counts.values())


def test_decoder_calls_read_little_from_the_device():
    model = tiny_model(random_crystals(16, seed=2), dtype=torch.float32).eval()
    per_call = (_reads(model, 6) - _reads(model, 2)) / 4  # the difference is 4 more decoder calls
    assert 0 < per_call <= BUDGET_PER_CALL, per_call
