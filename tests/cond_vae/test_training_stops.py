"""Stopping early and starting warm: ``max_minutes``, SIGINT/SIGTERM, ``init_from``.

Each early stop writes a step checkpoint from which the run resumes exactly; a warm start begins from a
model checkpoint's weights (scalers and decoder scale factors included) with a fresh optimiser.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import torch
from cond_vae import CondCDVAEConfig
from cond_vae.checkpoint import load_checkpoint
from cond_vae.training import TrainConfig, read_training_meta, train

from tests.cond_vae.test_training_support import loss_rows, synthetic_crystals, weights

TRAIN = synthetic_crystals(10, seed=0)
VAL = synthetic_crystals(4, seed=1, prefix="v")
CONFIG = TrainConfig(
    seed=3, device="cpu", batch_size=3, max_epochs=2, val_every_epochs=1, teacher_forcing_max_epoch=0,
    log_every_steps=2, checkpoint_every_steps=100, keep_checkpoints=1, progress=False,
)  # fmt: skip


def test_max_minutes_stops_with_a_checkpoint_that_resumes_to_the_uninterrupted_run(tmp_path):
    full = train(CONFIG, CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path / "full")
    assert full.stopped_by == "max_epochs" and full.resumed_from_step is None
    cut = train(CONFIG.replace(max_minutes=1e-9), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path / "cut")
    assert cut.stopped_by == "max_minutes" and cut.steps == 1  # the step in flight completes
    assert read_training_meta(cut.final_checkpoint)["loop"]["step"] == 1
    resumed = train(CONFIG, None, TRAIN, VAL, tmp_path / "cut", resume_from="auto")
    assert resumed.resumed_from_step == 1 and resumed.steps == full.steps
    assert loss_rows(tmp_path / "cut") == loss_rows(tmp_path / "full")
    a, b = weights(full.final_checkpoint), weights(resumed.final_checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_starts_from_the_weights_with_a_fresh_optimiser(tmp_path):
    first = train(CONFIG.replace(max_steps=3), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path / "a")
    source = first.final_checkpoint
    warm = CONFIG.replace(max_steps=1, init_from=str(source), seed=5)
    # a warm start must not refit the scalers or scale factors: with a negligible learning rate the
    # weights after one step equal the source's
    zero = train(warm.replace(lr=1e-30), None, TRAIN, VAL, tmp_path / "b")
    assert zero.resumed_from_step is None
    before, after = weights(source), weights(zero.final_checkpoint)
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], rtol=0, atol=1e-20) for k in before)
    trained = train(warm, None, TRAIN, VAL, tmp_path / "c")
    moved = weights(trained.final_checkpoint)
    assert any(not torch.equal(before[k], moved[k]) for k in before)
    assert read_training_meta(trained.final_checkpoint)["train_config"]["init_from"] == str(source)
    assert load_checkpoint(trained.final_checkpoint).config == CondCDVAEConfig.tiny()


def test_init_scalers_refits_the_conditions_on_the_new_data_and_keeps_the_lattice(tmp_path):
    """A warm start onto data with new pressures: ``init_scalers = "conditions"`` standardises the pressure
    on the new training data (its range is what the model is then trained on), the lattice scaler and
    every weight stay the source's."""
    import dataclasses

    first = train(CONFIG.replace(max_steps=1), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path / "a")
    source = load_checkpoint(first.final_checkpoint)
    high = [
        dataclasses.replace(c, properties={**c.properties, "pressure": 40.0 + i}) for i, c in enumerate(TRAIN)
    ]
    warm = CONFIG.replace(max_steps=1, init_from=str(first.final_checkpoint), lr=1e-30)
    kept = load_checkpoint(train(warm, None, high, VAL, tmp_path / "keep").final_checkpoint)
    refit = load_checkpoint(
        train(warm.replace(init_scalers="conditions"), None, high, VAL, tmp_path / "r").final_checkpoint
    )
    old, new = source.conditions.scalers["pressure"], refit.conditions.scalers["pressure"]
    assert torch.equal(kept.conditions.scalers["pressure"].mean, old.mean)  # "keep": as saved
    assert float(new.lo) == 40.0 and float(new.hi) == 49.0 and float(new.mean) == 44.5
    assert torch.equal(refit.lattice_scaler.mean, source.lattice_scaler.mean)
    assert refit.trained_on["conditions"]["pressure"] == [40.0, 49.0]


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from cond_vae import CondCDVAEConfig
    from cond_vae.training import TrainConfig, train
    from cond_vae.training import _step
    from tests.cond_vae.test_training_support import synthetic_crystals

    real = _step.train_step
    def slow(**kw):  # give the test time to deliver the signal mid-run
        print("step", flush=True)
        time.sleep(0.3)
        return real(**kw)
    import cond_vae.training._loop as loop
    loop.train_step = slow
    cfg = TrainConfig(seed=0, device="cpu", batch_size=2, max_epochs=1000, progress=False,
                      checkpoint_every_steps=10_000)
    r = train(cfg, CondCDVAEConfig.tiny(), synthetic_crystals(6, seed=0), None, sys.argv[1])
    print("stopped", r.stopped_by, r.steps, flush=True)
    """
)


def test_sigint_finishes_the_step_writes_a_checkpoint_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(3):  # a few real steps first
        assert proc.stdout.readline().strip() == "step"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    last = out.strip().splitlines()[-1].split()
    assert last[:2] == ["stopped", "SIGINT"]
    steps = int(last[2])
    assert steps >= 3
    assert "SIGINT: finishing this step and writing a checkpoint" in err
    meta = read_training_meta(tmp_path / "checkpoints" / f"step_{steps:08d}")
    assert meta["loop"]["step"] == steps


def test_init_from_may_move_the_condition_basis_and_nothing_else(tmp_path):
    """A warm start onto a pressure basis in GPa (``basis = "raw"``): every weight loads as saved, the
    basis centres are the new config's; any other change of the model config is refused."""
    import dataclasses

    import pytest
    from cond_vae import ScalarCondition

    first = train(CONFIG.replace(max_steps=1), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path / "a")
    raw = CondCDVAEConfig.tiny(
        scalar_conditions=(
            ScalarCondition("pressure", n_basis=8, basis="raw", start=0.0, stop=70.0, width=20.0),
        )
    )
    warm = CONFIG.replace(max_steps=1, init_from=str(first.final_checkpoint), lr=1e-30)
    moved = train(warm, raw, TRAIN, VAL, tmp_path / "raw")
    model = load_checkpoint(moved.final_checkpoint)
    assert model.config == raw
    centers = model.conditions.bases["pressure"].centers
    assert torch.allclose(centers, torch.linspace(0, 70, 8, dtype=centers.dtype))
    assert model.conditions.bases["pressure"].width == 20.0
    before, after = weights(first.final_checkpoint), weights(moved.final_checkpoint)
    assert all(torch.allclose(before[k], after[k], rtol=0, atol=1e-20) for k in before if "bases" not in k)
    wider = dataclasses.replace(raw, latent_dim=raw.latent_dim + 1)
    with pytest.raises(ValueError, match="more than the conditions' Gaussian bases"):
        train(warm, wider, TRAIN, VAL, tmp_path / "no")
