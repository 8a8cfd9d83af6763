"""The shipped default model: present in the package, loads without pickle, matches its config and card,
and drives the CSP job when no checkpoint is given."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from cond_vae.checkpoint import load_checkpoint
from cond_vae.training._runconfig import model_config_from_table
from typer.testing import CliRunner
from xtal_tools import checkpoints
from xtal_tools.cli import csp as csp_module

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "tools" / "src" / "xtal_tools" / "models" / "default"


def test_the_default_checkpoint_ships_inside_the_package():
    assert checkpoints.DEFAULT_CHECKPOINT == MODEL.resolve()
    files = {p.name for p in MODEL.iterdir()}
    assert {"model.safetensors", "config.json", "MODEL_CARD.md"} <= files
    assert not any(name.endswith((".pt", ".pth", ".pkl", ".ckpt")) for name in files)  # no pickle
    size = sum(p.stat().st_size for p in MODEL.iterdir())
    # weights 4.7 MB + the latent prior with its 12,310 training crystals for analogues 7.0 MB + card
    assert size < 16 * 2**20, f"the default model should stay a few MB, it is {size / 2**20:.1f} MiB"


def test_it_loads_and_matches_configs_default_toml_and_its_card():
    model = load_checkpoint(MODEL, map_location="cpu")
    table = tomllib.loads((ROOT / "configs" / "default.toml").read_text())["model"]
    expected, _ = model_config_from_table(table)
    assert model.config == expected  # the shipped weights are what configs/default.toml builds
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    card = (MODEL / "MODEL_CARD.md").read_text()
    found = re.search(r"trainable parameters\W*([\d,]+)", card)
    assert found, "the model card states the trainable parameter count"
    assert int(found.group(1).replace(",", "")) == n_params


def test_csp_without_a_checkpoint_uses_the_default_model(tmp_path):
    out = tmp_path / "sio2"
    args = ["-f", "SiO2", "-u", "2", "-p", "0", "-n", "2", "--no-relax", "-o", str(out)]
    fast = ["--levels", "3", "--seed", "0", "--device", "cpu", "--no-progress"]
    res = CliRunner().invoke(csp_module.app, [*args, *fast])
    assert res.exit_code == 0, res.output
    record = tomllib.loads((out / "0GPa" / "run.toml").read_text())
    assert Path(record["derived"]["checkpoint"]).resolve() == MODEL.resolve()
    assert record["csp"].get("checkpoint", "") == ""  # the settings say "the default model"
    assert (out / "0GPa" / "candidates.csv").is_file()


def test_the_wheel_of_xtal_tools_carries_the_model(tmp_path):
    """A non-editable install (the README quickstart) gets the model as package data."""
    pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling installed")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, str(ROOT / "tools"), "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("xtal_tools-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("model.safetensors", "config.json", "latent_prior.safetensors", "MODEL_CARD.md"):
        assert f"xtal_tools/models/default/{name}" in names


def test_the_shipped_model_follows_the_requested_pressure():
    """Its cells shrink from 0 to 50 GPa (held-out compositions of the pressure probe; measured 0.72 of the
    0 GPa volume per atom, phase 2b 0.80, the previous default model 1.04, CHGNet about 0.72)."""
    import numpy as np
    from cond_vae.sampling import SamplerConfig, sample

    model = load_checkpoint(MODEL, map_location="cpu").eval()
    rows = ["Sc1F3", "Er1Pt3", "Y1Th1Ru2", "Pm1Mg1"]

    def volume(pressure: float) -> float:
        out = sample(model, rows, pressure, num_per_row=10, seed=0, sampler=SamplerConfig(levels=2))
        return float(
            np.mean([abs(np.linalg.det(s.crystal.lattice)) / len(s.crystal.atom_types) for s in out])
        )

    assert volume(50.0) < 0.9 * volume(0.0)
