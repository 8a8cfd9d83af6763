"""Species re-assignment after sampling: the assignments enumerated, the lowest denoising loss kept
(against a judge that knows the answer), and the sampler's option end to end."""

from __future__ import annotations

import math

import numpy as np
import torch
from cond_vae import SamplerConfig
from cond_vae.sampling import make_requests, sample_requests
from cond_vae.sampling._species import distinct_assignments, reassign_species
from xtal_graph import frac_to_cart, minimum_image

from tests.cond_vae._helpers import tiny_model


def test_distinct_assignments_of_a_multiset():
    got = distinct_assignments([8, 20, 8, 22, 8], limit=100)
    assert got[0] == (8, 20, 8, 22, 8) and len(got) == len(set(got)) == 20  # 5! / 3!
    assert all(sorted(g) == [8, 8, 8, 20, 22] for g in got)
    assert distinct_assignments([1, 2, 3, 4, 5, 6], limit=100) is None  # 720 > 100
    assert distinct_assignments([6, 6, 6], limit=1) == [(6, 6, 6)]
    assert len(distinct_assignments(list(range(1, 9)), limit=math.factorial(8))) == math.factorial(8)


class _Judge:
    """Points perfectly back to the true sites for the element each site should hold, nowhere else."""

    cutoff, max_neighbors = 6.0, 12

    def __init__(self, frac, lattice, preferred):
        self.sigmas = torch.tensor([1.0, 0.3, 0.1], dtype=torch.float64)
        self.frac, self.lattice, self.preferred = frac, lattice, torch.tensor(preferred)

    def score(self, *, atom_types, batch, frac, lattice, graph, triplets, cond, sigma):
        n = self.frac.shape[0]
        site = torch.arange(atom_types.shape[0]) % n
        back = minimum_image(self.frac[site] - frac, lattice, batch=batch)  # (M, 3) Å
        right = (atom_types == self.preferred[site]).unsqueeze(-1)
        return torch.where(right, back / sigma**2, torch.zeros_like(back))


def test_the_assignment_the_judge_prefers_is_kept():
    frac = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    lattice = 4.0 * torch.eye(3).unsqueeze(0)
    judge = _Judge(frac, lattice[0], preferred=[20, 22, 8, 8, 8])  # CaTiO3: Ca at the corner, Ti inside
    swapped = torch.tensor([22, 20, 8, 8, 8])  # as sampled: Ti and Ca swapped
    two = dict(num_atoms=torch.tensor([5, 5]), frac=torch.cat([frac, frac]), lattice=lattice.repeat(2, 1, 1))
    types = torch.cat([swapped, torch.tensor([20, 22, 8, 8, 8])])
    out, changed = reassign_species(
        judge, types, cond=torch.zeros(2, 1), keys=torch.tensor([3, 4]), levels=[0, 1, 2], draws=2,
        max_assignments=120, **two,
    )  # fmt: skip
    assert out.tolist() == [20, 22, 8, 8, 8] * 2 and changed.tolist() == [True, False]
    few, unchanged = reassign_species(
        judge, types, cond=torch.zeros(2, 1), keys=torch.tensor([3, 4]), levels=[0], draws=1,
        max_assignments=10, chunk=7, **two,
    )  # fmt: skip
    assert torch.equal(few, types) and not unchanged.any()  # 20 assignments > 10: kept as sampled
    assert torch.allclose(frac_to_cart(frac, lattice[0]), frac @ lattice[0])  # (the judge's geometry)


def test_the_sampler_option_keeps_each_composition():
    model = tiny_model(dtype=torch.float64)
    requests = make_requests(model, ["Si2O4", "Ca1Ti1O3", "C4"], [1.0, 2.0, 3.0])
    sampler = SamplerConfig(levels=3, reassign_species=True)
    a = sample_requests(model, requests, num_per_row=2, seed=1, sampler=sampler)
    b = sample_requests(model, requests, num_per_row=2, seed=1, sampler=sampler.replace(batch_size=2))
    plain = sample_requests(model, requests, num_per_row=2, seed=1, sampler=SamplerConfig(levels=3))
    for s, t, p in zip(a, b, plain, strict=True):
        if not s.valid:
            continue
        assert sorted(s.crystal.atom_types.tolist()) == sorted(requests[s.row].atom_types)
        assert s.extra["species"] in ("reassigned", "as sampled") and "species" not in p.extra
        assert np.array_equal(s.crystal.frac_coords, p.crystal.frac_coords)  # positions untouched
        assert np.array_equal(s.crystal.atom_types, t.crystal.atom_types)  # whatever the batch size
    assert a[4].extra["species"] == a[5].extra["species"] == "as sampled"  # C4: one assignment only
