"""The composition-and-pressure volume prior: its fit, its JSON and checkpoint round trips, and the
sampler's ``cell_volume`` (cells scaled to the prior's volume, shape kept; given cells untouched)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from cond_vae import SamplerConfig, VolumePrior, fit_volume_prior
from cond_vae.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from cond_vae.sampling import make_requests, sample_requests
from xtal_graph import Crystal, collate, lattice_from_params, lattice_to_params

from tests.cond_vae._helpers import random_crystals, tiny_model

# a known law: ln(V/N) = 2.0 + x_H (-1.0) + x_O 0.5 + x_Fe 0.2 - 0.15 ln(1 + P / 10)
TERMS = {1: -1.0, 8: 0.5, 26: 0.2}


def _law(atoms, pressure):
    x = {z: list(atoms).count(z) / len(atoms) for z in set(atoms)}
    return 2.0 + sum(x[z] * TERMS[z] for z in x) - 0.15 * math.log1p(pressure / 10.0)


def _lawful_crystals(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = rng.choice(list(TERMS), size=int(rng.integers(1, 7))).astype(np.int64)
        pressure = float(rng.choice([0.0, 5.0, 25.0, 50.0]))
        volume = len(atoms) * math.exp(_law(atoms.tolist(), pressure))
        angles = rng.uniform(70, 110, size=3)
        lattice = lattice_from_params(torch.tensor([1.0, 1.3, 0.8]), torch.tensor(angles)).numpy()
        lattice *= (volume / abs(np.linalg.det(lattice))) ** (1 / 3)
        out.append(Crystal(atoms, rng.random((len(atoms), 3)), lattice, {"pressure": pressure}, f"c{k}"))
    return out


def _predict(prior, crystals):
    b = collate(crystals, dtype=torch.float64)
    return prior.volume(
        atom_types=b.atom_types, batch=b.batch, num_atoms=b.num_atoms, conditions=b.properties
    )


def test_fit_recovers_a_known_law_and_its_pressure_scale():
    crystals = _lawful_crystals(300)
    prior = fit_volume_prior(crystals, ridge=1e-6)
    true = torch.tensor([abs(np.linalg.det(c.lattice)) for c in crystals])
    assert torch.allclose(_predict(prior, crystals), true, rtol=1e-4)
    assert prior.condition == "pressure" and prior.condition_scale == 10.0
    assert prior.condition_coef == pytest.approx(-0.15, abs=1e-4)
    assert prior.residual_sd < 1e-4 and prior.num_crystals == 300 and set(prior.element_terms) == set(TERMS)
    # streamed in batches: the same fit
    streamed = fit_volume_prior([collate(crystals[:120]), collate(crystals[120:])], ridge=1e-6)
    assert torch.allclose(_predict(streamed, crystals), _predict(prior, crystals), rtol=1e-9)


def test_unseen_elements_get_the_average_and_a_constant_condition_gets_no_term():
    crystals = [dataclasses.replace(c, properties={"pressure": 3.0}) for c in _lawful_crystals(50)]
    prior = fit_volume_prior(crystals)
    assert prior.condition is None and prior.condition_coef == 0.0
    silicon = Crystal(np.array([14, 14]), np.zeros((2, 3)), np.eye(3) * 3, {"pressure": 3.0})
    assert float(_predict(prior, [silicon])[0]) == pytest.approx(2 * math.exp(prior.intercept))
    with pytest.raises(KeyError, match="'pressure' missing"):
        fit_volume_prior([dataclasses.replace(crystals[0], properties={})])
    with pytest.raises(ValueError, match="ridge must be > 0"):
        fit_volume_prior(crystals, ridge=0)


def test_json_and_checkpoint_round_trips(tmp_path):
    prior = fit_volume_prior(_lawful_crystals(40))
    assert VolumePrior.from_dict(prior.to_dict()) == prior
    with pytest.raises(ValueError, match="invalid JSON view"):
        VolumePrior.from_dict({"element_terms": {}})
    model = tiny_model()
    save_checkpoint(tmp_path / "none", model)
    assert read_checkpoint_info(tmp_path / "none")["volume_prior"] is None
    assert load_checkpoint(tmp_path / "none").volume_prior is None
    model.volume_prior = prior
    save_checkpoint(tmp_path / "with", model)
    assert load_checkpoint(tmp_path / "with").volume_prior == prior


FORMULAS, PRESSURES = ["Si4O8", "Fe2O3", "C8", "H2O"], [1.0, 2.0, 30.0, 4.0]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    m.volume_prior = fit_volume_prior(_lawful_crystals(60, seed=2))  # its volumes fall with pressure
    return m


def _run(model, cell_volume, requests=None):
    requests = requests or make_requests(model, FORMULAS, PRESSURES)
    sampler = SamplerConfig(levels=3, cell_volume=cell_volume)
    return sample_requests(model, requests, num_per_row=2, seed=3, sampler=sampler)


def test_prior_cells_have_the_priors_volume_and_the_lattice_heads_shape(model):
    as_predicted, sized = _run(model, "model"), _run(model, "prior")
    requests = make_requests(model, FORMULAS, PRESSURES)
    for a, b in zip(as_predicted, sized, strict=True):
        assert a.extra["cell"] == "model" and b.extra["cell"] == "prior"
        req = requests[b.row]
        atoms = torch.tensor(req.atom_types)
        pressure = {"pressure": torch.tensor([req.conditions["pressure"]])}
        want = model.volume_prior.volume(
            atom_types=atoms, batch=torch.zeros(len(atoms), dtype=torch.long),
            num_atoms=torch.tensor([len(atoms)]), conditions=pressure,
        )  # fmt: skip
        assert abs(np.linalg.det(b.crystal.lattice)) == pytest.approx(float(want[0]), rel=1e-9)
        _, angles_a = lattice_to_params(torch.tensor(a.crystal.lattice))
        _, angles_b = lattice_to_params(torch.tensor(b.crystal.lattice))
        assert torch.allclose(angles_a, angles_b, atol=1e-9)
    # the prior follows the pressure: the same composition is smaller at a higher pressure
    low, high = make_requests(model, ["C8", "C8"], [0.0, 40.0])
    cells = _run(model, "prior", [low, high])
    assert abs(np.linalg.det(cells[2].crystal.lattice)) < abs(np.linalg.det(cells[0].crystal.lattice))


def test_auto_uses_the_prior_when_there_is_one_and_the_model_otherwise(model):
    auto, prior = _run(model, "auto"), _run(model, "prior")
    assert all(np.array_equal(a.crystal.lattice, p.crystal.lattice) for a, p in zip(auto, prior, strict=True))
    bare = tiny_model(random_crystals(16, seed=1), dtype=torch.float64)
    auto, as_predicted = _run(bare, "auto"), _run(bare, "model")
    for a, m in zip(auto, as_predicted, strict=True):
        assert np.array_equal(a.crystal.frac_coords, m.crystal.frac_coords) and a.extra["cell"] == "model"
    with pytest.raises(ValueError, match="has no volume prior.*fit_volume_prior"):
        _run(bare, "prior")
    assert SamplerConfig.reference().cell_volume == "model"
    with pytest.raises(ValueError, match="cell_volume must be one of"):
        SamplerConfig(cell_volume="true")


def test_a_given_cell_is_never_rescaled(model):
    cell = ((4.0, 0.0, 0.0), (0.0, 5.0, 0.0), (0.0, 0.0, 6.0))
    given = dataclasses.replace(make_requests(model, ["Si4O8"], [1.0])[0], lattice=cell)
    free = make_requests(model, ["Fe2O3"], [2.0])[0]
    out = _run(model, "prior", [given, free])
    assert [s.extra["cell"] for s in out] == ["given", "given", "prior", "prior"]
    assert np.allclose(out[0].crystal.lattice, np.array(cell))
