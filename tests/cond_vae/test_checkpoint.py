"""Checkpoints: safetensors + JSON round trip, schema versioning, clear errors, no pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cond_vae import CondCDVAEConfig, SamplerConfig, sample
from cond_vae.checkpoint import SCHEMA_VERSION, load_checkpoint, read_checkpoint_info, save_checkpoint

from tests.cond_vae._helpers import batch_of, random_crystals, tiny_model

FAST = {"sampler": SamplerConfig(levels=6)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_gives_identical_outputs(tmp_path, dtype):
    crystals = random_crystals(6)
    model = tiny_model(crystals, dtype=dtype)
    save_checkpoint(tmp_path, model, extra={"step": 12, "note": "test"})
    loaded = load_checkpoint(tmp_path)
    assert loaded.config == model.config
    assert next(loaded.parameters()).dtype == dtype
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    b = batch_of(crystals, dtype=dtype)
    torch.manual_seed(5)
    expected = model(b, teacher_forcing=False)
    torch.manual_seed(5)
    got = loaded(b, teacher_forcing=False)
    assert torch.equal(expected.per_crystal_total, got.per_crystal_total)
    s1 = sample(model, ["Si2O4"], [3.0], seed=1, **FAST)[0].crystal
    s2 = sample(loaded, ["Si2O4"], [3.0], seed=1, **FAST)[0].crystal
    assert np.array_equal(s1.frac_coords, s2.frac_coords) and np.array_equal(s1.lattice, s2.lattice)
    info = read_checkpoint_info(tmp_path)
    assert info["extra"] == {"step": 12, "note": "test"}
    assert info["schema_version"] == SCHEMA_VERSION
    assert set(info["versions"]) >= {
        "xtal-graph",
        "score-decoder",
        "cond-vae",
        "xtal-eval",
        "xtal-data",
        "torch",
    }
    assert info["scalers"]["pressure"]["fitted"] is True


def test_files_are_safetensors_and_json_only(tmp_path):
    save_checkpoint(tmp_path, tiny_model())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    header_len = int.from_bytes((tmp_path / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((tmp_path / "model.safetensors").read_bytes()[8 : 8 + header_len])
    assert "lattice_scaler.mean" in header and header["lattice_scaler.mean"]["dtype"] == "F64"


def test_newer_schema_fails_clearly(tmp_path):
    save_checkpoint(tmp_path, tiny_model())
    info = json.loads((tmp_path / "config.json").read_text())
    info["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="newer than this cond-vae"):
        load_checkpoint(tmp_path)


def test_bad_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path / "a", tiny_model())
    (tmp_path / "a" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_checkpoint(tmp_path / "a")
    save_checkpoint(tmp_path / "b", tiny_model())
    info = json.loads((tmp_path / "b" / "config.json").read_text())
    info["config"] = CondCDVAEConfig.tiny(latent_dim=4).to_dict()  # weights no longer fit
    (tmp_path / "b" / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="does not match"):
        load_checkpoint(tmp_path / "b")
    save_checkpoint(tmp_path / "c", tiny_model())
    (tmp_path / "c" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(tmp_path / "c")


def test_unserialisable_extra_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, tiny_model(), extra={"bad": object()})
    assert list(tmp_path.iterdir()) == []
