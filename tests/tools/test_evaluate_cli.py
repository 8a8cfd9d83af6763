"""``tools/evaluate recon|csp|gen`` on a tiny store and checkpoint, plus the bookkeeping of the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cond_vae.checkpoint import save_checkpoint
from typer.testing import CliRunner
from xtal_graph import lattice_from_params
from xtal_tools.cli.evaluate import app
from xtal_tools.evaluation import split_eval as evaluation

from tests.cond_vae._helpers import tiny_model

runner = CliRunner()
FAST = ["--levels", "3", "--seed", "1", "--device", "cpu", "--presets", "cdvae,paper"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Eight rock-salt-like and fluorite-like cells with a 50/25/25 split (test part: 2 crystals)."""
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
    path = str(tmp_path_factory.mktemp("data") / "tiny.zarr")
    created = CrystalStore.create(path)
    created.append(records)
    split_random(created, seed=0, fractions=(0.5, 0.25, 0.25))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


@pytest.mark.parametrize("command", ["recon", "csp", "gen"])
def test_evaluate_commands_write_summary_items_and_structures(command, store, checkpoint, tmp_path):
    out = tmp_path / command
    extra = ["--num", "2"] if command == "csp" else []
    res = runner.invoke(app, [command, "-k", str(checkpoint), "--data", store, "-o", str(out), *FAST, *extra])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == command
    items = (out / "items.csv").read_text().strip().splitlines()
    assert len(items) == 1 + 2  # header + the two test crystals
    assert "completed" in (out / "run.toml").read_text()
    if command == "recon":
        assert 0.0 <= summary["match_rate"] <= 1.0 and (out / "gt.extxyz").exists()
        assert {m["preset"] for m in summary["metrics"]} == {"cdvae", "paper"}
    if command == "csp":
        assert set(summary["presets"]) == {"cdvae", "paper"}
        assert len(summary["presets"]["cdvae"]["success_curve"]["all"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--presets", "nope"], "nope"),
        (["--part", "holdout"], "holdout"),
        (["--checkpoint", "/nonexistent"], "checkpoint"),
    ],
)
def test_evaluate_bad_input_fails_clearly(args, message, store, checkpoint, tmp_path):
    base = ["recon", "-k", str(checkpoint), "--data", store, "-o", str(tmp_path / "o"), *FAST]
    res = runner.invoke(app, [*base, *args])
    assert res.exit_code == 1 and message in res.output
    assert not (tmp_path / "o" / "summary.json").exists()


def test_recon_counts_an_invalid_cell_as_unmatched(monkeypatch, store, tmp_path):
    """With a perfect decoder for one target and a failed cell for the other, match rate is exactly 1/2."""
    from xtal_data.torch_dataset import CrystalDataset

    dataset = CrystalDataset(store, split="random", part="test")
    truth = [dataset.crystal(i) for i in range(len(dataset))]
    monkeypatch.setattr("cond_vae.reconstruct", lambda model, batch, **kw: [truth[0], None])
    model = tiny_model(dtype=torch.float32)
    result = evaluation.evaluate_recon(model, dataset, evaluation.EvalSettings(presets=("cdvae",)), tmp_path)
    assert result.summary["n"] == 2 and result.summary["n_invalid_cell"] == 1
    assert result.summary["match_rate"] == 0.5
    assert result.summary["mean_rmsd"] == pytest.approx(0.0, abs=1e-6)
    assert [r["cdvae_matched"] for r in result.rows] == [True, False]


def test_cell_formula_keeps_the_whole_cell():
    assert evaluation.cell_formula([14, 8, 8, 14, 8, 8]) == "Si2O4"


@pytest.mark.parametrize("task", ["recon", "csp", "gen"])
def test_progress_bars_on_stderr_only_when_asked(task, store, capsys, tmp_path):
    """``progress=True``: a tqdm bar over sampling/reconstruction and xtal-eval's matching bar, on stderr;
    ``False``: nothing on stderr; never anything on stdout or in the result files."""
    from cond_vae import SamplerConfig
    from xtal_data.torch_dataset import CrystalDataset

    dataset = CrystalDataset(store, split="random", part="test")
    model = tiny_model(dtype=torch.float32)
    settings = evaluation.EvalSettings(presets=("cdvae",), num=2, sampler=SamplerConfig(levels=3))
    bars = {"recon": ("reconstruct", "match"), "csp": ("sample", "csp"), "gen": ("sample", "unique")}
    desc, match = bars[task]
    for shown in (True, False):
        (tmp_path / str(shown)).mkdir()
        evaluation.evaluate(task, model, dataset, settings, tmp_path / str(shown), progress=shown)
        out, err = capsys.readouterr()
        assert out == ""
        if shown:
            assert f"{desc}: 100%|" in err and f"{match} [" in err, err
        else:
            assert err == ""
    for path in (tmp_path / "True").iterdir():
        assert "100%|" not in path.read_text()
