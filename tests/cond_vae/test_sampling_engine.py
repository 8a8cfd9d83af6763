"""The sampling engine: keyed randomness, invariance to ranks and batch size, each sampler on a toy
score with a known answer, a custom score model, plans and their decoder-call counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from cond_vae import fit_latent_prior, fit_volume_prior
from cond_vae.sampling import (
    Proposal,
    SamplerConfig,
    SampleRequest,
    ScoreModel,
    _noise,
    make_requests,
    merge_shards,
    plan,
    sample_requests,
    visited_levels,
    visited_sigmas,
    write_shard,
)

from tests.cond_vae._helpers import random_crystals, tiny_model
from tests.conftest import DEVICES


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_model(random_crystals(16, seed=1), dtype=torch.float64)


# ----------------------------------------------------------------------------- keyed random numbers
def test_keyed_numbers_do_not_depend_on_what_else_is_drawn():
    keys = torch.tensor([_noise.structure_key(7, r, k) for r in range(5) for k in range(3)])
    full = _noise.normal(keys, _noise.NOISE, 11, 3, torch.float64)
    assert torch.equal(full[4:9], _noise.normal(keys[4:9], _noise.NOISE, 11, 3, torch.float64))
    assert not torch.equal(full, _noise.normal(keys, _noise.NOISE, 12, 3, torch.float64))
    assert len(set(keys.tolist())) == len(keys)
    assert _noise.structure_key(7, 1, 2) != _noise.structure_key(7, 2, 1)


def test_keyed_numbers_have_the_right_distribution():
    keys = torch.tensor([_noise.structure_key(0, r, 0) for r in range(4000)])
    z = _noise.normal(keys, _noise.NOISE, 0, 25, torch.float64).flatten()  # 100,000 numbers
    assert abs(float(z.mean())) < 0.015 and abs(float(z.std()) - 1) < 0.015
    assert abs(float((z**4).mean()) - 3) < 0.1  # Gaussian tails, not a uniform's
    u = _noise.uniform(keys, _noise.START, 0, 25, torch.float64).flatten()
    assert 0 < float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.005


# ----------------------------------------------------------------------------- engine invariance
FORMULAS, PRESSURES = ["Si4O8", "Fe2O3", "C8", "H2O"], [1.0, 2.0, 3.0, 4.0]


def _run(model, sampler, **kw):
    requests = make_requests(model, FORMULAS, PRESSURES)
    return sample_requests(model, requests, num_per_row=3, seed=5, sampler=sampler, **kw)


@pytest.mark.parametrize("method", ["pc", "langevin", "ode"])
def test_ranks_give_the_structures_of_one_process_bit_for_bit(model, method, tmp_path):
    sampler = SamplerConfig(method=method, levels=5, batch_size=4)
    one = _run(model, sampler)
    for world in (2, 3):
        for rank in range(world):
            write_shard(tmp_path / str(world), rank, _run(model, sampler, rank=rank, world_size=world))
        merged = merge_shards(tmp_path / str(world), world)
        assert [(s.row, s.index) for s in merged] == [(s.row, s.index) for s in one]
        for a, b in zip(one, merged, strict=True):
            assert np.array_equal(a.crystal.frac_coords, b.crystal.frac_coords)
            assert np.array_equal(a.crystal.lattice, b.crystal.lattice)


def test_batch_size_changes_no_random_number(model):
    """Batch 1 vs 64: latents and cells bit for bit (per-crystal heads); coordinates of the
    deterministic sampler equal to float rounding. The stochastic samplers use the same random numbers
    too, but can amplify the rounding of batched matrix products (docs/benchmarks/sampler.md)."""
    ode = SamplerConfig(method="ode", levels=10)
    small, large = _run(model, ode.replace(batch_size=1)), _run(model, ode.replace(batch_size=64))
    for a, b in zip(small, large, strict=True):
        assert np.array_equal(a.crystal.lattice, b.crystal.lattice)
        delta = (a.crystal.frac_coords - b.crystal.frac_coords + 0.5) % 1 - 0.5
        assert np.abs(delta).max() < 1e-8  # float64 model


def test_given_lattices_are_kept(model):
    cells = [np.diag([5.0, 5.5, 6.0]) + 0.1 * i for i in range(len(FORMULAS))]
    requests = make_requests(model, FORMULAS, PRESSURES, lattices=cells)
    out = sample_requests(model, requests, num_per_row=2, seed=0, sampler=SamplerConfig(levels=3))
    for s in out:
        np.testing.assert_allclose(s.crystal.lattice, cells[s.row], atol=1e-12)


def test_explicit_jobs_are_the_same_structures_as_the_full_request(model):
    sampler = SamplerConfig(method="ode", levels=4, batch_size=5)  # other blocks: equal to rounding
    full = {(x.row, x.index): x for x in _run(model, sampler)}
    requests = make_requests(model, FORMULAS, PRESSURES)
    some = sample_requests(
        model, requests, num_per_row=0, seed=5, sampler=sampler, jobs=[(3, 2), (0, 1), (2, 0)]
    )
    assert [(x.row, x.index) for x in some] == [(3, 2), (0, 1), (2, 0)]
    for x in some:
        assert np.array_equal(x.crystal.lattice, full[(x.row, x.index)].crystal.lattice)
        np.testing.assert_allclose(
            x.crystal.frac_coords, full[(x.row, x.index)].crystal.frac_coords, atol=1e-9
        )
    with pytest.raises(ValueError, match="name no request row"):
        sample_requests(model, requests, num_per_row=1, seed=5, sampler=sampler, jobs=[(9, 0)])


def test_a_block_may_mix_given_and_predicted_lattices(model):
    cell = np.diag([5.0, 5.5, 6.0])
    requests = make_requests(model, FORMULAS, PRESSURES, lattices=[cell, None, cell, None])
    sampler = SamplerConfig(method="ode", levels=3)
    one = sample_requests(model, requests, num_per_row=1, seed=1, sampler=sampler.replace(batch_size=4))
    alone = sample_requests(model, requests, num_per_row=1, seed=1, sampler=sampler.replace(batch_size=1))
    for a, b in zip(one, alone, strict=True):
        np.testing.assert_allclose(a.crystal.lattice, b.crystal.lattice, atol=1e-12)
    np.testing.assert_allclose(one[0].crystal.lattice, cell, atol=1e-12)
    assert not np.allclose(one[1].crystal.lattice, cell)


def test_reconstruct_in_chunks_with_global_rows_equals_one_call(model):
    from cond_vae import reconstruct
    from xtal_graph import collate

    crystals = random_crystals(6, seed=4)
    sampler = SamplerConfig(method="ode", levels=3)
    whole = reconstruct(model, collate(crystals, dtype=torch.float64), seed=2, sampler=sampler)
    parts = reconstruct(model, collate(crystals[:4], dtype=torch.float64), seed=2, sampler=sampler)
    parts += reconstruct(
        model, collate(crystals[4:], dtype=torch.float64), seed=2, sampler=sampler, rows=[4, 5]
    )
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_allclose(a.frac_coords, b.frac_coords, atol=1e-9)
        np.testing.assert_allclose(a.lattice, b.lattice, atol=1e-12)


# ----------------------------------------------------------------------------- plans
@pytest.mark.parametrize(
    "config",
    [
        SamplerConfig(),
        SamplerConfig(levels=10, corrector_steps=0),
        SamplerConfig(levels=1, final_denoise=False),
        SamplerConfig(method="ode", levels=25),
        SamplerConfig(method="langevin", levels=20, steps_per_level=3),
        SamplerConfig.reference(),
        SamplerConfig(method="ode", levels=120),
    ],
)
def test_plan_length_is_the_advertised_decoder_calls(config):
    sigmas = torch.logspace(1, -2, 50)
    steps = plan(config, sigmas)
    assert len(steps) == config.decoder_calls(50)
    assert all(a.sigma >= b.sigma for a, b in zip(steps, steps[1:], strict=False))


def test_reference_setting_is_5000_calls_and_levels_are_evenly_spread():
    assert SamplerConfig.reference().decoder_calls() == 5000
    assert visited_levels(50, None) == list(range(50))
    assert visited_levels(50, 5) == [0, 12, 24, 37, 49]
    assert visited_levels(50, 1) == [49]
    sigmas = torch.logspace(1, -2, 50, dtype=torch.float64)
    finer = visited_sigmas(sigmas, 99)  # every level of the model and one between each pair
    assert len(finer) == 99 and finer[0] == 10.0 and finer[-1] == float(sigmas[-1])
    np.testing.assert_allclose(finer[::2], sigmas.tolist(), rtol=1e-12)
    with pytest.raises(ValueError, match="method"):
        SamplerConfig(method="euler")
    with pytest.raises(ValueError, match="unknown key"):
        SamplerConfig.from_dict({"steps": 3})
    assert SamplerConfig.from_dict(SamplerConfig(levels=7).to_dict()) == SamplerConfig(levels=7)


# ----------------------------------------------------------------------------- toy score, known answer
@dataclass
class GaussianAroundSites:
    """A custom :class:`ScoreModel`: every atom of a cubic cell ``a`` Å is drawn from a periodic Gaussian
    of width ``tau`` Å around its own site, so ``p_sigma`` is a Gaussian of variance
    ``tau^2 + sigma^2`` per component (summed over the 125 nearest images, exact at every level)."""

    sites: torch.Tensor  # (N, 3) fractional
    a: float = 4.0
    tau: float = 0.1
    sigmas: torch.Tensor = torch.logspace(1, -2, 50, dtype=torch.float64)
    latent_dim: int = 0
    cutoff: float = 1.0
    max_neighbors: int | None = 1

    def propose(self, *, atom_types, batch, num_atoms, conditions, latent, lattice):
        c = num_atoms.shape[0]
        cell = torch.eye(3, dtype=torch.float64).expand(c, 3, 3) * self.a
        return Proposal(cond=torch.zeros((c, 0), dtype=torch.float64), lattice=cell, reasons=("",) * c)

    def score(self, *, atom_types, batch, frac, lattice, graph, triplets, cond, sigma):
        n = atom_types.shape[0]
        images = torch.stack(
            torch.meshgrid(*[torch.arange(-2, 3.0, dtype=torch.float64)] * 3, indexing="ij"), -1
        )
        d = (frac - self.sites[:n])[:, None, :] + images.reshape(1, -1, 3)  # (N, 125, 3) cells
        d = d * self.a  # Å
        var = self.tau**2 + sigma**2
        w = torch.softmax(-(d * d).sum(-1) / (2 * var), dim=1)  # (N, 125)
        return -(w[..., None] * d).sum(1) / var  # (N, 3) 1/Å


@pytest.fixture
def toy():
    sites = _noise.uniform(torch.arange(300), _noise.START, 99, 3, torch.float64)
    return GaussianAroundSites(sites=sites)


@pytest.mark.parametrize(
    "config",
    [
        SamplerConfig(method="pc", corrector_steps=0),  # ancestral predictor alone
        SamplerConfig(method="pc", corrector_steps=1, snr=0.1),
        SamplerConfig(method="ode"),
        SamplerConfig(method="langevin", steps_per_level=20, final_denoise=False),
    ],
    ids=["ancestral", "pc", "ode", "langevin"],
)
def test_each_sampler_lands_on_the_known_distribution(toy, config):
    assert isinstance(toy, ScoreModel)
    request = SampleRequest(atom_types=(6,) * 300, conditions={})
    (out,) = sample_requests(toy, [request], num_per_row=1, seed=0, sampler=config)
    delta = (out.crystal.frac_coords - toy.sites.numpy() + 0.5) % 1 - 0.5  # (N, 3) fractional
    std = float(np.std(delta * toy.a))
    # the exact answer is tau (0.1 Å); 900 numbers give about 3% statistical error
    assert 0.8 * toy.tau < std < 1.25 * toy.tau, std
    assert abs(float(np.mean(delta * toy.a))) < 0.02
    if config.method == "ode":  # deterministic: the same run again is the same bits
        (again,) = sample_requests(toy, [request], num_per_row=1, seed=0, sampler=config)
        assert np.array_equal(again.crystal.frac_coords, out.crystal.frac_coords)


def test_a_sampler_that_stops_early_is_caught_by_the_toy(toy):
    """The check has teeth: one level only leaves the atoms far from their sites."""
    request = SampleRequest(atom_types=(6,) * 300, conditions={})
    (out,) = sample_requests(
        toy,
        [request],
        num_per_row=1,
        seed=0,
        sampler=SamplerConfig(method="ode", levels=1, final_denoise=False),
    )
    delta = (out.crystal.frac_coords - toy.sites.numpy() + 0.5) % 1 - 0.5
    assert float(np.std(delta * toy.a)) > 3 * toy.tau
    assert math.isfinite(float(np.std(delta)))


# ----------------------------------------------------------------------------- devices
@pytest.mark.cuda
def test_keyed_numbers_agree_on_cpu_and_cuda():
    keys = torch.tensor([_noise.structure_key(3, r, 0) for r in range(100)])
    cpu = _noise.normal(keys, _noise.NOISE, 5, 3, torch.float64)
    gpu = _noise.normal(keys.cuda(), _noise.NOISE, 5, 3, torch.float64).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-12)
    assert torch.equal(_noise._bits(keys, 1, 2, 4), _noise._bits(keys.cuda(), 1, 2, 4).cpu())


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampling_on_cuda_agrees_with_cpu(dtype):
    """The deterministic sampler, few levels: the same structures on both devices within tolerance."""
    torch.manual_seed(0)
    cpu_model = tiny_model(random_crystals(16, seed=1), dtype=dtype)
    gpu_model = tiny_model(random_crystals(16, seed=1), dtype=dtype).cuda()
    gpu_model.load_state_dict(cpu_model.state_dict())
    sampler = SamplerConfig(method="ode", levels=4)
    a = _run(cpu_model, sampler)
    b = _run(gpu_model, sampler)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.crystal.lattice, y.crystal.lattice, atol=tol * 10)
        delta = (x.crystal.frac_coords - y.crystal.frac_coords + 0.5) % 1 - 0.5
        assert np.abs(delta).max() < tol * 100


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["pc", "langevin", "ode"])
def test_each_sampler_runs_on_cuda_seeded(method):
    torch.manual_seed(0)
    model = tiny_model(random_crystals(16, seed=1), dtype=torch.float32).cuda()
    sampler = SamplerConfig(method=method, levels=6)
    a, b = _run(model, sampler), _run(model, sampler)
    for x, y in zip(a, b, strict=True):
        assert x.valid and np.array_equal(x.crystal.lattice, y.crystal.lattice)  # same latents and cells
        assert ((x.crystal.frac_coords >= 0) & (x.crystal.frac_coords < 1)).all()


@pytest.mark.parametrize("device", DEVICES)
def test_analogues_volume_prior_and_species_reassignment_on_each_device(device):
    """The default sampler's own steps (analogue codes and cells, cells sized by the volume prior) and
    species re-assignment on each device, priors fitted on the CPU: seeded runs repeat on the device,
    and the analogue each structure starts from, its cell and its composition agree with the CPU's."""
    torch.manual_seed(0)
    train = random_crystals(30, seed=9)
    cpu = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    cpu.latent_prior, cpu.volume_prior = fit_latent_prior(cpu, train), fit_volume_prior(train)
    dev = tiny_model(random_crystals(16, seed=1), dtype=torch.float64).to(device)
    dev.load_state_dict(cpu.state_dict())
    dev.latent_prior, dev.volume_prior = cpu.latent_prior, cpu.volume_prior
    requests = make_requests(cpu, ["Si2O4", "Ca1Ti1O3", "C4"], [1.0, 2.0, 3.0])
    sampler = SamplerConfig(levels=3, reassign_species=True)

    def run(m):
        return sample_requests(m, requests, num_per_row=2, seed=1, sampler=sampler)

    ref, a, b = run(cpu), run(dev), run(dev)
    for r, x, y in zip(ref, a, b, strict=True):
        assert x.valid and x.extra == y.extra and np.array_equal(x.crystal.frac_coords, y.crystal.frac_coords)
        assert x.extra["latent"] == "analogue" and x.extra["cell"] == "prior"
        assert x.extra["analogue"] == r.extra["analogue"]
        np.testing.assert_allclose(x.crystal.lattice, r.crystal.lattice, rtol=1e-9, atol=1e-9)
        assert sorted(x.crystal.atom_types.tolist()) == sorted(requests[x.row].atom_types)


def test_progress_counts_whole_structures_after_every_call(model):
    ticks: list[int] = []
    sampler = SamplerConfig(method="ode", levels=7, batch_size=5)
    out = _run(model, sampler, progress=ticks.append)  # 12 structures in blocks of 5, 5, 2
    assert sum(ticks) == len(out) == 12 and all(t >= 1 for t in ticks)
    assert len(ticks) > 3  # reported during blocks, not only at their ends


@pytest.mark.parametrize("method", ["pc", "langevin", "ode"])
def test_reproducible_mode_gives_the_same_bits_for_any_batch_size_and_ranks(method, tmp_path):
    """``reproducible=True``: batch 1 vs 64 vs 7, and 2 ranks at batch 5, all the same bits (float32)."""
    torch.manual_seed(0)
    model = tiny_model(random_crystals(16, seed=1), dtype=torch.float32)
    sampler = SamplerConfig(method=method, levels=12, reproducible=True)
    runs = [_run(model, sampler.replace(batch_size=b)) for b in (1, 64, 7)]
    for rank in range(2):
        write_shard(tmp_path, rank, _run(model, sampler.replace(batch_size=5), rank=rank, world_size=2))
    runs.append(merge_shards(tmp_path, 2))
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert (a.row, a.index) == (b.row, b.index)
            assert np.array_equal(a.crystal.frac_coords, b.crystal.frac_coords)
            assert np.array_equal(a.crystal.lattice, b.crystal.lattice)
