"""The training loop on the real tiny model: outputs, exact resume, non-finite losses."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from cond_vae import CondCDVAE, CondCDVAEConfig
from cond_vae.checkpoint import load_checkpoint
from cond_vae.training import (
    NonFiniteLossError,
    TrainConfig,
    load_run_config,
    read_metrics,
    read_training_meta,
    train,
)
from cond_vae.training._cells import with_cells
from cond_vae.training._data import scaler_items
from xtal_graph import collate

from tests.cond_vae.test_training_support import loss_rows, synthetic_crystals, weights

TRAIN = synthetic_crystals(10, seed=0)
VAL = synthetic_crystals(4, seed=1, prefix="v")
CONFIG = TrainConfig(
    seed=3,
    device="cpu",
    batch_size=3,  # 4 steps per epoch, the last one with a single crystal
    accumulate=2,
    max_epochs=3,
    val_every_epochs=1,
    teacher_forcing_max_epoch=0,
    log_every_steps=3,  # log rows straddle epochs and checkpoints
    checkpoint_every_steps=5,
    keep_checkpoints=1,
    plateau_patience=0,
    progress=False,
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return train(CONFIG, CondCDVAEConfig.tiny(), TRAIN, VAL, out)


def test_run_writes_config_metrics_and_checkpoints(uninterrupted):
    result = uninterrupted
    assert result.steps == 12 and result.epochs_completed == 3
    rows = read_metrics(result.out_dir / "metrics.csv")
    assert [r["split"] for r in rows].count("val") == 3
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [3, 6, 9, 12]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    val = result.last_val
    assert val is not None and val.num_crystals == len(VAL)
    assert 0 < val.length_mae < 10 and 0 < val.angle_mae < 90
    resolved = load_run_config(result.out_dir / "config.toml")
    assert resolved.train == CONFIG and resolved.model == CondCDVAEConfig.tiny()
    assert "cond-vae 0.1.0" in (result.out_dir / "config.toml").read_text()
    # only the newest step checkpoint is kept; it resumes and loads as a model
    assert [p.name for p in (result.out_dir / "checkpoints").iterdir()] == ["step_00000012"]
    assert read_training_meta(result.final_checkpoint)["loop"]["step"] == 12
    model = load_checkpoint(result.final_checkpoint)
    assert isinstance(model, CondCDVAE) and model.config == CondCDVAEConfig.tiny()
    assert bool(model.decoder.scale_factors_fitted)  # fitted before the first step, kept in the weights
    assert result.best_checkpoint is not None and result.best_val_loss == min(
        float(r["loss"]) for r in rows if r["split"] == "val"
    )


@pytest.mark.parametrize("stop_at", [5, 8])  # mid-epoch and mid-log-interval; exactly at an epoch end
def test_resume_equals_uninterrupted_bit_for_bit(uninterrupted, tmp_path, stop_at):
    first = train(CONFIG.replace(max_steps=stop_at), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path)
    assert first.steps == stop_at
    resumed = train(CONFIG, None, TRAIN, VAL, tmp_path, resume_from="auto")
    assert resumed.steps == uninterrupted.steps
    assert loss_rows(tmp_path) == loss_rows(uninterrupted.out_dir)  # every logged loss, exactly
    full, again = weights(uninterrupted.final_checkpoint), weights(resumed.final_checkpoint)
    assert full.keys() == again.keys()
    for name, value in full.items():
        assert torch.equal(value, again[name]), name
    assert resumed.last_val == dataclasses.replace(uninterrupted.last_val)


def test_resume_auto_without_checkpoint_starts_fresh_and_model_only_checkpoint_is_refused(tmp_path):
    config = CONFIG.replace(max_steps=2)
    result = train(config, CondCDVAEConfig.tiny(), TRAIN, None, tmp_path / "run", resume_from="auto")
    assert result.steps == 2 and result.last_val is None
    with pytest.raises(FileExistsError, match="already holds checkpoints of another run"):
        train(config, CondCDVAEConfig.tiny(), TRAIN, None, tmp_path / "run")  # would mix two runs
    with pytest.raises(FileNotFoundError, match="not a resumable training checkpoint"):
        train(config, None, TRAIN, None, tmp_path / "other", resume_from=tmp_path / "missing")
    with pytest.raises(ValueError, match="model_config is required"):
        train(config, None, TRAIN, None, tmp_path / "third")
    with pytest.raises(ValueError, match="training data holds no crystals"):
        train(config, CondCDVAEConfig.tiny(), [], None, tmp_path / "fourth")


def _poison(monkeypatch, bad_ids: set[str]):
    """Make the loss of the named crystals NaN (as a diverging model or a broken record would)."""
    original = CondCDVAE.forward

    def forward(self, batch, *, teacher_forcing, **options):
        out = original(self, batch, teacher_forcing=teacher_forcing, **options)
        mask = torch.tensor([i in bad_ids for i in batch.ids])
        if not mask.any():
            return out
        per_crystal = torch.where(mask, torch.nan, out.per_crystal_total)
        return dataclasses.replace(out, per_crystal_total=per_crystal, total=per_crystal.mean())

    monkeypatch.setattr(CondCDVAE, "forward", forward)


def test_nonfinite_loss_raises_with_the_crystal_ids(monkeypatch, tmp_path):
    _poison(monkeypatch, {"x4"})
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at step \d+ \(epoch 0\); crystals: \['x4'\]"
    ) as err:
        train(CONFIG, CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path)
    assert err.value.ids == ("x4",) and err.value.epoch == 0
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").glob("step_*"))


def test_nonfinite_batches_are_skipped_counted_and_never_trained_on(monkeypatch, tmp_path):
    torch.manual_seed(CONFIG.seed)
    _poison(monkeypatch, {c.id for c in TRAIN})  # every training batch is poisoned
    config = CONFIG.replace(on_nonfinite="skip", max_epochs=1)
    with pytest.warns(UserWarning, match="skipped batch"):
        result = train(config, CondCDVAEConfig.tiny(), TRAIN, None, tmp_path)
    assert [s.step for s in result.skipped] == [0, 1, 2, 3]
    assert sorted(i for s in result.skipped for i in s.ids) == sorted(c.id for c in TRAIN)
    rows = read_metrics(tmp_path / "metrics.csv")
    assert rows[-1]["step"] == "3" and rows[-1]["skipped"] == "3" and rows[-1]["loss"] == "nan"
    # No update happened: the weights are the freshly initialised ones (same seed, same scalers, fitted
    # as train() fits them: on the crystals in their reduced cells, streamed in batches).
    torch.manual_seed(CONFIG.seed)
    fresh = CondCDVAE(CondCDVAEConfig.tiny())
    shown = with_cells(TRAIN, config.cells)
    fresh.fit_scalers(scaler_items(shown))
    head = collate([shown[i] for i in range(min(128, len(shown)))])
    fresh.fit_decoder_scale_factors(head, seed=config.seed)
    final = weights(result.final_checkpoint)
    for name, value in fresh.state_dict().items():
        assert torch.equal(final[name], value), name
    with pytest.raises(NonFiniteLossError, match="max_nonfinite_skips = 1"), pytest.warns(UserWarning):
        train(config.replace(max_nonfinite_skips=1), CondCDVAEConfig.tiny(), TRAIN, None, tmp_path / "b")


def test_loader_worker_processes_give_the_same_run(uninterrupted, tmp_path):
    result = train(CONFIG.replace(num_workers=1, max_steps=4), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path)
    assert result.steps == 4
    assert loss_rows(tmp_path)[0] == loss_rows(uninterrupted.out_dir)[0]  # step-3 row, bit for bit


def test_nonfinite_validation_loss_raises_with_the_crystal_ids(monkeypatch, tmp_path):
    _poison(monkeypatch, {"v2"})
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite validation loss at step 4; crystals: \[\('v2',\)\]"
    ):
        train(CONFIG.replace(max_epochs=1), CondCDVAEConfig.tiny(), TRAIN, VAL, tmp_path)


@pytest.mark.parametrize("mode", ["value", "norm"])
def test_gradient_clipping_bounds_the_update(mode):
    from cond_vae.distributed import DistContext
    from cond_vae.training._step import train_step
    from xtal_graph import collate

    torch.manual_seed(0)
    model = CondCDVAE(CondCDVAEConfig.tiny())
    model.fit_scalers(TRAIN)
    params = list(model.parameters())
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), owns_group=False)
    stats = train_step(
        net=model, params=params, micro=[collate(TRAIN)], seed=0, step=0, ctx=ctx, teacher_forcing=True,
        autocast=False, grad_clip=1e-3, grad_clip_mode=mode,
    )  # fmt: skip
    assert stats.grad_norm > 1e-2  # the raw gradient is far above the limit, so clipping did something
    grads = [p.grad for p in params]
    if mode == "value":
        limit = float(torch.tensor(1e-3, dtype=torch.float32))  # the clip value in float32
        assert max(float(g.abs().max()) for g in grads) == limit
    else:
        assert float(torch.nn.utils.get_total_norm(grads)) == pytest.approx(1e-3, rel=1e-4)
