"""Table II reconstruction benchmark: metrics agree with the per-crystal rows; a perfect decoder scores 1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cond_vae import SamplerConfig
from xtal_graph import lattice_from_params
from xtal_tools.evaluation.recon import reconstruct_split
from xtal_tools.evaluation.split_eval import EvalSettings

from tests.cond_vae._helpers import tiny_model


def make_store(path: str) -> str:
    """Eight rock-salt-like NaCl cells at 0 or 10 GPa, split 50/25/25 (test part: 2 crystals)."""
    from xtal_data import CrystalRecord, CrystalStore
    from xtal_data.splits import split_random

    rng = np.random.default_rng(0)
    records = []
    for i in range(8):
        a = 4.0 + 0.5 * rng.random()
        lattice = lattice_from_params(np.array([a, a, a]), np.array([60.0, 60.0, 60.0])).numpy()
        records.append(
            CrystalRecord(
                id=f"rs-{i}",
                atomic_numbers=np.array([11, 17]),
                frac_coords=np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
                lattice=lattice,
                pressure=float(rng.choice([0.0, 10.0])),
            ).validate()
        )
    store = CrystalStore.create(path)
    store.append(records)
    split_random(store, seed=0, fractions=(0.5, 0.25, 0.25))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from xtal_data.torch_dataset import CrystalDataset

    store = make_store(str(tmp_path_factory.mktemp("data") / "tiny.zarr"))
    return CrystalDataset(store, split="random", part="train")  # 4 crystals


SETTINGS = EvalSettings(seed=1, sampler=SamplerConfig(levels=3), presets=("cdvae", "paper"))


def test_metrics_match_the_rows_and_speed_is_reported(dataset, tmp_path):
    results, rows = reconstruct_split(tiny_model(dtype=torch.float32), dataset, SETTINGS, tmp_path)
    assert results["n"] == len(rows) == 4
    for preset in ("cdvae", "paper"):
        m = results["metrics"][f"{preset}/none"]
        matched = [r for r in rows if r[f"{preset}_matched"]]
        assert m["n_matched"] == len(matched) and m["match_rate"] == len(matched) / 4
        if matched:
            assert m["n_rmsd"] == pytest.approx(np.mean([r[f"{preset}_rms"] for r in matched]))
        else:
            assert m["n_rmsd"] is None
    assert results["seconds"]["total"] >= results["seconds"]["model"] > 0
    assert results["reconstructions_per_s_model"] == pytest.approx(4 / results["seconds"]["model"])
    assert (tmp_path / "pred.extxyz").is_file() and (tmp_path / "gt.extxyz").is_file()


def test_a_perfect_decoder_matches_everything_with_zero_rmsd(dataset, tmp_path, monkeypatch):
    import cond_vae

    by_id = {dataset.ids[i]: dataset.crystal(i) for i in range(len(dataset))}

    def perfect(model, batch, **kwargs):
        return [by_id[i] for i in batch.ids]

    monkeypatch.setattr(cond_vae, "reconstruct", perfect)
    results, _ = reconstruct_split(tiny_model(dtype=torch.float32), dataset, SETTINGS, tmp_path)
    for key in ("cdvae/none", "paper/none"):
        assert results["metrics"][key]["match_rate"] == 1.0
        assert math.isclose(results["metrics"][key]["n_rmsd"], 0.0, abs_tol=1e-6)
