"""examples/custom_denoiser.py and examples/equivariant_head.py, run in this process on short settings."""

from __future__ import annotations

import pytest

from tests.examples._helpers import load_example

torch = pytest.importorskip("torch")  # the torch-free CI venv collects this folder too


@pytest.fixture(autouse=True)
def _one_thread():
    """The examples are tiny: one thread is fastest on a shared machine (restored afterwards)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_custom_denoiser_learns_and_samples_valid_crystals(monkeypatch, tmp_path, capsys):
    example = load_example("custom_denoiser", monkeypatch)
    result = example.main(["--steps", "30", "--steps-per-level", "1", "--out", str(tmp_path)])
    # the denoising loss on the same fixed noise drops clearly after 30 Adam steps (2.54 -> 0.96)
    assert result["loss_after"] < 0.6 * result["loss_before"]
    samples = result["samples"]
    truth = example.CrystalDataset(example.make_store(str(tmp_path / "again.zarr")), properties=())
    assert sorted(samples.ids) == sorted(truth.ids)
    assert torch.isfinite(samples.frac_coords).all()
    assert (samples.frac_coords >= 0).all() and (samples.frac_coords < 1).all()
    assert sorted(p.name for p in tmp_path.glob("*.cif")) == sorted(f"{i}.cif" for i in truth.ids)
    assert 0 <= result["matches"] <= 6
    assert "samples match" in capsys.readouterr().out


def test_denoiser_target_is_the_exact_displacement_back(monkeypatch):
    example = load_example("custom_denoiser", monkeypatch)
    batch = example.CrystalBatch.from_pymatgen([s for _, s in example.prototypes()], dtype=torch.float64)
    sigma = torch.full((batch.num_crystals,), 0.3, dtype=torch.float64)
    frac, target = example.noisy_positions(batch, sigma, torch.Generator().manual_seed(0))
    back = example.wrap_frac(frac + example.cart_to_frac(target * 0.3, batch.lattice, batch=batch.batch))
    diff = (back - batch.frac_coords + 0.5) % 1 - 0.5
    assert diff.abs().max() < 1e-9
    assert abs(float(target.pow(2).mean()) - 1.0) < 0.5


def test_equivariant_head_passes_and_broken_head_fails(monkeypatch, capsys):
    example = load_example("equivariant_head", monkeypatch)
    result = example.main(["--steps", "40"])
    assert set(name for name, _ in result["errors"]) == {
        "rotation", "reflection", "translation", "permutation", "image_shift", "basis_change", "supercell"
    }  # fmt: skip
    assert max(result["errors"].values()) < 1e-8
    message = result["broken_message"]
    assert message is not None and "not equivariant" in message
    assert "rotation" in message and "reflection" in message
    assert result["mse"] < result["baseline"]  # 40 steps beat predicting no displacement
    assert "fails as it should" in capsys.readouterr().out
