"""xtal model-info: what a checkpoint supports, read from its files."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner
from xtal_tools.checkpoints import DEFAULT_CHECKPOINT
from xtal_tools.cli import app

runner = CliRunner()


def test_the_shipped_model_says_what_it_was_trained_on():
    res = runner.invoke(app, ["model-info", "-f", "Si4O8"])
    assert res.exit_code == 0, res.output
    assert "trained on   13,693 crystals of up to 24 atoms; pressure 0-50 GPa" in res.output
    assert "elements     87:" in res.output and "sampler      default ode, 50 decoder calls" in res.output
    assert "Si4O8 (12 atoms): every element seen in training" in res.output
    assert "cells        sized by its volume prior" in res.output and "Å^3 per atom at 0 GPa" in res.output
    assert (
        "latents      analogues: code and cell shape of the most alike training crystals of the same size "
        "(12,310 kept of 13,693; latent auto)"
    ) in res.output
    res = runner.invoke(app, ["model-info", "--json", "-f", "Fm2O4"])
    info = json.loads(res.output)
    assert info["formula"]["unseen_elements"] == [100] and info["max_atoms"] == 24
    assert info["trained_on"]["conditions"]["pressure"] == [0.0, 50.0]


def test_an_older_checkpoint_and_a_missing_one(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(DEFAULT_CHECKPOINT, old)
    info = json.loads((old / "config.json").read_text())
    info.pop("trained_on")
    info.pop("volume_prior")
    info.pop("latent_prior")
    (old / "config.json").write_text(json.dumps(info))
    res = runner.invoke(app, ["model-info", str(old)])
    assert res.exit_code == 0 and "not recorded in this checkpoint" in res.output
    assert "no volume prior in this checkpoint" in res.output
    assert "N(0, I) (no fitted latent prior in this checkpoint)" in res.output
    info["latent_prior"] = {"file": "latent_prior.safetensors", "crystals": 13693}  # before analogues
    (old / "config.json").write_text(json.dumps(info))
    res = runner.invoke(app, ["model-info", str(old)])
    assert "latents      codes of training crystals of the same size (of 13,693; latent auto)" in res.output
    res = runner.invoke(app, ["model-info", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "is not a directory" in res.output
