"""The score rotates with the crystal and ignores everything that does not change the crystal.

Hypothesis draws small crystals (float64); the module-scoped tiny model uses a cutoff-only graph
(no neighbour cap, whose tie-breaking is not a symmetry of the crystal), tolerance 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from score_decoder import GemNetConfig, GemNetScore
from score_decoder.layers import reverse_edges
from torch import nn

from tests.conftest import DEVICES
from tests.score_decoder._helpers import (
    change_basis,
    cond_for,
    crystal_batches,
    fixed_crystals,
    model_inputs,
    permute,
    random_crystals,
    random_orthogonal,
    rotate,
    shift_images,
    supercell,
    translate,
    unimodular,
)

ATOL = 1e-8
CONFIG = GemNetConfig.tiny(cutoff=4.0, max_neighbors=None)
_MODELS: dict[str, nn.Module] = {}


@pytest.fixture(scope="module")
def models():
    """One seeded float64 tiny model per device, built once for the module."""

    def get(device: str) -> nn.Module:
        if device not in _MODELS:
            torch.manual_seed(1234)
            _MODELS[device] = GemNetScore(CONFIG).double().to(device).eval()
        return _MODELS[device]

    return get


def run(model: nn.Module, s, device: str = "cpu") -> torch.Tensor:
    s = s.to(device)
    cond = cond_for(len(s.num_atoms), CONFIG.cond_dim, device=device)
    with torch.no_grad():
        out = model(**model_inputs(s, cutoff=CONFIG.cutoff, max_neighbors=None, cond=cond))
    return out.cpu()


def nontrivial(score: torch.Tensor) -> torch.Tensor:
    assert score.abs().max() > 1e-4, "score is ~0: the test would be vacuous"
    return score


def rotation_error(model, s, rot, device="cpu") -> float:
    expected = nontrivial(run(model, s, device)) @ rot.T
    return float((run(model, rotate(s, rot), device) - expected).abs().max())


@pytest.mark.parametrize("device", DEVICES)
@given(s=crystal_batches(), seed=st.integers(0, 2**32 - 1), reflect=st.booleans())
def test_score_rotates_and_reflects_with_lattice(models, device, s, seed, reflect):
    rot = random_orthogonal(np.random.default_rng(seed), reflect=reflect)
    assert rotation_error(models(device), s, rot, device) < ATOL


@pytest.mark.parametrize("device", DEVICES)
@given(s=crystal_batches(), data=st.data())
def test_score_invariant_under_translation(models, device, s, data):
    shift = torch.tensor(data.draw(st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3)))
    shift = shift.expand(len(s.num_atoms), 3) * torch.arange(1, len(s.num_atoms) + 1)[:, None]
    model = models(device)
    base = nontrivial(run(model, s, device))
    assert (run(model, translate(s, shift), device) - base).abs().max() < ATOL


@pytest.mark.parametrize("device", DEVICES)
@given(s=crystal_batches(), data=st.data())
def test_score_invariant_under_integer_image_shift(models, device, s, data):
    n = s.atom_types.shape[0]
    images = torch.tensor(data.draw(st.lists(st.integers(-2, 2), min_size=3 * n, max_size=3 * n))).view(n, 3)
    model = models(device)
    base = nontrivial(run(model, s, device))
    assert (run(model, shift_images(s, images), device) - base).abs().max() < ATOL


@pytest.mark.parametrize("device", DEVICES)
@given(s=crystal_batches(max_crystals=1), u=unimodular())
def test_score_invariant_under_unimodular_basis_change(models, device, s, u):
    model = models(device)
    base = nontrivial(run(model, s, device))
    assert (run(model, change_basis(s, u), device) - base).abs().max() < ATOL


@pytest.mark.parametrize("device", DEVICES)
@given(s=crystal_batches(max_crystals=3), seed=st.integers(0, 2**32 - 1))
def test_score_permutes_with_atoms(models, device, s, seed):
    rng = np.random.default_rng(seed)
    perm, start = [], 0
    for count in s.num_atoms.tolist():
        perm.append(start + rng.permutation(count))
        start += count
    perm = torch.tensor(np.concatenate(perm))
    model = models(device)
    base = nontrivial(run(model, s, device))
    assert (run(model, permute(s, perm), device) - base[perm]).abs().max() < ATOL


@given(
    s=crystal_batches(max_crystals=1, max_atoms=3), reps=st.sampled_from([(2, 1, 1), (1, 1, 2), (2, 2, 1)])
)
def test_score_tiles_in_supercell(models, s, reps):
    model = models("cpu")
    base = nontrivial(run(model, s))
    big, origin = supercell(s, reps)
    assert (run(model, big) - base[origin]).abs().max() < ATOL


def test_float32_smoke_rotation():
    torch.manual_seed(0)
    model = GemNetScore(CONFIG).eval()
    s = fixed_crystals(dtype=torch.float32)
    rot = random_orthogonal(np.random.default_rng(3), reflect=True).float()
    cond = cond_for(len(s.num_atoms), CONFIG.cond_dim, dtype=torch.float32)
    with torch.no_grad():
        out = model(**model_inputs(s, cutoff=CONFIG.cutoff, max_neighbors=None, cond=cond))
        out_rot = model(**model_inputs(rotate(s, rot), cutoff=CONFIG.cutoff, max_neighbors=None, cond=cond))
    assert out.dtype == torch.float32
    assert (out_rot - out @ rot.T).abs().max() < 1e-4 * max(1.0, float(out.abs().max()))


# ------------------------------------------------------------ the checks fail on broken modules


class _ReadsRawAxes(nn.Module):
    """Broken: adds a per-atom vector along the fixed x axis, sized by the x-components of edges."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kw):
        out = self.inner(**kw)
        graph = kw["graph"]
        bump = out.new_zeros(out.shape[0]).index_add_(0, graph.edge_index[1], graph.vectors[:, 0] ** 2)
        return out + 1e-2 * torch.stack([bump, 0 * bump, 0 * bump], dim=1)


class _ReadsImageOffsets(nn.Module):
    """Broken: uses the integer cell offsets, which depend on the choice of cell and images."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kw):
        out = self.inner(**kw)
        graph = kw["graph"]
        weight = graph.cell_offsets.to(out).sum(1)
        edge_vec = graph.vectors * weight[:, None]
        return out + 1e-2 * out.new_zeros(out.shape).index_add_(0, graph.edge_index[1], edge_vec)


def test_rotation_check_fails_on_module_reading_raw_axes(models):
    s = fixed_crystals()
    rot = random_orthogonal(np.random.default_rng(0), reflect=False)
    assert rotation_error(_ReadsRawAxes(models("cpu")), s, rot) > 1e-4


def test_image_shift_check_fails_on_module_reading_offsets(models):
    s = fixed_crystals()
    broken = _ReadsImageOffsets(models("cpu"))
    images = torch.ones(s.atom_types.shape[0], 3, dtype=torch.long)
    images[0] = torch.tensor([2, -1, 0])
    assert (run(broken, shift_images(s, images)) - run(broken, s)).abs().max() > 1e-4


def test_rotation_with_neighbour_cap_and_missing_reverse_edges():
    """With ``max_neighbors`` some edges lose their reverse (swap term zero); still equivariant."""
    config = GemNetConfig.tiny()  # 12 neighbours within 5 Å: the cap is active
    torch.manual_seed(7)
    model = GemNetScore(config).double().eval()
    s = random_crystals(np.random.default_rng(5), num_crystals=3, atoms=(6, 12))
    cond = cond_for(3, config.cond_dim)
    kw = model_inputs(s, cutoff=config.cutoff, max_neighbors=config.max_neighbors, cond=cond)
    missing = int(
        (
            reverse_edges(kw["graph"].edge_index, kw["graph"].cell_offsets, len(s.atom_types))
            == kw["graph"].edge_index.shape[1]
        ).sum()
    )
    assert missing > 0
    rot = random_orthogonal(np.random.default_rng(11), reflect=True)
    with torch.no_grad():
        out = nontrivial(model(**kw))
        rotated = model(
            **model_inputs(
                rotate(s, rot), cutoff=config.cutoff, max_neighbors=config.max_neighbors, cond=cond
            )
        )
    assert (rotated - out @ rot.T).abs().max() < ATOL
