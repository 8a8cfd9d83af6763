"""Activations of order one at initialisation, for 3, 4 and 6 blocks of the 4M preset.

The scale factors are fitted on one set of real-sized random crystals (8-16 atoms, MP-20-like
density, 7 Å cutoff, 20 neighbours) and the activations are measured on another set.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from score_decoder import GemNetConfig, GemNetScore, fit_scale_factors

from tests.score_decoder._helpers import model_inputs, random_crystals


def _inputs(seed: int, config: GemNetConfig) -> dict:
    s = random_crystals(np.random.default_rng(seed), num_crystals=8, atoms=(8, 16)).to(dtype=torch.float32)
    cond = torch.randn(len(s.num_atoms), config.cond_dim, generator=torch.Generator().manual_seed(seed))
    return model_inputs(s, cutoff=config.cutoff, max_neighbors=config.max_neighbors, cond=cond)


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


@pytest.mark.slow
@pytest.mark.parametrize("num_blocks", [3, 4, 6])
def test_activations_are_order_one_for_any_depth(num_blocks):
    torch.manual_seed(0)
    config = GemNetConfig.cond_cdvae_4m(num_blocks=num_blocks)
    model = GemNetScore(config)
    fit_scale_factors(model, [_inputs(1, config)])
    seen: dict[str, float] = {}

    def record(name):
        def hook(module, args, out):
            for k, tensor in enumerate(out if isinstance(out, tuple) else (out,)):
                seen[f"{name}[{k}]"] = _rms(tensor)

        return hook

    for name, module in model.named_modules():
        if name.count(".") == 1 or name in ("edge_embedding", "atom_embedding"):
            module.register_forward_hook(record(name))
    with torch.no_grad():
        score = model(**_inputs(2, config))
    seen["score"] = _rms(score)
    assert len([k for k in seen if k.startswith("interaction_blocks")]) == 2 * num_blocks
    bad = {k: round(v, 3) for k, v in seen.items() if not 0.25 < v < 4.0}
    assert not bad, f"activations out of [0.25, 4] root mean square: {bad}"
    assert 0.5 < seen["score"] < 2.0, seen["score"]


def test_unfitted_factors_are_one_and_fitting_changes_them():
    model = GemNetScore(GemNetConfig.tiny())
    config = model.config
    factors = {k: float(v) for k, v in model.state_dict().items() if k.endswith("value")}
    assert factors and set(factors.values()) == {1.0}
    fitted = fit_scale_factors(model, [_inputs(3, config)])
    assert set(fitted) == {k.removesuffix(".value") for k in factors}
    assert all(v != 1.0 for v in fitted.values())
