"""Broken checkpoints (issue 17): a truncated weights file or a config.json that does not fit the weights
is a ValueError naming the file and the problem, and ``tools/sample`` exits 1 without a traceback."""

from __future__ import annotations

import json

import pytest
import torch
from cond_vae import CondCDVAEConfig
from cond_vae.checkpoint import load_checkpoint, save_checkpoint

from tests.cond_vae._helpers import tiny_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


def _copy(saved, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    for name in ("model.safetensors", "config.json"):
        (out / name).write_bytes((saved / name).read_bytes())
    return out


@pytest.mark.parametrize("keep", [0, 5, 100, 0.5, -1])
def test_truncated_weights_name_the_file(saved, tmp_path, keep):
    ckpt = _copy(saved, tmp_path)
    data = (ckpt / "model.safetensors").read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (len(data) + keep if keep < 0 else keep)
    (ckpt / "model.safetensors").write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"model\.safetensors cannot be read .*truncated or damaged"):
        load_checkpoint(ckpt)


def test_config_that_does_not_fit_the_weights_names_both_files(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    info = json.loads((ckpt / "config.json").read_text())
    info["config"] = CondCDVAEConfig.tiny(latent_dim=4).to_dict()
    (ckpt / "config.json").write_text(json.dumps(info))
    message = r"model\.safetensors does not match the config in .*config\.json: \d+ tensors differ in shape"
    with pytest.raises(ValueError, match=message + r" \(.* in the weights, .* for the config"):
        load_checkpoint(ckpt)


def test_invalid_or_missing_model_config_is_named(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    info = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**info, "config": {**info["config"], "bogus": 1}}))
    with pytest.raises(ValueError, match=r"config\.json holds an invalid model config"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text(json.dumps({k: v for k, v in info.items() if k != "config"}))
    with pytest.raises(ValueError, match=r"config\.json has no 'config' object"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("damage", ["truncate", "config"])
def test_sample_command_exits_1_naming_the_file(saved, tmp_path, damage):
    xtal_tools_sample = pytest.importorskip("xtal_tools.cli.sample")
    from typer.testing import CliRunner

    ckpt = _copy(saved, tmp_path)
    if damage == "truncate":
        data = (ckpt / "model.safetensors").read_bytes()
        (ckpt / "model.safetensors").write_bytes(data[: len(data) // 2])
        message = "model.safetensors cannot be read"
    else:
        info = json.loads((ckpt / "config.json").read_text())
        info["config"] = CondCDVAEConfig.tiny(latent_dim=4).to_dict()
        (ckpt / "config.json").write_text(json.dumps(info))
        message = "does not match the config"
    out = tmp_path / "out"
    args = ["-k", str(ckpt), "--formula", "SiO2", "--pressure", "1", "-o", str(out), "--device", "cpu"]
    res = CliRunner().invoke(xtal_tools_sample.app, args)
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
    assert not out.exists()  # nothing left behind
