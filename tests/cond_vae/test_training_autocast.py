"""bfloat16 autocast in training (``TrainConfig.bf16_autocast``): configuration, hardware resolution,
and a forward pass that stays close to float32 because the geometry is not autocast."""

from __future__ import annotations

import math

import pytest
import torch
from cond_vae import CondCDVAE, CondCDVAEConfig
from cond_vae.training import TrainConfig, _autocast, read_metrics, train
from xtal_graph import collate

from tests.cond_vae.test_training_support import synthetic_crystals
from tests.conftest import DEVICES


def test_config_takes_true_false_or_auto_and_names_anything_else():
    for value in (True, False, "auto"):
        cfg = TrainConfig(bf16_autocast=value)
        assert TrainConfig.from_dict(cfg.to_dict()).bf16_autocast == value
    with pytest.raises(ValueError, match="bf16_autocast.*'yes'"):
        TrainConfig(bf16_autocast="yes")


def test_auto_follows_the_hardware(monkeypatch):
    cpu = torch.device("cpu")
    assert _autocast.use_bf16_autocast(True, cpu) and not _autocast.use_bf16_autocast(False, cpu)
    monkeypatch.setattr(_autocast, "_cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "amx_tile"}))
    assert _autocast.use_bf16_autocast("auto", cpu)
    monkeypatch.setattr(_autocast, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not _autocast.use_bf16_autocast("auto", cpu)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_bf16_forward_stays_close_to_float32(device, teacher_forcing):
    torch.manual_seed(0)
    model = CondCDVAE(CondCDVAEConfig.tiny()).to(device)
    crystals = synthetic_crystals(8, seed=4)
    model.fit_scalers(crystals)
    batch = collate(crystals).to(device=device, dtype=torch.float32)
    outs = []
    for autocast in (False, True):
        torch.manual_seed(1)  # the same latent sample, noise levels and noise
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
            outs.append(model(batch, teacher_forcing=teacher_forcing))
    fp32, bf16 = outs
    for part in ("total", "lattice", "coord", "kl"):
        a, b = float(getattr(fp32, part).detach()), float(getattr(bf16, part).detach())
        assert math.isfinite(b) and abs(a - b) <= 0.05 * abs(a) + 1e-3, (part, a, b)
    assert torch.equal(fp32.noise_level, bf16.noise_level)


def test_train_with_bf16_autocast_on_cpu(tmp_path, capsys):
    cfg = TrainConfig(
        seed=3, device="cpu", batch_size=4, max_epochs=2, val_every_epochs=1, bf16_autocast=True,
        teacher_forcing_max_epoch=0, log_every_steps=1, plateau_patience=0, progress=False,
    )  # fmt: skip
    result = train(
        cfg, CondCDVAEConfig.tiny(), synthetic_crystals(8, seed=0), synthetic_crystals(4, seed=1), tmp_path
    )
    rows = read_metrics(result.out_dir / "metrics.csv")
    assert result.steps == 4 and [r["split"] for r in rows].count("val") == 2
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert "precision: bf16 autocast" in capsys.readouterr().err
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
