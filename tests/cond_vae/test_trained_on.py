"""What a model was trained on travels with its checkpoints, and requests outside it are flagged."""

from __future__ import annotations

import pytest
from cond_vae import CondCDVAEConfig, fit_volume_prior
from cond_vae.checkpoint import load_checkpoint, read_checkpoint_info
from cond_vae.sampling import make_requests
from cond_vae.training import TrainConfig, train

from tests.cond_vae.test_training_support import synthetic_crystals

TRAIN = synthetic_crystals(6, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = TrainConfig(seed=0, device="cpu", batch_size=3, max_steps=1, progress=False)
    return train(cfg, CondCDVAEConfig.tiny(), TRAIN, None, tmp_path_factory.mktemp("run"))


def test_checkpoints_record_elements_condition_ranges_and_sizes(trained):
    info = read_checkpoint_info(trained.final_checkpoint)["trained_on"]
    elements = sorted({int(z) for c in TRAIN for z in c.atom_types})
    pressures = [c.properties["pressure"] for c in TRAIN]
    assert info["elements"] == elements
    assert info["conditions"]["pressure"] == pytest.approx([min(pressures), max(pressures)])
    assert info["max_atoms"] == max(len(c.atom_types) for c in TRAIN) and info["num_crystals"] == 6
    assert load_checkpoint(trained.final_checkpoint).trained_on == info


def test_checkpoints_carry_a_volume_prior_fitted_on_the_training_crystals(trained):
    prior = load_checkpoint(trained.final_checkpoint).volume_prior
    ref = fit_volume_prior(TRAIN)  # volumes do not depend on the cell the crystals are shown in
    assert prior.num_crystals == 6 and prior.element_terms.keys() == ref.element_terms.keys()
    assert prior.intercept == pytest.approx(ref.intercept, abs=1e-9)
    assert list(prior.element_terms.values()) == pytest.approx(list(ref.element_terms.values()), abs=1e-9)
    assert read_checkpoint_info(trained.final_checkpoint)["volume_prior"] == prior.to_dict()


def test_an_element_never_seen_in_training_is_flagged_in_plain_words(trained):
    model = load_checkpoint(trained.final_checkpoint)
    z = next(z for z in range(1, 90) if z not in model.trained_on["elements"])
    from pymatgen.core import Element

    symbol = Element.from_Z(z).symbol
    p = model.trained_on["conditions"]["pressure"][0]
    with pytest.warns(UserWarning, match=f"{symbol} never occurred in this model's training data"):
        make_requests(model, [f"{symbol}2"], [p])
    model.trained_on = None  # unknown coverage: nothing to say
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        make_requests(model, [f"{symbol}2"], [p])
