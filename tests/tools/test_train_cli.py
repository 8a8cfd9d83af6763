"""``tools/train`` through typer's CliRunner on a tiny synthetic xtal-data store."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from xtal_tools.cli.train import app

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny.toml"
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from xtal_data import CrystalRecord, CrystalStore
    from xtal_data.splits import split_random

    rng = np.random.default_rng(0)
    records = []
    for i in range(12):
        n = int(rng.integers(2, 5))
        a = 3.2 + rng.random()
        records.append(
            CrystalRecord(
                id=f"syn-{i}",
                atomic_numbers=rng.integers(1, 30, n).astype(np.int64),
                frac_coords=rng.random((n, 3)),
                lattice=np.diag([a, a * 1.05, a * 1.1]) + 0.1 * rng.random((3, 3)),
                pressure=float(rng.choice([0.0, 20.0])),
            ).validate()
        )
    path = str(tmp_path_factory.mktemp("data") / "tiny.zarr")
    created = CrystalStore.create(path)
    created.append(records)
    split_random(created, seed=0, fractions=(0.5, 0.25, 0.25))
    return path


def _train(*args: str):
    return runner.invoke(app, ["--config", str(TINY), "--device", "cpu", "--no-progress", *args])


def test_train_cli_writes_run_record_and_resumes(store, tmp_path):
    out = tmp_path / "run"
    result = _train(
        "--data", store, "--out", str(out), "--max-steps", "2", "--batch-size", "2", "--seed", "5"
    )
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in result.output
    record = tomllib.loads((out / "run.toml").read_text())
    assert record["run"]["status"] == "completed" and record["run"]["seed"] == 5
    assert record["run"]["started"] <= record["run"]["finished"]
    assert set(record["versions"]) >= {
        "xtal-graph",
        "score-decoder",
        "cond-vae",
        "xtal-eval",
        "xtal-data",
        "xtal-tools",
    }
    assert record["train"]["batch_size"] == 2 and record["model"]["preset"] == "tiny"
    assert record["data"]["path"] == store
    assert record["summary"]["train_crystals"] == 6 and record["summary"]["val_crystals"] == 3
    assert (out / "metrics.csv").is_file() and (out / "checkpoints" / "step_00000002").is_dir()

    again = _train("--data", store, "--out", str(out), "--max-steps", "3", "--batch-size", "2", "--seed", "5",
                   "--resume", "auto")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "trained 3 steps" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing.zarr"], "no xtal-data store"),
        (["--data", "{store}", "--split", "nope"], "has no split 'nope'"),
        (["--data", "{store}", "--resume", "{tmp}/nowhere"], "not a resumable training checkpoint"),
        ([], "no data path"),
    ],
)
def test_train_cli_fails_clearly(store, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, store=store) for a in args]
    result = _train(*args, "--out", str(tmp_path / "out"), "--max-steps", "1")
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_train_cli_rejects_unknown_config_keys(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_sise = 3\n")
    result = runner.invoke(app, ["--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "batch_sise" in result.output
    assert not (tmp_path / "o").exists()  # nothing written for a config that does not parse


def test_tools_train_is_an_executable_entry_point():
    script = ROOT / "tools" / "train"
    assert script.stat().st_mode & 0o111
    shown = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0 and "--config" in shown.stdout and "--resume" in shown.stdout


def test_store_batches_equal_collated_crystals(store):
    """The vectorised store path and xtal_graph.collate give the same training batches."""
    import torch
    from cond_vae.training import DataConfig, open_store_split
    from cond_vae.training._data import iterate_micro_batches
    from xtal_graph import collate

    train, val = open_store_split(DataConfig(path=store, split="random"))
    assert len(train) == 6 and len(val) == 3
    groups = [[0, 2, 5], [1], [4, 3]]
    fast = list(iterate_micro_batches(train, groups, dtype=torch.float32, num_workers=0))
    for batch, group in zip(fast, groups, strict=True):
        slow = collate([train[i] for i in group], dtype=torch.float32)
        assert batch.ids == slow.ids and batch.frac_coords.dtype == torch.float32
        for name in ("atom_types", "frac_coords", "lattice", "num_atoms", "batch"):
            assert torch.equal(getattr(batch, name), getattr(slow, name)), name
        assert torch.equal(batch.properties["pressure"], slow.properties["pressure"])


def test_encoder_graph_sidecar_beside_the_store(store):
    """encoder_graphs = 'store': a sidecar beside the store, reread by the next run; the batches carry
    the same edges as the graph built on the fly."""
    import torch
    from cond_vae import EncoderConfig
    from cond_vae._encoder_graph import encoder_edges
    from cond_vae.training import DataConfig, open_store_split
    from cond_vae.training._data import iterate_micro_batches
    from cond_vae.training._graph_cache import with_encoder_graphs

    train, _ = open_store_split(DataConfig(path=store, split="random"))
    enc = EncoderConfig(cutoff=5.0, max_neighbors=12)
    first = with_encoder_graphs(train, encoder=enc, dtype=torch.float32, where="store")
    files = list(Path(store).parent.glob("tiny.zarr.encoder_graph-radius-*.npz"))
    assert len(files) == 1 and first.sidecar == files[0]
    again = with_encoder_graphs(train, encoder=enc, dtype=torch.float32, where="store")
    groups = [[0, 2, 5], [4, 1, 3]]
    for cached in (first, again):
        for batch in iterate_micro_batches(cached, groups, dtype=torch.float32, num_workers=0):
            edge_index, cell_offsets = encoder_edges(batch.replace(edge_index=None, cell_offsets=None), enc)
            assert torch.equal(batch.edge_index, edge_index) and torch.equal(batch.cell_offsets, cell_offsets)
