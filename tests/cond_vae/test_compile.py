"""``compile_networks``: the compiled encoder and decoder give the eager results, keep their parameter
names, and train. The CPU half checks the wiring with dynamo's ``eager`` backend (tracing only, seconds);
the CUDA half generates and runs real kernels (inductor / Triton), within float32 rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cond_vae import CondCDVAEConfig, build_graph, compile_networks, sample
from cond_vae.sampling import SamplerConfig
from cond_vae.training import TrainConfig, _loop, read_metrics, train

from tests.cond_vae._helpers import batch_of, random_crystals, tiny_model
from tests.cond_vae.test_training_support import synthetic_crystals

BACKEND = {"cpu": "eager", "cuda": "inductor"}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _outputs(model, batch):
    dec = model.config.decoder
    with torch.no_grad():
        stats = model.encode(batch)
        width = model.config.zgivenc_out_dim
        cond = torch.linspace(-1, 1, batch.num_crystals * width, device=batch.lattice.device)
        cond = cond.reshape(batch.num_crystals, width).to(batch.lattice.dtype)
        g, t = build_graph(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff=dec.cutoff,
                           max_neighbors=dec.max_neighbors)  # fmt: skip
        score = model.score(atom_types=batch.atom_types, batch=batch.batch, graph=g, triplets=t, cond_z=cond)
    return stats.mu, stats.logvar, score


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_networks_match_eager_and_keep_their_names(device):
    torch._dynamo.reset()
    crystals = random_crystals(6, seed=3)
    eager = tiny_model(crystals, dtype=torch.float32).eval().to(device)
    compiled = tiny_model(crystals, dtype=torch.float32).eval().to(device)
    compiled.load_state_dict(eager.state_dict())
    assert compile_networks(compiled, backend=BACKEND[device]) is compiled
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for subset in (crystals, crystals[:4]):  # a second size reuses the dynamic-shape code
        batch = batch_of(subset, dtype=torch.float32).to(device)
        for a, b in zip(_outputs(compiled, batch), _outputs(eager, batch), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_model_samples_like_the_eager_one(device):
    torch._dynamo.reset()
    crystals = random_crystals(8, seed=4)
    eager = tiny_model(crystals, dtype=torch.float32).to(device)
    compiled = compile_networks(tiny_model(crystals, dtype=torch.float32).to(device), backend=BACKEND[device])
    cfg = SamplerConfig(method="ode", levels=5)
    a = sample(eager, ["SiO2", "Fe2O3"], 10.0, num_per_row=2, seed=0, sampler=cfg)
    b = sample(compiled, ["SiO2", "Fe2O3"], 10.0, num_per_row=2, seed=0, sampler=cfg)
    for x, y in zip(a, b, strict=True):
        assert x.valid == y.valid
        if x.valid:
            d = np.asarray(y.crystal.frac_coords) - np.asarray(x.crystal.frac_coords)
            assert np.abs(d - np.round(d)).max() < 1e-4  # periodic: a coordinate may wrap across 0


@pytest.mark.parametrize("device", DEVICES)
def test_training_with_compile_runs_and_resumes(device, tmp_path, monkeypatch):
    torch._dynamo.reset()
    if device == "cpu":  # trace only: inductor's C++ build would take a minute per network
        monkeypatch.setattr(_loop, "compile_networks", lambda m: compile_networks(m, backend="eager"))
    data, val = synthetic_crystals(8, seed=0), synthetic_crystals(4, seed=1, prefix="v")
    cfg = TrainConfig(
        seed=1, device=device, batch_size=4, max_epochs=2, val_every_epochs=1, log_every_steps=1,
        checkpoint_every_steps=100, progress=False, teacher_forcing_max_epoch=0, compile=True,
    )  # fmt: skip
    full = train(cfg.replace(compile=False), CondCDVAEConfig.tiny(), data, val, tmp_path / "eager")
    train(cfg.replace(max_steps=2), CondCDVAEConfig.tiny(), data, val, tmp_path / "cut")
    resumed = train(cfg, None, data, val, tmp_path / "cut", resume_from="auto")
    assert resumed.resumed_from_step == 2 and resumed.steps == full.steps == 4
    a = [float(r["loss"]) for r in read_metrics(tmp_path / "eager" / "metrics.csv") if r["split"] == "train"]
    b = [float(r["loss"]) for r in read_metrics(tmp_path / "cut" / "metrics.csv") if r["split"] == "train"]
    assert len(a) == len(b) == 4
    assert all(math.isclose(x, y, rel_tol=1e-3) for x, y in zip(a, b, strict=True))


def test_sampler_compile_compiles_the_networks_once_and_samples_the_same(monkeypatch):
    from cond_vae import _compile

    torch._dynamo.reset()
    calls = []

    def traced(model):  # dynamo's eager backend: the same kernels, so the same bits
        calls.append(model)
        return compile_networks(model, backend="eager")

    monkeypatch.setattr(_compile, "compile_networks", traced)
    crystals = random_crystals(8, seed=5)
    plain, model = tiny_model(crystals, dtype=torch.float32), tiny_model(crystals, dtype=torch.float32)
    cfg = SamplerConfig(method="ode", levels=3)
    first = sample(model, ["SiO2"], 5.0, num_per_row=2, seed=1, sampler=cfg.replace(compile=True))
    again = sample(model, ["SiO2"], 5.0, num_per_row=2, seed=1, sampler=cfg.replace(compile=True))
    assert len(calls) == 1
    ref = sample(plain, ["SiO2"], 5.0, num_per_row=2, seed=1, sampler=cfg)
    for a, b, c in zip(first, again, ref, strict=True):
        assert np.array_equal(a.crystal.frac_coords, c.crystal.frac_coords)
        assert np.array_equal(b.crystal.frac_coords, c.crystal.frac_coords)
