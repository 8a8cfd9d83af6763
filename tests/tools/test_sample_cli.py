"""``tools/sample`` through typer's CliRunner, and sharded across two CPU processes with torchrun."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cond_vae.checkpoint import save_checkpoint
from typer.testing import CliRunner
from xtal_tools.cli.sample import app
from xtal_tools.generation import read_rows

from tests.cond_vae._helpers import tiny_model

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = ["--levels", "3", "--batch-size", "4", "--seed", "3", "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = tiny_model(dtype=torch.float32)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model)


@pytest.fixture()
def rows_csv(tmp_path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("id,formula,pressure\na,Si2O4,0\nb,C4,10\nc,Fe2O2,5\nd,H2O,1\ne,SiC,3\n")
    return path


def _samples_csv(out: Path) -> list[dict]:
    with (out / "samples.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_sample_one_formula_writes_every_output(checkpoint, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "--checkpoint",
            str(checkpoint),
            "--formula",
            "Si2O4",
            "--pressure",
            "5",
            "--num",
            "3",
            "--out",
            str(out),
            *FAST,
        ],
    )
    assert res.exit_code == 0, res.output
    table = _samples_csv(out)
    assert [(r["row"], r["index"]) for r in table] == [("0", "0"), ("0", "1"), ("0", "2")]
    assert all(r["formula"] == "Si2O4" and float(r["pressure_GPa"]) == 5.0 for r in table)
    valid = sum(int(r["valid"]) for r in table)
    assert len(list((out / "cif").glob("*.cif"))) == valid
    assert (out / "samples.extxyz").exists() and (out / "run.toml").exists()
    assert "completed" in (out / "run.toml").read_text()
    assert not (out / ".staging").exists() and not (out / ".shards").exists()


def test_same_seed_same_structures(checkpoint, tmp_path, rows_csv):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res = runner.invoke(
            app, ["-k", str(checkpoint), "--rows", str(rows_csv), "-n", "2", "-o", str(out), *FAST]
        )
        assert res.exit_code == 0, res.output
        outs.append((out / "samples.extxyz").read_text())
    assert outs[0] == outs[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formula", "Xx2O", "--pressure", "1"], "unknown element 'Xx'"),
        (["--formula", "", "--pressure", "1"], "empty"),
        (["--formula", "Si0", "--pressure", "1"], "zero atoms"),
        (["--formula", "C200", "--pressure", "1"], "more than the model supports"),
        (["--formula", "SiO2", "--pressure", "nan"], "must be finite"),
        (["--formula", "SiO2", "--pressure", "high"], "not a number"),
        (["--formula", "SiO2", "--pressure", "-3"], "negative"),
        (["--formula", "SiO2"], "needs --pressure"),
        ([], "either --formula"),
    ],
)
def test_bad_requests_fail_clearly_and_write_nothing(checkpoint, tmp_path, args, message):
    out = tmp_path / "out"
    res = runner.invoke(app, ["-k", str(checkpoint), "-o", str(out), *args, *FAST])
    assert res.exit_code == 1
    assert message in res.output
    assert not out.exists() or not any(out.iterdir())


def test_bad_rows_file_names_the_line(checkpoint, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("formula,pressure\nSiO2,1\nSiO2,abc\n")
    res = runner.invoke(app, ["-k", str(checkpoint), "--rows", str(rows), "-o", str(tmp_path / "o"), *FAST])
    assert res.exit_code == 1 and "rows.csv:3" in res.output
    with pytest.raises(ValueError, match="missing column"):
        (tmp_path / "bad.csv").write_text("formula\nSiO2\n")
        read_rows(tmp_path / "bad.csv")


def test_refuses_a_non_empty_output_folder_and_a_missing_checkpoint(checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = runner.invoke(
        app, ["-k", str(checkpoint), "--formula", "SiO2", "--pressure", "1", "-o", str(out), *FAST]
    )
    assert res.exit_code == 1 and "not empty" in res.output
    assert (out / "keep.txt").read_text() == "mine"
    res = runner.invoke(
        app,
        [
            "-k",
            str(tmp_path / "nope"),
            "--formula",
            "SiO2",
            "--pressure",
            "1",
            "-o",
            str(tmp_path / "o2"),
            *FAST,
        ],
    )
    assert res.exit_code == 1 and "checkpoint" in res.output


@pytest.mark.slow
def test_two_processes_write_what_one_process_writes(checkpoint, tmp_path, rows_csv):
    """torchrun with 2 gloo ranks against a plain single process, both with one thread each."""
    common = [
        "-k",
        str(checkpoint),
        "--rows",
        str(rows_csv),
        "-n",
        "2",
        *FAST,
    ]  # 3 blocks of 4: both ranks work
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, multi = tmp_path / "single", tmp_path / "multi"
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29531",
    ]
    for out, prefix in ((single, [sys.executable]), (multi, launch)):
        proc = subprocess.run(
            [*prefix, str(ROOT / "tools" / "sample"), *common, "-o", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (multi / "samples.extxyz").read_text() == (single / "samples.extxyz").read_text()
    assert _samples_csv(multi) == _samples_csv(single)
    assert len(_samples_csv(multi)) == 10 and not (multi / ".shards").exists()


@pytest.mark.slow
def test_reproducible_sampling_is_the_same_bits_for_batch_1_and_two_ranks_at_batch_64(
    checkpoint, tmp_path, rows_csv
):
    """`[sampler] reproducible = true`: one process at batch size 1 and torchrun with 2 gloo ranks at
    batch size 64 (different blocks, different ranks) write the same structures, bit for bit."""
    config = tmp_path / "sampler.toml"
    config.write_text("[sampler]\nmethod = 'pc'\nlevels = 6\nreproducible = true\n")
    common = ["-k", str(checkpoint), "--rows", str(rows_csv), "-n", "2", "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29533",
    ]
    runs = (
        (tmp_path / "single", [sys.executable], ["--batch-size", "1"]),
        (tmp_path / "multi", launch, ["--batch-size", "64"]),
    )
    for out, prefix, extra in runs:
        proc = subprocess.run(
            [*prefix, str(ROOT / "tools" / "sample"), *common, *extra, "-o", str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    single, multi = (tmp_path / "single"), (tmp_path / "multi")
    assert (multi / "samples.extxyz").read_text() == (single / "samples.extxyz").read_text()


def test_library_sharding_equals_single_process(checkpoint, tmp_path, rows_csv):
    """Ranks run in sequence here (no barrier): rank 0 merges the shards of every rank."""
    from cond_vae import SamplerConfig
    from cond_vae.checkpoint import load_checkpoint
    from xtal_tools.generation import SampleConfig, run_sampling

    model = load_checkpoint(checkpoint)
    rows = read_rows(rows_csv)
    sampler = SamplerConfig(levels=3, batch_size=3)
    job = SampleConfig(num=2, seed=5, sampler=sampler, formats=("extxyz",))
    run_sampling(model, rows, job, tmp_path / "one")
    assert run_sampling(model, rows, job, tmp_path / "two", rank=1, world_size=2) is None
    summary = run_sampling(model, rows, job, tmp_path / "two", rank=0, world_size=2)
    assert summary.num_samples == 10
    one = (tmp_path / "one" / "samples.extxyz").read_text()
    assert one == (tmp_path / "two" / "samples.extxyz").read_text()
    assert np.isclose(float(_samples_csv(tmp_path / "two")[-1]["pressure_GPa"]), 3.0)


def test_an_unseen_element_is_one_plain_warning_line(tmp_path):
    """Through the real entry point (tools/sample): the shipped model records the 87 elements it was
    trained on; fermium is not among them."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    default = root / "tools" / "src" / "xtal_tools" / "models" / "default"
    args = [sys.executable, str(root / "tools" / "sample"), "--checkpoint", str(default),
            "--formula", "Fm2O4", "--pressure", "0", "--num", "1", "--levels", "2",
            "--out", str(tmp_path / "out")]  # fmt: skip
    res = subprocess.run(
        args, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if "never occurred" in line]
    expected = "warning: row 0 (Fm2O4): Fm never occurred in this model's training data; its structures"
    assert lines == [expected + " for this formula are a guess"]
    assert "UserWarning" not in res.stderr


def test_samples_csv_names_each_structures_analogue(checkpoint, tmp_path):
    from cond_vae import fit_latent_prior

    from tests.cond_vae._helpers import random_crystals

    model = tiny_model(dtype=torch.float32)
    model.latent_prior = fit_latent_prior(model, random_crystals(12, seed=4))
    with_prior = save_checkpoint(tmp_path / "with_prior", model)
    for ckpt, name in ((with_prior, "a"), (checkpoint, "b")):
        args = ["--checkpoint", str(ckpt), "--formula", "Si2O4", "--pressure", "5", "--num", "2"]
        res = runner.invoke(app, [*args, "--out", str(tmp_path / name), *FAST])
        assert res.exit_code == 0, res.output
    named = [r["analogue"] for r in _samples_csv(tmp_path / "a")]
    prior = model.latent_prior
    assert all(a.endswith(" GPa") and " at pressure " in a for a in named)
    assert set(named) <= {prior.describe(j) for j in range(len(prior.sizes))}
    assert [r["analogue"] for r in _samples_csv(tmp_path / "b")] == ["", ""]  # no latent prior: none
