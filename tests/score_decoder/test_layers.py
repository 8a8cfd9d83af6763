"""Every layer alone: output shapes, basis properties, and the triplet slot bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from score_decoder.layers import (
    AngleBasis,
    AtomEmbedding,
    AtomUpdate,
    CircularBasis,
    Dense,
    EdgeEmbedding,
    InteractionBlock,
    OutputBlock,
    PolynomialEnvelope,
    RadialBasis,
    ResidualLayer,
    ScaleFactor,
    TripletInteraction,
    build_triplet_layout,
    reverse_edges,
)

from tests.score_decoder._helpers import fixed_crystals, model_inputs

N, E, H = 5, 40, 8


@pytest.fixture(scope="module")
def graph_inputs():
    kw = model_inputs(fixed_crystals(), cutoff=4.0, max_neighbors=None, cond=None)
    g, t = kw["graph"], kw["triplets"]
    layout = build_triplet_layout(
        edge_index=g.edge_index,
        cell_offsets=g.cell_offsets,
        edge_ji=t.edge_ji,
        edge_kj=t.edge_kj,
        num_nodes=N,
    )
    return g, t, layout


@torch.no_grad()
def test_dense_and_residual_shapes_and_variance():
    torch.manual_seed(0)
    x = torch.randn(4096, 64)
    assert Dense(64, 32, activation=False)(x).shape == (4096, 32)
    y = Dense(64, 64, activation=False)(x)
    assert 0.8 < float(y.std()) < 1.2  # He-orthogonal: variance preserved
    z = ResidualLayer(64)(x)
    assert z.shape == x.shape and 0.7 < float(z.pow(2).mean().sqrt()) < 1.4


def test_envelope_is_one_at_zero_and_vanishes_smoothly_at_cutoff():
    env = PolynomialEnvelope(exponent=5)
    x = torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    u = env(x)
    assert u.detach().tolist()[0] == 1.0 and u.detach().tolist()[2:] == [0.0, 0.0]
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    assert abs(grad.detach()[2].item()) < 1e-12
    (second,) = torch.autograd.grad(grad.sum(), x)
    assert abs(second[2].item()) < 1e-9


def test_radial_basis_shape_normalisation_and_cutoff():
    rbf = RadialBasis(num_radial=32, cutoff=6.0, envelope_exponent=5)
    d = torch.linspace(0.5, 2.0, 50, dtype=torch.float64)
    out = rbf(d)
    assert out.shape == (50, 32)
    per_feature_ms = out.pow(2).sum(1) / 32 / PolynomialEnvelope(exponent=5)(d / 6.0) ** 2
    assert torch.allclose(per_feature_ms, torch.ones_like(d), atol=0.05)  # unit second moment
    assert rbf(torch.tensor([6.0, 7.0], dtype=torch.float64)).abs().max() == 0


def test_angle_basis_is_orthonormal_legendre():
    basis = AngleBasis(num_spherical=5)
    x, w = np.polynomial.legendre.leggauss(20)
    y = basis(torch.tensor(x))  # (20, 5)
    gram = torch.einsum("t,ta,tb->ab", torch.tensor(w), y, y) / 2  # mean over the sphere
    torch.testing.assert_close(gram, torch.eye(5, dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.allclose(y[:, 2], math.sqrt(5) * (3 * torch.tensor(x) ** 2 - 1) / 2)


def test_triplet_layout_reproduces_naive_sums(graph_inputs):
    g, t, layout = graph_inputs
    torch.manual_seed(0)
    edge_values = torch.randn(g.edge_index.shape[1], 3, dtype=torch.float64)
    trip_values = torch.randn(t.edge_kj.shape[0], 2, dtype=torch.float64)
    # sum_k trip[t] (x) edge[kj[t]] per receiving edge ji, naively:
    naive = torch.zeros(g.edge_index.shape[1], 2, 3, dtype=torch.float64)
    naive.index_add_(0, t.edge_ji, trip_values[:, :, None] * edge_values[t.edge_kj][:, None, :])
    fast = torch.bmm(layout.gather_triplets(trip_values).transpose(1, 2), layout.gather_kj(edge_values))
    torch.testing.assert_close(fast, naive, atol=1e-12, rtol=0)
    assert layout.max_triplets == int(torch.bincount(t.edge_ji).max())


def test_reverse_edges_are_involutive_and_match_geometry(graph_inputs):
    g, _, layout = graph_inputs
    rev = layout.reverse
    assert (rev < g.edge_index.shape[1]).all()  # cutoff-only graphs are symmetric
    torch.testing.assert_close(rev[rev], torch.arange(len(rev)))
    torch.testing.assert_close(g.vectors[rev], -g.vectors, atol=1e-12, rtol=0)
    # an edge whose reverse is missing maps to the padding index E
    keep = torch.arange(g.edge_index.shape[1]) != 0
    partial = reverse_edges(g.edge_index[:, keep], g.cell_offsets[keep], N)
    assert int((partial == keep.sum()).sum()) == 1


def test_embedding_shapes(graph_inputs):
    g, _, _ = graph_inputs
    emb = AtomEmbedding(num_elements=100, emb_size=H, cond_dim=3)
    h = emb(torch.tensor([1, 8, 26, 3, 100]), torch.tensor([0, 0, 0, 1, 1]), torch.randn(2, 3))
    assert h.shape == (N, H)
    edge = EdgeEmbedding(atom_features=H, edge_features=6, out_features=7)
    assert edge(h, torch.randn(g.edge_index.shape[1], 6), g.edge_index).shape == (g.edge_index.shape[1], 7)


def test_interaction_and_output_shapes(graph_inputs):
    g, t, layout = graph_inputs
    e = g.edge_index.shape[1]
    torch.manual_seed(0)
    rbf = RadialBasis(num_radial=6, cutoff=4.0, envelope_exponent=5)(g.distances.float())
    sph = AngleBasis(num_spherical=3)(torch.rand(t.edge_kj.shape[0]) * 2 - 1)
    cbf = CircularBasis(num_radial=6, num_spherical=3, emb_size_cbf=4)(rbf, sph, layout)
    assert cbf.shape == (e, 4, layout.max_triplets)
    m, h, rbf_small = torch.randn(e, H), torch.randn(N, 5), torch.randn(e, 2)
    trip = TripletInteraction(
        emb_size_edge=H,
        emb_size_trip=3,
        emb_size_bilinear=6,
        emb_size_rbf=2,
        emb_size_cbf=4,
        expected_triplets=4,
    )
    assert trip(m, rbf_small, cbf, layout).shape == (e, H)
    upd = AtomUpdate(emb_size_atom=5, emb_size_edge=H, emb_size_rbf=2, num_residual=2, expected_neighbors=5)
    assert upd(m, rbf_small, g.edge_index[1], N).shape == (N, 5)
    block = InteractionBlock(
        emb_size_atom=5,
        emb_size_edge=H,
        emb_size_trip=3,
        emb_size_rbf=2,
        emb_size_cbf=4,
        emb_size_bil_trip=6,
        num_before_skip=1,
        num_after_skip=2,
        num_concat=1,
        num_atom=2,
        expected_neighbors=5,
    )
    h2, m2 = block(h, m, rbf3=rbf_small, cbf=cbf, rbf_h=rbf_small, edge_index=g.edge_index, layout=layout)
    assert h2.shape == (N, 5) and m2.shape == (e, H)
    assert OutputBlock(emb_size_edge=H, emb_size_rbf=2, num_residual=1)(m, rbf_small).shape == (e,)


def test_scale_factor_fits_to_unit_rms_and_is_a_buffer():
    factor = ScaleFactor()
    assert "value" in factor.state_dict() and not list(factor.parameters())
    factor.start_fitting()
    out = factor(torch.full((10, 4), 3.0))
    factor.stop_fitting()
    assert abs(float(factor.value) - 1 / 3) < 1e-7 and abs(float(out.pow(2).mean()) - 1.0) < 1e-6
    assert torch.equal(factor(torch.ones(2)), torch.full((2,), float(factor.value)))
