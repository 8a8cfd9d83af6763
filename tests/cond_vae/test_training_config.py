"""TrainConfig / run-config files: TOML round trips, presets with overrides, clear errors."""

from __future__ import annotations

import pytest
from cond_vae import CondCDVAEConfig
from cond_vae.training import RunConfig, TrainConfig, load_run_config
from cond_vae.training._data import epoch_order, micro_batches, step_batches
from hypothesis import given
from hypothesis import strategies as st


def test_defaults_follow_the_reference_recipe():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_min_lr) == (1e-4, 0.6, 30, 1e-5)
    assert (cfg.grad_clip, cfg.grad_clip_mode, cfg.val_every_epochs, cfg.batch_size) == (0.5, "value", 5, 128)
    assert cfg.teacher_forcing_max_epoch == 60


@given(
    seed=st.integers(0, 2**31),
    lr=st.floats(1e-6, 1.0),
    grad_clip=st.floats(0.01, 10.0),
    grad_clip_mode=st.sampled_from(["value", "norm", "none"]),
    max_steps=st.none() | st.integers(1, 10**6),
    on_nonfinite=st.sampled_from(["raise", "skip"]),
)
def test_train_config_toml_round_trip(
    tmp_path_factory, seed, lr, grad_clip, grad_clip_mode, max_steps, on_nonfinite
):
    cfg = TrainConfig(seed=seed, lr=lr, grad_clip=grad_clip, grad_clip_mode=grad_clip_mode,
                      max_steps=max_steps, on_nonfinite=on_nonfinite)  # fmt: skip
    path = tmp_path_factory.mktemp("cfg") / "train.toml"
    cfg.to_toml(path)
    assert TrainConfig.from_toml(path) == cfg


@pytest.mark.parametrize("preset", ["tiny", "cond_cdvae_4m", "cond_cdvae_86m"])
def test_run_config_round_trip_for_every_preset(tmp_path, preset):
    model = {"tiny": CondCDVAEConfig.tiny, "cond_cdvae_4m": CondCDVAEConfig.cond_cdvae_4m,
             "cond_cdvae_86m": CondCDVAEConfig.cond_cdvae_86m}[preset]()  # fmt: skip
    run = RunConfig(train=TrainConfig(batch_size=7), model=model, model_preset=preset)
    run.to_toml(tmp_path / "run.toml")
    assert load_run_config(tmp_path / "run.toml") == run


def test_model_overrides_apply_on_top_of_the_preset(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\npreset = "tiny"\nlatent_dim = 12\n[model.encoder]\nnum_blocks = 2\n')
    model = load_run_config(path).model
    assert model.latent_dim == 12 and model.encoder.num_blocks == 2
    assert model.decoder == CondCDVAEConfig.tiny().decoder


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nbatch_sise = 3\n", "batch_sise"),
        ("[train]\nbatch_size = 0\n", "batch_size must be >= 1"),
        ('[train]\non_nonfinite = "ignore"\n', "on_nonfinite"),
        ('[model]\npreset = "huge"\n', "preset 'huge' is unknown"),
        ("[model]\nlatent_dimm = 3\n", "latent_dimm"),
        ("[trian]\n", "unknown table"),
        ("[train\n", "invalid TOML"),
    ],
)
def test_bad_config_files_fail_naming_the_culprit(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_run_config(path)
    assert str(path) in str(err.value)


@given(n=st.integers(1, 40), world=st.integers(1, 4), batch=st.integers(1, 6), seed=st.integers(0, 99))
def test_sharded_batches_cover_the_global_batch_of_one_process(n, world, batch, seed):
    """Process r's micro-batch m of step k == one process's micro-batch m*W+r of step k (same crystals)."""
    accumulate = 2
    single = step_batches(epoch_order(n, seed=seed, epoch=3, rank=0, world_size=1, shuffle=True),
                          batch_size=world * batch, drop_last=False)  # fmt: skip
    per_rank = [
        step_batches(
            epoch_order(n, seed=seed, epoch=3, rank=r, world_size=world, shuffle=True),
            batch_size=batch,
            drop_last=False,
        )  # fmt: skip
        for r in range(world)
    ]
    if n % world:  # DistributedSampler pads by repetition; the equivalence holds for divisible sizes
        return
    for k, global_batch in enumerate(single):
        parts = micro_batches(global_batch, world * accumulate)
        for r in range(world):
            for m, micro in enumerate(micro_batches(per_rank[r][k], accumulate)):
                assert micro == parts[m * world + r]
