"""Encoder-graph cache: cached edges equal the on-the-fly graph (same encoder output bit for bit),
the sidecar file round-trips and detects other settings, and CrystalNN gives known coordinations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from cond_vae import EncoderConfig
from cond_vae._encoder_graph import encoder_graph
from cond_vae.training import EncoderGraphData, TrainConfig, train
from xtal_graph import Crystal, collate, crystalnn_edges, periodic_graph

from ._helpers import random_crystals, tiny_model


def _edge_set(edge_index, cell_offsets):
    return sorted(zip(*edge_index.tolist(), *cell_offsets.T.tolist(), strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cached_radius_graph_equals_on_the_fly_and_encodes_bit_for_bit(dtype):
    crystals = random_crystals(24, seed=3, max_atoms=8)
    model = tiny_model(crystals, dtype=dtype)
    cached = EncoderGraphData(crystals, model.config.encoder, dtype=dtype)
    indices = [5, 0, 17, 3, 22, 9]
    with_edges = cached.batch(indices).to(dtype=dtype)
    plain = collate([crystals[i] for i in indices], dtype=dtype)
    assert with_edges.edge_index is not None and plain.edge_index is None
    g_cached, t_cached = encoder_graph(with_edges, model.config.encoder)
    g_fly, t_fly = encoder_graph(plain, model.config.encoder)
    for name in ("edge_index", "cell_offsets", "vectors", "distances"):
        assert torch.equal(getattr(g_cached, name), getattr(g_fly, name)), name
    assert torch.equal(t_cached.edge_kj, t_fly.edge_kj) and torch.equal(t_cached.edge_ji, t_fly.edge_ji)
    model.eval()
    a, b = model.encode(with_edges), model.encode(plain)
    assert torch.equal(a.mu, b.mu) and torch.equal(a.logvar, b.logvar)


def test_periodic_graph_vectors_follow_the_coordinates_with_gradients():
    batch = collate(random_crystals(3, seed=1), dtype=torch.float64)
    frac = batch.frac_coords.clone().requires_grad_(True)
    edge_index = torch.tensor([[1, 0], [0, 0]])
    offsets = torch.tensor([[0, 0, 0], [1, 0, 0]])
    graph = periodic_graph(frac, batch.lattice, edge_index, offsets, batch.batch)
    cart = frac @ batch.lattice[0]
    expected = torch.stack([cart[1] - cart[0], batch.lattice[0, 0]])
    torch.testing.assert_close(graph.vectors, expected, rtol=0, atol=1e-12)
    graph.distances.sum().backward()
    assert frac.grad is not None and frac.grad[:2].abs().sum() > 0


def test_sidecar_round_trip_union_and_mismatch(tmp_path):
    crystals = random_crystals(10, seed=4)
    enc = EncoderConfig(cutoff=4.0, max_neighbors=8)
    path = tmp_path / "store.encoder_graph.npz"
    first = EncoderGraphData(crystals[:6], enc, sidecar=path)
    second = EncoderGraphData(crystals[4:], enc, sidecar=path)  # 2 shared ids, 4 new: file = union
    with np.load(path) as f:
        assert sorted(f["ids"].tolist()) == sorted(c.id for c in crystals)
    reread = EncoderGraphData(crystals, enc, sidecar=path)
    memory = EncoderGraphData(crystals, enc)
    for i in range(len(crystals)):
        got, want = reread.batch([i]), memory.batch([i])
        assert torch.equal(got.edge_index, want.edge_index) and torch.equal(
            got.cell_offsets, want.cell_offsets
        )
    assert first.num_edges + second.num_edges >= memory.num_edges
    with pytest.raises(ValueError, match="built with"):
        EncoderGraphData(crystals, dataclasses.replace(enc, cutoff=5.0), sidecar=path)
    with pytest.raises(ValueError, match="built with"):
        EncoderGraphData(crystals, enc, dtype=torch.float64, sidecar=path)


def _rock_salt() -> Crystal:
    frac = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.concatenate([frac, (frac + 0.5) % 1.0])
    types = np.array([11] * 4 + [17] * 4)
    return Crystal(
        atom_types=types, frac_coords=frac, lattice=5.64 * np.eye(3), properties={"pressure": 0.0}, id="NaCl"
    )


def _bcc_iron() -> Crystal:
    return Crystal(
        atom_types=np.array([26, 26]),
        frac_coords=np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
        lattice=2.87 * np.eye(3),
        properties={"pressure": 0.0},
        id="Fe",
    )


@pytest.mark.parametrize(
    ("crystal", "degree", "distance"), [(_rock_salt(), 6, 2.82), (_bcc_iron(), 8, 2.4855)]
)
def test_crystalnn_gives_the_coordination_of_known_structures(crystal, degree, distance):
    edge_index, offsets = crystalnn_edges(crystal)
    assert np.bincount(edge_index[1]).tolist() == [degree] * crystal.num_atoms
    assert _edge_set(torch.from_numpy(edge_index), torch.from_numpy(offsets)) == sorted(
        set(_edge_set(torch.from_numpy(edge_index), torch.from_numpy(offsets)))
    )  # no duplicate directed edge
    batch = collate([crystal], dtype=torch.float64)
    graph = periodic_graph(
        batch.frac_coords, batch.lattice, torch.from_numpy(edge_index), torch.from_numpy(offsets), batch.batch
    )
    torch.testing.assert_close(graph.distances, torch.full_like(graph.distances, distance), atol=1e-3, rtol=0)
    # every edge j -> i with offset t has its reverse i -> j with -t
    forward = set(_edge_set(torch.from_numpy(edge_index), torch.from_numpy(offsets)))
    assert {(i, j, -a, -b, -c) for j, i, a, b, c in forward} == forward


def test_crystalnn_cache_equals_crystalnn_on_the_fly():
    crystals = [_rock_salt(), _bcc_iron()]
    enc = dataclasses.replace(tiny_model().config.encoder, graph="crystalnn")
    model = tiny_model(crystals, encoder=enc).eval()
    cached = EncoderGraphData(crystals, model.config.encoder, dtype=torch.float64)
    a = model.encode(cached.batch([1, 0]).to(dtype=torch.float64))
    b = model.encode(collate([crystals[1], crystals[0]], dtype=torch.float64))
    assert torch.equal(a.mu, b.mu) and torch.equal(a.logvar, b.logvar)


def test_training_with_and_without_the_cache_is_the_same_run(tmp_path):
    crystals = random_crystals(12, seed=5)
    cfg = TrainConfig(
        max_epochs=2, batch_size=4, dtype="float64", device="cpu", val_every_epochs=1, progress=False,
        checkpoint_every_steps=100, log_every_steps=2, seed=3,
    )  # fmt: skip
    model_cfg = tiny_model().config
    runs = [
        train(cfg.replace(encoder_graphs=mode), model_cfg, crystals[:8], crystals[8:], tmp_path / mode)
        for mode in ("none", "memory")
    ]
    for (name, p), (_, q) in zip(
        runs[0].model.state_dict().items(), runs[1].model.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), name
    assert runs[0].last_val == runs[1].last_val


def test_encoder_graph_kind_is_checked_and_old_configs_default_to_radius():
    with pytest.raises(ValueError, match="graph must be one of"):
        EncoderConfig(graph="knn")
    config = tiny_model().config
    table = config.to_dict()
    del table["encoder"]["graph"]  # a config written before the field existed
    assert type(config).from_dict(table).encoder.graph == "radius"


def test_with_encoder_graphs_modes(tmp_path):
    from cond_vae.training._graph_cache import sidecar_beside, with_encoder_graphs

    crystals = random_crystals(4, seed=6)
    enc = EncoderConfig(cutoff=4.0, max_neighbors=8)
    assert with_encoder_graphs(crystals, encoder=enc, dtype=torch.float32, where="none") is crystals
    cached = with_encoder_graphs(crystals, encoder=enc, dtype=torch.float32, where="memory")
    assert with_encoder_graphs(cached, encoder=enc, dtype=torch.float32, where="memory") is cached
    with pytest.raises(ValueError, match="built with"):
        with_encoder_graphs(cached, encoder=enc, dtype=torch.float64, where="memory")
    with pytest.raises(ValueError, match="read from a store"):
        with_encoder_graphs(crystals, encoder=enc, dtype=torch.float32, where="store")
    a = sidecar_beside(str(tmp_path / "mp20.zarr"), cached.settings)
    b = sidecar_beside(
        str(tmp_path / "mp20.zarr"), EncoderGraphData(crystals, enc, dtype=torch.float64).settings
    )
    assert a.parent == tmp_path and a.name.startswith("mp20.zarr.encoder_graph-radius-") and a != b
    with pytest.raises(ValueError, match="local store"):
        sidecar_beside("s3://bucket/mp20.zarr", cached.settings)
