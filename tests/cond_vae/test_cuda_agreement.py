"""CUDA variants of cond-vae's device-dependent parts: the same seeded model and batch give the same
outputs on CPU and GPU within a stated tolerance, and training steps and a resume run on the GPU.

Tolerances: float64 1e-9 (GPU scatter sums change the order of additions), float32 1e-4 relative.
Skipped cleanly without a GPU (the CPU halves are the rest of this package's tests)."""

from __future__ import annotations

import math

import pytest
import torch
from cond_vae import CondCDVAEConfig, build_graph
from cond_vae.training import TrainConfig, read_metrics, train

from tests.cond_vae._helpers import batch_of, random_crystals, tiny_model
from tests.cond_vae.test_training_support import synthetic_crystals

pytestmark = pytest.mark.cuda

TOL = {torch.float64: 1e-9, torch.float32: 1e-4}


def _pair(dtype):
    crystals = random_crystals(6, seed=3)
    cpu = tiny_model(crystals, dtype=dtype).eval()
    gpu = tiny_model(crystals, dtype=dtype).eval().cuda()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu, batch_of(crystals, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conditioning_encoder_and_lattice_head_agree_on_cpu_and_cuda(dtype):
    cpu, gpu, batch = _pair(dtype)
    with torch.no_grad():
        c_cpu, c_gpu = cpu.condition_vector(batch), gpu.condition_vector(batch.to("cuda"))
        torch.testing.assert_close(c_gpu.cpu(), c_cpu, rtol=TOL[dtype], atol=TOL[dtype])
        s_cpu, s_gpu = cpu.encode(batch, c_cpu), gpu.encode(batch.to("cuda"), c_gpu)
        torch.testing.assert_close(s_gpu.mu.cpu(), s_cpu.mu, rtol=TOL[dtype], atol=TOL[dtype])
        torch.testing.assert_close(s_gpu.logvar.cpu(), s_cpu.logvar, rtol=TOL[dtype], atol=TOL[dtype])
        z_cpu = cpu.cond_z(s_cpu.mu, c_cpu)
        z_gpu = gpu.cond_z(s_cpu.mu.cuda(), c_cpu.cuda())
        p_cpu, l_cpu = cpu.predict_lattice(z_cpu, batch.num_atoms)
        p_gpu, l_gpu = gpu.predict_lattice(z_gpu, batch.num_atoms.cuda())
        torch.testing.assert_close(l_gpu.cpu(), l_cpu, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decoder_score_agrees_on_cpu_and_cuda(dtype):
    cpu, gpu, batch = _pair(dtype)
    dec = cpu.config.decoder
    cond = torch.randn(batch.num_crystals, cpu.config.zgivenc_out_dim, dtype=dtype)
    with torch.no_grad():
        g, t = build_graph(batch.frac_coords, batch.lattice, batch.num_atoms, cutoff=dec.cutoff,
                           max_neighbors=dec.max_neighbors)  # fmt: skip
        s_cpu = cpu.score(atom_types=batch.atom_types, batch=batch.batch, graph=g, triplets=t, cond_z=cond)
        b = batch.to("cuda")
        g, t = build_graph(
            b.frac_coords, b.lattice, b.num_atoms, cutoff=dec.cutoff, max_neighbors=dec.max_neighbors
        )
        s_gpu = gpu.score(atom_types=b.atom_types, batch=b.batch, graph=g, triplets=t, cond_z=cond.cuda())
    torch.testing.assert_close(s_gpu.cpu(), s_cpu, rtol=TOL[dtype], atol=TOL[dtype])


def test_losses_are_finite_and_backward_reaches_every_parameter_on_cuda():
    crystals = random_crystals(6, seed=3)
    model = tiny_model(crystals, dtype=torch.float32).cuda().train()
    out = model(batch_of(crystals, dtype=torch.float32).to("cuda"), teacher_forcing=False)
    out.total.backward()
    assert all(math.isfinite(float(x)) for x in (out.total, out.lattice, out.coord, out.kl))
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_training_steps_and_a_resume_on_cuda(tmp_path):
    data, val = synthetic_crystals(8, seed=0), synthetic_crystals(4, seed=1, prefix="v")
    cfg = TrainConfig(
        seed=1, device="cuda", batch_size=4, max_epochs=2, val_every_epochs=1, log_every_steps=1,
        checkpoint_every_steps=100, progress=False, teacher_forcing_max_epoch=0,
    )  # fmt: skip
    full = train(cfg, CondCDVAEConfig.tiny(), data, val, tmp_path / "full")
    train(cfg.replace(max_steps=2), CondCDVAEConfig.tiny(), data, val, tmp_path / "cut")
    resumed = train(cfg, None, data, val, tmp_path / "cut", resume_from="auto")
    assert resumed.resumed_from_step == 2 and resumed.steps == full.steps == 4
    a = [float(r["loss"]) for r in read_metrics(tmp_path / "full" / "metrics.csv") if r["split"] == "train"]
    b = [float(r["loss"]) for r in read_metrics(tmp_path / "cut" / "metrics.csv") if r["split"] == "train"]
    assert len(a) == len(b) == 4 and all(math.isfinite(x) for x in a)
    # GPU atomics reorder sums: a resumed run follows the uninterrupted one closely, not bit for bit
    assert all(math.isclose(x, y, rel_tol=1e-3) for x, y in zip(a, b, strict=True))
