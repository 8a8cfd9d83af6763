"""Condition vector, robust scalers and out-of-range warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from xtal_graph import Crystal

from tests.cond_vae._helpers import batch_of, random_crystals, tiny_model


def _with_pressure(crystals, value):
    return [c.replace(properties={"pressure": value}) for c in crystals]


def test_constant_training_pressure_gets_fallback_scale_not_1e5():
    crystals = _with_pressure(random_crystals(6), 0.0)
    with pytest.warns(UserWarning, match="'pressure' is \\(nearly\\) constant"):
        model = tiny_model(crystals)
    scaler = model.conditions.scalers["pressure"]
    assert float(scaler.scale) == 1.0  # the 1 GPa floor, not std + 1e-5
    # 3 GPa is 3 sigma: still inside the basis [-2, 5] so its embedding is not zero
    c = model.conditions.bases["pressure"](model.conditions.standardise("pressure", torch.tensor([3.0])))
    assert float(c.max()) > 0.5


def test_query_outside_trained_range_warns_and_inside_does_not():
    model = tiny_model(random_crystals(16, pressure_range=(0.0, 20.0)))
    with pytest.warns(UserWarning, match="outside the range this model was trained on"):
        model.conditions.check_query("pressure", torch.tensor([500.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.conditions.check_query("pressure", torch.tensor([5.0])) == []


def test_query_notes_say_each_value_once_however_batched():
    model = tiny_model(random_crystals(16, pressure_range=(0.0, 20.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = model.conditions.check_query("pressure", torch.tensor([500.0, 30.0, 500.0, 5.0]))
        apart = [
            m for v in (30.0, 500.0) for m in model.conditions.check_query("pressure", torch.tensor([v]))
        ]
        many = model.conditions.check_query("pressure", torch.arange(30.0, 38.0), most=3)
    assert together == apart and len(together) == 2
    assert together[0].startswith("pressure 30 GPa is outside") and together[1].startswith("pressure 500 GPa")
    assert len(many) == 4 and many[-1].startswith("pressure: 5 more values outside the range")


def test_streamed_fit_equals_one_shot_fit():
    crystals = random_crystals(20)
    one = tiny_model(crystals)
    streamed = tiny_model([batch_of(crystals[:7]), batch_of(crystals[7:])])
    for name in ("lattice", "pressure"):
        a, b = one.scalers_dict()[name], streamed.scalers_dict()[name]
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-12)
        np.testing.assert_allclose(a["scale"], b["scale"], rtol=1e-10)
    assert one.scalers_dict()["pressure"]["min"] == streamed.scalers_dict()["pressure"]["min"]


def test_fit_rejects_nan_and_missing_condition():
    crystals = random_crystals(3)
    with pytest.raises(ValueError, match="non-finite"):
        tiny_model(_with_pressure(crystals, float("nan")))
    with pytest.raises(KeyError, match="pressure"):
        tiny_model([c.replace(properties={}) for c in crystals])


def test_unfitted_model_refuses_to_train():
    from cond_vae import CondCDVAE, CondCDVAEConfig

    model = CondCDVAE(CondCDVAEConfig.tiny()).double()
    with pytest.raises(RuntimeError, match="fit_scalers"):
        model(batch_of(random_crystals(2)), teacher_forcing=True)


def test_composition_embedding_is_a_mean_over_atoms():
    model = tiny_model()
    rng = np.random.default_rng(0)
    one = Crystal(atom_types=np.array([14, 8, 8]), frac_coords=rng.random((3, 3)), lattice=np.eye(3) * 4)
    double = Crystal(
        atom_types=np.array([14, 8, 8, 14, 8, 8]), frac_coords=rng.random((6, 3)), lattice=np.eye(3) * 5
    )
    b = batch_of([one, double])
    comp = model.conditions.composition(b.atom_types, b.batch, 2)
    torch.testing.assert_close(comp[0], comp[1])
    emb = model.conditions.composition.embedding.weight
    torch.testing.assert_close(comp[0], (emb[13] + 2 * emb[7]) / 3)


def test_scalers_survive_float32_conversion_in_float64():
    model = tiny_model(dtype=torch.float32)
    assert model.lattice_scaler.mean.dtype == torch.float64
    assert model.conditions.scalers["pressure"].scale.dtype == torch.float64


def test_raw_basis_encodes_pressures_beyond_a_narrow_training_spread():
    """Trained mostly at 0 GPa (mean 2, scale 7 GPa), the paper's standardised basis on [-2, 5] sigma
    has nothing left at 50 GPa (7 sigma); a basis in GPa encodes it like any other pressure."""
    from cond_vae import GaussianBasis, ScalarCondition
    from cond_vae._conditioning import ConditionEncoder

    pressures = torch.tensor([0.0] * 90 + [10.0] * 5 + [25.0] * 3 + [50.0] * 2, dtype=torch.float64)

    def features(spec):
        enc = ConditionEncoder(num_elements=10, composition_dim=2, scalar_conditions=(spec,)).double()
        enc.scalers["pressure"].set_from(_stats(pressures))
        x = torch.tensor([0.0, 25.0, 50.0], dtype=torch.float64)
        basis = enc.bases["pressure"]
        return basis(x if spec.basis == "raw" else enc.standardise("pressure", x))

    standard = features(ScalarCondition("pressure"))
    raw = features(ScalarCondition("pressure", basis="raw", start=0.0, stop=100.0, width=10.0))
    assert float(standard[2].max()) < 1e-6  # 50 GPa vanishes
    assert all(float(row.max()) > 0.9 for row in raw)
    assert not torch.allclose(raw[1], raw[2])
    # a width of several spacings: neighbouring pressures share features (they interpolate)
    narrow = GaussianBasis(start=0.0, stop=100.0, n_basis=80)
    wide = GaussianBasis(start=0.0, stop=100.0, n_basis=80, width=10.0)
    x = torch.tensor([20.0, 30.0], dtype=torch.float64)

    def overlap(basis):  # cosine similarity of the features of 20 and 30 GPa
        f = basis(x)
        return float(torch.nn.functional.cosine_similarity(f[0], f[1], dim=0))

    assert overlap(narrow) < 1e-3 and overlap(wide) > 0.5


def test_scalar_condition_settings_are_checked_and_round_trip():
    from cond_vae import CondCDVAEConfig, ScalarCondition

    with pytest.raises(ValueError, match="basis must be one of"):
        ScalarCondition("pressure", basis="log")
    with pytest.raises(ValueError, match="width must be > 0"):
        ScalarCondition("pressure", width=0.0)
    spec = ScalarCondition("pressure", n_basis=8, basis="raw", start=0.0, stop=100.0, width=12.5)
    config = CondCDVAEConfig.tiny(scalar_conditions=(spec,))
    assert CondCDVAEConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()  # a checkpoint written before the field existed: the paper's basis
    for key in ("basis", "width"):
        del old["scalar_conditions"][0][key]
    assert CondCDVAEConfig.from_dict(old).scalar_conditions[0].basis == "standardised"


def test_query_beyond_a_raw_basis_says_the_model_cannot_tell_values_apart():
    from cond_vae import ScalarCondition
    from cond_vae._conditioning import ConditionEncoder

    spec = ScalarCondition("pressure", n_basis=8, basis="raw", start=0.0, stop=60.0)
    enc = ConditionEncoder(num_elements=10, composition_dim=2, scalar_conditions=(spec,)).double()
    enc.scalers["pressure"].set_from(_stats(torch.tensor([0.0, 50.0], dtype=torch.float64)))
    with pytest.warns(UserWarning):
        notes = enc.check_query("pressure", torch.tensor([40.0, 80.0], dtype=torch.float64))
    assert len(notes) == 1 and "80" in notes[0] and "no longer tell" in notes[0]


def _stats(values):
    from cond_vae import RunningStats

    stats = RunningStats(1)
    stats.update(values.numpy().reshape(-1, 1))
    return stats
