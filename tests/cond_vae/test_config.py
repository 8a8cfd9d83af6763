"""Configs: presets, JSON round trip, validation, and the documented parameter counts."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from cond_vae import CondCDVAE, CondCDVAEConfig, ScalarCondition

# Reference totals (reference-anatomy.md §6) minus its dead weights (GemNet energy heads, fc_atom)
# and non-trainable tensors: 4,308,978 - 597,220 - 122 and 86,138,364 - 12,957,284 - 132.
REFERENCE_LIVE = {"cond_cdvae_4m": 3_711_636, "cond_cdvae_86m": 73_180_948}
# torch_geometric's OutputPPBlock has no bias on its last layer; the reference's block has one
# latent-sized vector more per output block: (num_blocks + 1) * latent_dim.
OUTPUT_BLOCK_BIAS = {"cond_cdvae_4m": 5 * 128, "cond_cdvae_86m": 7 * 512}
EXPECTED = {"cond_cdvae_4m": 3_710_996, "cond_cdvae_86m": 73_177_364}


@pytest.mark.parametrize("preset", ["cond_cdvae_4m", "cond_cdvae_86m"])
def test_parameter_counts_match_reference_minus_dead_weights(preset):
    with torch.device("meta"):
        model = CondCDVAE(getattr(CondCDVAEConfig, preset)())
    counts = model.num_parameters()
    assert counts["total"] == EXPECTED[preset]
    assert counts["total"] == REFERENCE_LIVE[preset] - OUTPUT_BLOCK_BIAS[preset]
    # the parts that are identical to the reference's (anatomy §6)
    assert counts["conditions"] == 5_000
    assert counts["lattice_head"] == 18_182
    assert counts["zgivenc"] == {"cond_cdvae_4m": 29_056, "cond_cdvae_86m": 53_632}[preset]


@pytest.mark.parametrize("preset", ["cond_cdvae_4m", "cond_cdvae_86m", "tiny"])
def test_config_json_round_trip(preset):
    config = getattr(CondCDVAEConfig, preset)()
    data = json.loads(json.dumps(config.to_dict()))
    assert CondCDVAEConfig.from_dict(data) == config


def test_config_with_extra_condition_round_trips():
    config = CondCDVAEConfig.tiny(
        scalar_conditions=(ScalarCondition("pressure", n_basis=8), ScalarCondition("energy", min_scale=1e-3))
    )
    assert config.cond_dim == 8 + 8 + 80
    assert CondCDVAEConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="cond_dim"):
        CondCDVAEConfig.tiny(zgivenc_out_dim=7)
    with pytest.raises(ValueError, match="duplicate"):
        CondCDVAEConfig.tiny(scalar_conditions=(ScalarCondition("p"), ScalarCondition("p")))
    with pytest.raises(ValueError, match="sigma"):
        CondCDVAEConfig.tiny(sigma_begin=0.01, sigma_end=10.0)
    with pytest.raises(ValueError, match="unknown keys"):
        CondCDVAEConfig.from_dict({**CondCDVAEConfig.tiny().to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="min_scale"):
        ScalarCondition("pressure", min_scale=0.0)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CondCDVAEConfig.tiny().latent_dim = 3  # type: ignore[misc]
