"""The torch adapter: Crystal items, CrystalBatch batches identical to xtal_graph.collate, seeded loaders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
xtal_graph = pytest.importorskip("xtal_graph")

from xtal_data import CrystalStore  # noqa: E402
from xtal_data.splits import split_random  # noqa: E402
from xtal_data.torch_dataset import CrystalDataset, crystal_loader  # noqa: E402

from tests.xtal_data._helpers import rock_salt, simple_cubic  # noqa: E402

_n = itertools.count()


def _store(n=23) -> CrystalStore:
    store = CrystalStore.create(f"memory://torch-tests/{next(_n)}")
    recs = [
        simple_cubic(f"c{i}", 3.0 + i / 10, z=1 + i, pressure=float(i), energy=-float(i)) for i in range(n)
    ]
    recs[5] = rock_salt("nacl", pressure=5.0, energy=-5.0)
    store.append(recs)
    return store


def _assert_batches_equal(a, b):
    for name in ("atom_types", "frac_coords", "lattice", "num_atoms", "batch"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert a.ids == b.ids and a.properties.keys() == b.properties.keys()
    for k in a.properties:
        assert torch.equal(a.properties[k], b.properties[k]), k


def test_items_are_crystals_and_batches_equal_collate():
    ds = CrystalDataset(_store(), properties=("pressure", "energy"))
    crystal = ds[5]
    assert isinstance(crystal, xtal_graph.Crystal) and crystal.id == "nacl"
    assert crystal.properties == {"pressure": 5.0, "energy": -5.0} and crystal.num_atoms == 8
    idx = [7, 5, 0, 22]
    batch = ds[idx]
    assert isinstance(batch, xtal_graph.CrystalBatch)
    _assert_batches_equal(batch, xtal_graph.collate([ds[i] for i in idx]))
    assert batch.properties["pressure"].shape == (4,) and batch.ids == ("c7", "nacl", "c0", "c22")
    assert batch.num_atoms.tolist() == [1, 8, 1, 1]
    f64 = CrystalDataset(_store(), dtype=torch.float64)[[5]]
    assert f64.frac_coords.dtype == torch.float64 and torch.equal(
        f64.lattice[0], torch.eye(3, dtype=torch.float64) * 5.64
    )


def test_split_part_and_property_errors():
    store = _store()
    parts = split_random(CrystalStore.open(store.url, mode="r+"), seed=0)
    ds = CrystalDataset(store.url, split="random", part="val")
    assert ds.ids == [f"c{i}" if i != 5 else "nacl" for i in parts["val"]]
    with pytest.raises(KeyError, match="no property 'gap'"):
        CrystalDataset(store.url, properties=("gap",))
    with pytest.raises(KeyError, match="no part 'holdout'"):
        CrystalDataset(store.url, split="random", part="holdout")
    partial = CrystalStore.create(f"memory://torch-tests/{next(_n)}")
    partial.append([rock_salt("a", energy=-1.0), rock_salt("b")])
    with pytest.raises(ValueError, match="missing \\(NaN\\) for 1 structures, e.g. 'b'"):
        CrystalDataset(partial, properties=("energy",))


def test_loader_is_seeded_complete_and_worker_independent():
    ds = CrystalDataset(_store(), properties=("pressure",))
    epoch = lambda loader: [b.ids for b in loader]  # noqa: E731
    a = epoch(crystal_loader(ds, batch_size=4, shuffle=True, seed=3))
    b = epoch(crystal_loader(ds, batch_size=4, shuffle=True, seed=3))
    c = epoch(crystal_loader(ds, batch_size=4, shuffle=True, seed=4))
    assert a == b and a != c
    assert sorted(sum(map(list, a), [])) == sorted(ds.ids) and [len(x) for x in a] == [4] * 5 + [3]
    loader = crystal_loader(ds, batch_size=4, shuffle=True, seed=3)
    assert epoch(loader) != epoch(loader)  # a fresh permutation each epoch
    parallel = list(crystal_loader(ds, batch_size=4, shuffle=True, seed=3, num_workers=2))
    serial = list(crystal_loader(ds, batch_size=4, shuffle=True, seed=3))
    for x, y in zip(parallel, serial, strict=True):
        _assert_batches_equal(x, y)
    assert len(list(crystal_loader(ds, batch_size=4, drop_last=True))) == 5


def test_shared_data_batch_feeds_xtal_graph(perov_store):
    ds = CrystalDataset(perov_store, indices=np.arange(0, 3787, 100))
    batch = next(iter(crystal_loader(ds, batch_size=16)))
    batch.validate()
    graph = xtal_graph.radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff=5.0)
    assert graph.edge_index.shape[0] == 2 and graph.edge_index.shape[1] > 0
    assert torch.all(batch.properties["pressure"] == 0)
