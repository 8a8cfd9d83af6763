"""The fitted latent prior: its fit (against a direct computation), its checkpoint file, the sampler's
``latent`` setting, and training that fits it for ``best/``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cond_vae import CondCDVAEConfig, LatentPrior, SamplerConfig, fit_latent_prior
from cond_vae.checkpoint import LATENT_PRIOR, load_checkpoint, save_checkpoint
from cond_vae.sampling import make_requests, sample_requests
from cond_vae.training import TrainConfig, train
from xtal_graph import collate, lattice_to_params

from tests.cond_vae._helpers import random_crystals, tiny_model

CRYSTALS = random_crystals(40, seed=5)


@pytest.fixture(scope="module")
def model():
    """A tiny model whose encoder tells crystals apart (at initialisation every code is the same)."""
    m = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    with torch.no_grad():
        mu = m.encode(collate(CRYSTALS[:8], dtype=torch.float64)).mu
    assert mu.std(0).max() > 1e-3
    return m


def test_fit_keeps_a_random_subset_of_each_sizes_posteriors(model):
    prior = fit_latent_prior(model, CRYSTALS, per_size=3, batch_size=7)
    with torch.no_grad():
        stats = model.encode(collate(CRYSTALS, dtype=torch.float64))
    mu, std = stats.mu.float(), torch.exp(0.5 * stats.logvar).float()
    sizes = torch.tensor([len(c.atom_types) for c in CRYSTALS])
    assert prior.num_crystals == len(CRYSTALS) and model.training  # mode restored
    assert torch.equal(prior.sizes, prior.sizes.sort().values)
    for n in sizes.unique().tolist():
        kept = prior.mu[prior.sizes == n]
        assert len(kept) == min(3, int((sizes == n).sum()))
        for row, s in zip(kept, prior.std[prior.sizes == n], strict=True):  # each one is a training code
            close = lambda a, b: ((a - b).abs() <= 1e-3 * (1 + b.abs())).all(1)  # noqa: E731  (float16)
            assert (close(mu, row) & close(std, s) & (sizes == n)).any()
    # ready batches give the same fit as crystals; another seed another subset
    batches = [collate(CRYSTALS[i : i + 9], dtype=torch.float64) for i in range(0, 40, 9)]
    again = fit_latent_prior(model, batches, per_size=3)
    assert torch.equal(again.sizes, prior.sizes) and torch.allclose(again.mu, prior.mu, rtol=2e-3)
    other = fit_latent_prior(model, CRYSTALS, per_size=3, seed=1)
    assert not torch.equal(other.mu, prior.mu)
    assert len(fit_latent_prior(model, CRYSTALS).sizes) == len(CRYSTALS)  # the default: every crystal
    twice = fit_latent_prior(model, CRYSTALS + CRYSTALS[:5])  # a repeated crystal is kept once
    assert len(twice.sizes) == len(CRYSTALS) and twice.num_crystals == len(CRYSTALS) + 5


def test_transform_picks_a_component_of_the_cell_size_and_any_for_an_unseen_size():
    mu = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    std = torch.tensor([[0.5, 0.5], [1.0, 2.0], [0.1, 0.1]])
    prior = LatentPrior(mu=mu, std=std, sizes=torch.tensor([2, 4, 4]))
    eps = torch.ones(5, 2)
    out = prior.transform(eps, torch.tensor([2, 4, 4, 9, 9]), torch.tensor([0.9, 0.2, 0.7, 0.1, 0.99]))
    want = torch.tensor([[1.5, 2.5], [4.0, 6.0], [5.1, 6.1], [1.5, 2.5], [5.1, 6.1]])
    assert torch.allclose(out, want)
    picks = torch.tensor([0.9, 0.2, 0.7, 0.1, 0.99])
    means = prior.transform(eps, torch.tensor([2, 4, 4, 9, 9]), picks, scale=0.0)
    assert torch.allclose(means, mu[[0, 1, 2, 0, 2]])  # scale 0: the chosen components' means
    half = prior.transform(eps, torch.tensor([2, 4, 4, 9, 9]), picks, scale=0.5)
    assert torch.allclose(half, (means + want) / 2)
    with pytest.raises(ValueError, match="latent_scale must be >= 0"):
        SamplerConfig(latent_scale=-1.0)
    with pytest.raises(ValueError, match="ascending"):
        LatentPrior(mu=mu, std=std, sizes=torch.tensor([4, 2, 4]))
    with pytest.raises(ValueError, match="positive"):
        LatentPrior(mu=mu, std=-std, sizes=torch.tensor([2, 4, 4]))


def test_checkpoint_round_trip_and_broken_files(model, tmp_path):
    m = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    m.latent_prior = fit_latent_prior(m, CRYSTALS)
    save_checkpoint(tmp_path / "ck", m)
    info = json.loads((tmp_path / "ck" / "config.json").read_text())
    k = len(m.latent_prior.sizes)  # an untrained encoder: one code per size (repeats are kept once)
    assert info["latent_prior"] == {"file": LATENT_PRIOR, "crystals": 40, "components": k, "analogues": True}
    back = load_checkpoint(tmp_path / "ck")
    for name in ("mu", "std", "sizes", "atoms", "cells"):
        assert torch.equal(getattr(back.latent_prior, name), getattr(m.latent_prior, name))
    assert torch.equal(back.latent_prior.conditions["pressure"], m.latent_prior.conditions["pressure"])
    (tmp_path / "ck" / LATENT_PRIOR).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a valid latent prior"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / LATENT_PRIOR).unlink()
    with pytest.raises(FileNotFoundError, match="names a latent prior"):
        load_checkpoint(tmp_path / "ck")
    save_checkpoint(tmp_path / "none", model)  # a model without one: none written, none loaded
    assert not (tmp_path / "none" / LATENT_PRIOR).exists()
    assert load_checkpoint(tmp_path / "none").latent_prior is None


def _run(model, latent):
    requests = make_requests(model, ["Si4O8", "C8", "H2O"], [1.0, 30.0, 4.0])
    return sample_requests(
        model, requests, num_per_row=2, seed=3, sampler=SamplerConfig(levels=3, latent=latent)
    )


def test_the_sampler_draws_from_the_fitted_prior_when_asked_or_auto(model):
    bare = _run(model, "auto")
    with pytest.raises(ValueError, match="has no latent prior.*fit_latent_prior"):
        _run(model, "fitted")
    with_prior = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    # a prior that puts every latent at the same point: every structure of a row gets the same proposal
    z = with_prior.config.latent_dim
    one = torch.full((1, z), 0.3)
    with_prior.latent_prior = LatentPrior(mu=one, std=torch.full((1, z), 1e-9), sizes=torch.tensor([99]))
    standard, auto, fitted = (_run(with_prior, latent) for latent in ("standard", "auto", "fitted"))
    for a, b in zip(bare, standard, strict=True):  # "standard" ignores the prior: N(0, I) as before
        assert np.array_equal(a.crystal.frac_coords, b.crystal.frac_coords)
        assert b.extra["latent"] == "standard"
    for a, b in zip(auto, fitted, strict=True):
        assert np.array_equal(a.crystal.lattice, b.crystal.lattice) and a.extra["latent"] == "fitted"
    assert np.allclose(fitted[0].crystal.lattice, fitted[1].crystal.lattice)  # same latent, same cell
    assert not np.allclose(standard[0].crystal.lattice, standard[1].crystal.lattice)
    assert SamplerConfig.reference().latent == "standard"
    with pytest.raises(ValueError, match="latent must be one of"):
        SamplerConfig(latent="posterior")


def test_fit_keeps_each_components_crystal(model):
    prior = fit_latent_prior(model, CRYSTALS)
    with torch.no_grad():
        mu = model.encode(collate(CRYSTALS, dtype=torch.float64)).mu.float()
    for j in range(len(prior.sizes)):
        i = int(((mu - prior.mu[j]).abs() <= 1e-3 * (1 + mu.abs())).all(1).nonzero()[0])  # its crystal
        crystal = CRYSTALS[i]
        atoms = prior.atoms[j][prior.atoms[j] > 0]
        assert atoms.tolist() == list(crystal.atom_types) and len(atoms) == prior.sizes[j]
        lengths, angles = lattice_to_params(torch.as_tensor(crystal.lattice, dtype=torch.float64))
        assert torch.allclose(prior.cells[j].double(), torch.cat([lengths, angles]), rtol=1e-6)
        assert torch.allclose(prior.analogue_cells(torch.tensor([j]))[0].det().abs(),
                              torch.as_tensor(crystal.lattice).det().abs(), rtol=1e-5)  # fmt: skip
        assert prior.conditions["pressure"][j] == pytest.approx(crystal.properties["pressure"])


def test_nearest_ranks_the_same_size_by_condition_distance():
    z = torch.zeros(5, 2)
    atoms = torch.tensor([[1, 1, 0]] * 3 + [[1] * 3] * 2)
    cells = torch.tensor([[3.0, 3, 3, 90, 90, 90]] * 5)
    prior = LatentPrior(mu=z, std=z + 1, sizes=torch.tensor([2, 2, 2, 3, 3]), atoms=atoms, cells=cells)
    components = torch.tensor([[0.0], [5.0], [1.0], [0.2], [9.0]])
    query = torch.tensor([[0.9], [0.9], [0.9], [0.9], [8.0], [4.0]])
    num_atoms = torch.tensor([2, 2, 2, 2, 3, 7])  # 7 atoms: no component of that size, every one
    j = prior.nearest(query, components, num_atoms, torch.tensor([0, 1, 2, 3, 0, 0]))
    assert j.tolist() == [2, 0, 1, 2, 4, 1]  # rank 3 of three same-size components wraps to the nearest
    named = LatentPrior(
        mu=z[:1], std=z[:1] + 1, sizes=torch.tensor([3]), atoms=torch.tensor([[11, 17, 17]]), cells=cells[:1],
        conditions={"pressure": torch.tensor([2.5])},
    )  # fmt: skip
    assert named.describe(0) == "Na1Cl2 at pressure 2.5 GPa"
    with pytest.raises(ValueError, match="atoms and cells come together"):
        LatentPrior(mu=z, std=z + 1, sizes=torch.tensor([2, 2, 2, 3, 3]), atoms=prior.atoms)
    with pytest.raises(ValueError, match="size atoms"):
        LatentPrior(
            mu=z, std=z + 1, sizes=torch.tensor([2, 2, 2, 3, 3]), atoms=prior.atoms.flip(0), cells=prior.cells
        )


def test_analogue_samples_start_from_the_nearest_training_crystals(model):
    m = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    m.load_state_dict(model.state_dict())
    train = random_crystals(30, seed=9)
    m.latent_prior = fit_latent_prior(m, train)
    prior = m.latent_prior
    requests = make_requests(m, ["Si4O8", "C8"], [1.0, 4.0])

    def run(**kw):
        return sample_requests(m, requests, num_per_row=3, seed=3, sampler=SamplerConfig(levels=3, **kw))

    auto, analogue = run(latent="auto"), run(latent="analogue")
    fitted = run(latent="fitted", cell_volume="model")
    with torch.no_grad():  # the k-th nearest component of the request's size, by hand
        comp_atoms, comp_batch = prior.analogue_atoms()
        comps = m.conditions(atom_types=comp_atoms, batch=comp_batch, num_crystals=len(prior.sizes),
                             properties={"pressure": prior.conditions["pressure"].double()})  # fmt: skip
    for s, t in zip(auto, analogue, strict=True):
        assert s.extra["latent"] == "analogue" and s.extra["analogue"] == t.extra["analogue"]
        atoms = torch.tensor(requests[s.row].atom_types)
        pressure = torch.tensor([requests[s.row].conditions["pressure"]])
        with torch.no_grad():
            q = m.conditions(
                atom_types=atoms,
                batch=torch.zeros_like(atoms),
                num_crystals=1,
                properties={"pressure": pressure},
            )
        pool = (prior.sizes == len(atoms)).nonzero().flatten()
        if len(pool) == 0:
            pool = torch.arange(len(prior.sizes))
        order = pool[torch.argsort((comps[pool] - q).norm(dim=1), stable=True)]
        assert s.extra["analogue"] == int(order[s.index % len(order)])
        # the cell: the analogue's shape (angles, length ratios) at the volume prior's size
        want = prior.cells[s.extra["analogue"]].double()
        lengths, angles = lattice_to_params(torch.as_tensor(s.crystal.lattice))
        assert torch.allclose(angles, want[3:], atol=1e-3)
        assert torch.allclose(lengths / lengths[0], want[:3] / want[0], rtol=1e-4)
    assert all(s.extra["latent"] == "fitted" and "analogue" not in s.extra for s in fitted)
    old = LatentPrior(mu=prior.mu, std=prior.std, sizes=prior.sizes)  # a prior fitted before analogues
    m.latent_prior = old
    assert all(s.extra["latent"] == "fitted" for s in run(latent="auto"))
    with pytest.raises(ValueError, match="keeps no training crystals"):
        run(latent="analogue")


def test_training_fits_the_prior_of_best_and_of_the_returned_model(tmp_path):
    cfg = TrainConfig(
        seed=3, device="cpu", batch_size=8, max_epochs=2, val_every_epochs=1, progress=False,
        teacher_forcing_max_epoch=0, plateau_patience=0,
    )  # fmt: skip
    result = train(
        cfg, CondCDVAEConfig.tiny(), random_crystals(16, seed=2), random_crystals(6, seed=3), tmp_path
    )
    assert result.model.latent_prior is not None and result.model.latent_prior.num_crystals == 16
    best = load_checkpoint(result.best_checkpoint)
    assert best.latent_prior is not None and best.latent_prior.num_crystals == 16
    off = train(
        cfg.replace(latent_prior=False),
        CondCDVAEConfig.tiny(),
        random_crystals(16, seed=2),
        None,
        tmp_path / "off",
    )
    assert off.model.latent_prior is None
