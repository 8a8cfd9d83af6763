"""The encoder's latent mean and log-variance are invariant under every transform of
``xtal_graph.testing`` (rotation, reflection, translation, permutation, image shift, basis change,
supercell), in float64; a deliberately broken encoder must fail the same check.

The encoder graph here has no neighbour cap: with a cap, an exact distance tie at the cap (e.g. an
atom's own images at +t and -t) is broken by atom index and offset, which permutations and image
shifts change, so invariance then holds only up to such ties.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from cond_vae import CondCDVAE, CondCDVAEConfig
from hypothesis import given, settings
from hypothesis import strategies as st
from xtal_graph.testing import assert_invariant, standard_transforms
from xtal_graph.testing.strategies import crystal_batches

from tests.cond_vae._helpers import batch_of, random_crystals


def _model(dtype=torch.float64) -> CondCDVAE:
    torch.manual_seed(0)
    base = CondCDVAEConfig.tiny()
    config = dataclasses.replace(
        base, encoder=dataclasses.replace(base.encoder, cutoff=4.0, max_neighbors=None)
    )
    model = CondCDVAE(config).to(dtype).eval()
    # DimeNet++ zero-initialises the output layers; randomise them so the test sees a non-trivial map
    with torch.no_grad():
        for block in model.encoder.outputs:
            block.lin.weight.normal_(0.0, 0.3)
    model.fit_scalers(random_crystals(8, seed=2))
    return model


MODEL = _model()
BATCHES = crystal_batches(max_crystals=2, max_atoms=4, properties={"pressure": st.floats(0.0, 30.0)})


def _latent(model):
    def fn(batch):
        stats = model.encode(batch)
        return stats.mu, stats.logvar

    return fn


@settings(max_examples=8)
@given(batch=BATCHES, seed=st.integers(0, 1000))
def test_latent_is_invariant_under_every_symmetry(batch, seed):
    with torch.no_grad():
        mu, _ = _latent(MODEL)(batch)
        assert float(mu.abs().max()) > 1e-3  # the check is not vacuous
        assert_invariant(_latent(MODEL), batch, transforms=standard_transforms(seed), atol=1e-8)


def test_latent_invariance_float32_smoke():
    model = _model(torch.float32)
    batch = batch_of(random_crystals(3, seed=4), dtype=torch.float32)
    with torch.no_grad():
        assert_invariant(_latent(model), batch, transforms=standard_transforms(1), atol=1e-4)


class _BrokenEncoder(torch.nn.Module):
    """Adds a term that depends on the absolute direction of the edges (not rotation invariant)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs):
        stats = self.inner(**kwargs)
        graph = kwargs["graph"]
        leak = torch.zeros_like(stats.mu[:, 0]).index_add_(
            0, kwargs["batch"][graph.edge_index[1]], graph.vectors[:, 0] ** 2
        )
        return dataclasses.replace(stats, mu=stats.mu + 1e-3 * leak.unsqueeze(-1))


def test_invariance_check_fails_on_a_broken_encoder():
    model = _model()
    model.encoder = _BrokenEncoder(model.encoder)
    batch = batch_of(random_crystals(2, seed=3))
    with torch.no_grad(), pytest.raises(AssertionError, match="rotation"):
        assert_invariant(_latent(model), batch, transforms=standard_transforms(0), atol=1e-8)
