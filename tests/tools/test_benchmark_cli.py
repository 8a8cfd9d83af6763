"""``tools/benchmark recon|success|known-phase`` end to end (tiny untrained model, EMT), bad inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from cond_vae.checkpoint import save_checkpoint
from typer.testing import CliRunner
from xtal_tools.cli.benchmark import app

from tests.cond_vae._helpers import tiny_model
from tests.tools.test_bench_recon import make_store
from tests.tools.test_bench_success import fcc_cu, rock_salt

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = ["--levels", "3", "--seed", "3", "--device", "cpu"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return make_store(str(tmp_path_factory.mktemp("data") / "tiny.zarr"))


@pytest.fixture(scope="module")
def targets_csv(tmp_path_factory) -> Path:
    """fcc Cu (4 atoms, 0 GPa) and a Cu primitive cell (1 atom, 5 GPa): EMT can relax both."""
    folder = tmp_path_factory.mktemp("targets")
    fcc_cu().to(filename=str(folder / "cu.cif"))
    fcc_cu().get_primitive_structure().to(filename=str(folder / "cu_prim.cif"))
    rock_salt().to(filename=str(folder / "nacl.cif"))
    path = folder / "targets.csv"
    path.write_text("cif,pressure,id\ncu.cif,0,cu-fcc\ncu_prim.cif,5,cu-prim\n")
    return path


def _outputs(out: Path) -> tuple[dict, list[dict], dict]:
    summary = json.loads((out / "summary.json").read_text())
    with (out / "rows.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    run = tomllib.loads((out / "run.toml").read_text())
    assert run["run"]["status"] == "completed"
    for key in ("wall_s", "n_structures", "structures_per_s", "results", "settings", "versions", "machine"):
        assert key in summary, key
    assert summary["wall_s"] > 0 and summary["structures_per_s"] > 0
    assert summary["machine"]["cpu_count"] >= 1 and summary["machine"]["device"] == "cpu"
    assert summary["versions"]["xtal-tools"] != "not installed"
    assert not list(out.glob(".*tmp*"))  # nothing half-written left behind
    return summary, rows, run


def test_recon_writes_match_rate_nrmsd_and_speed(checkpoint, store, tmp_path):
    out = tmp_path / "recon"
    res = runner.invoke(app, ["recon", "-k", str(checkpoint), "--data", store, "-o", str(out), *FAST])
    assert res.exit_code == 0, res.output
    summary, rows, _ = _outputs(out)
    assert summary["n_structures"] == len(rows) == 2  # the test part
    metrics = summary["results"]["metrics"]["cdvae/none"]
    assert 0.0 <= metrics["match_rate"] <= 1.0 and metrics["n"] == 2
    assert summary["settings"]["recon"]["presets"] == ["cdvae", "paper", "strict"]  # every report: all three
    assert "N-RMSD" in res.output


def test_success_with_emt_reports_both_modes_and_plots(checkpoint, targets_csv, tmp_path):
    out = tmp_path / "success"
    args = ["success", "-k", str(checkpoint), "--targets", str(targets_csv), "-n", "2", "-o", str(out)]
    res = runner.invoke(app, [*args, "--calculator", "emt", "--max-steps", "10", "--save-samples", *FAST])
    assert res.exit_code == 0, res.output
    summary, rows, _ = _outputs(out)
    from ase.io import read

    for mode in ("unrelaxed", "relaxed"):
        frames = read(str(out / f"samples_{mode}.extxyz"), index=":")
        keys = [(a.info["target_id"], a.info["index"]) for a in frames]
        assert len(keys) == len(set(keys)) <= 4 and all(i in (0, 1) for _, i in keys)
        assert {t for t, _ in keys} <= {"cu-fcc", "cu-prim"}
    assert [r["id"] for r in rows] == ["cu-fcc", "cu-prim"]
    assert {"cdvae_unrelaxed_first_match", "paper_relaxed_first_match"} <= set(rows[0])
    curves = summary["results"]["success_curve"]
    presets, modes = ("cdvae", "paper", "strict"), ("unrelaxed", "relaxed")
    assert set(curves) == {f"{p}/{m}/{s}" for p in presets for m in modes
                           for s in ("all", "n_atoms<20")}  # fmt: skip
    assert all(len(c) == 2 and c[0] <= c[1] for c in curves.values())
    assert summary["n_structures"] == 4 and summary["results"]["relaxation"]["tried"] >= 1
    assert (out / "success.png").read_bytes()[:4] == b"\x89PNG"


def test_success_from_a_store_without_relaxation(checkpoint, store, tmp_path):
    out = tmp_path / "store"
    res = runner.invoke(app, ["success", "-k", str(checkpoint), "--data", store, "--limit", "1", "-n", "2",
                              "--presets", "paper", "-o", str(out), *FAST])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary, rows, _ = _outputs(out)
    assert len(rows) == 1
    assert set(summary["results"]["success_curve"]) == {"paper/unrelaxed/all", "paper/unrelaxed/n_atoms<20"}


def test_known_phase_counts_runs(checkpoint, targets_csv, tmp_path):
    out = tmp_path / "kp"
    args = ["known-phase", "-k", str(checkpoint), "--targets", str(targets_csv), "-o", str(out)]
    res = runner.invoke(
        app, [*args, "--runs", "2", "--budget", "3", "--batch", "2", "--preset", "cdvae", *FAST]
    )
    assert res.exit_code == 0, res.output
    summary, rows, _ = _outputs(out)
    assert [r["id"] for r in rows] == ["cu-fcc", "cu-prim"]
    for row in rows:
        firsts = [int(x) for x in row["first_match_per_run"].split()]
        assert len(firsts) == 2 and all(0 <= f <= 3 for f in firsts)
        assert row["success_count"] == f"{sum(f > 0 for f in firsts)}/2"
    assert summary["results"]["runs"] == 2 and summary["results"]["budget"] == 3
    assert summary["n_structures"] == summary["results"]["n_samples"] <= 2 * 2 * 4


def _bad_csv(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("csv_text", "extra", "message"),
    [
        ("cif,pressure\nmissing.cif,0\n", [], "does not exist"),
        (b"\xff\xfe\x00garbage\x00\xff", [], "not a readable CSV"),
        ("cif,pressure\n{cu},nan\n", [], "must be finite"),
        ("cif,pressure\n{cu},-3\n", [], "negative"),
        ("cif,pressure\n", [], "no targets"),
        ("cif,temperature\n{cu},0\n", [], "missing column"),
        ("cif,pressure\n{cu},0\n", ["--presets", "cdvae,loose"], "unknown matcher preset"),
        ("cif,pressure\n{nacl_big},0\n", [], "more than"),
    ],
)
@pytest.mark.parametrize("command", ["success", "known-phase"])
def test_bad_targets_fail_clearly_and_write_nothing(
    command, csv_text, extra, message, checkpoint, targets_csv, tmp_path
):
    folder = targets_csv.parent
    if isinstance(csv_text, str):
        big = rock_salt()
        big.make_supercell([2, 2, 1])  # 32 atoms > max_atoms 24
        big.to(filename=str(tmp_path / "big.cif"))
        csv_text = csv_text.format(cu=folder / "cu.cif", nacl_big=tmp_path / "big.cif")
    if command == "known-phase":
        extra = ["--preset", "loose"] if extra else []
    path = _bad_csv(tmp_path, "t.csv", csv_text)
    out = tmp_path / "out"
    res = runner.invoke(
        app, [command, "-k", str(checkpoint), "--targets", str(path), "-o", str(out), *extra, *FAST]
    )
    assert res.exit_code == 1, res.output
    assert message in res.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{store}", "--targets", "{csv}"], "exactly one"),
        ([], "--data STORE"),
        (["--data", "{store}", "--part", "holdout"], "no part 'holdout'"),
        (["--targets", "{csv}", "--calculator", "nosuchmodule:make"], "cannot import"),
        (["--targets", "{csv}", "--relax", "--calculator", "emt", "--calculator-args", "[1]"], "JSON object"),
        (
            ["--targets", "{csv}", "--max-steps", "5", "--fmax", "-1", "--relax", "--calculator", "emt"],
            "fmax",
        ),
    ],
)
def test_bad_options_fail_clearly_and_write_nothing(args, message, checkpoint, store, targets_csv, tmp_path):
    args = [a.format(store=store, csv=targets_csv) for a in args]
    out = tmp_path / "out"
    res = runner.invoke(app, ["success", "-k", str(checkpoint), "-o", str(out), *args, *FAST])
    assert res.exit_code == 1, res.output
    assert message in res.output
    assert not out.exists()


def test_missing_checkpoint_unknown_recon_preset_and_busy_out(checkpoint, store, tmp_path):
    res = runner.invoke(
        app, ["recon", "-k", str(tmp_path / "nope"), "--data", store, "-o", str(tmp_path / "a")]
    )
    assert res.exit_code == 1 and "not a directory" in res.output and not (tmp_path / "a").exists()
    res = runner.invoke(
        app, ["recon", "-k", str(checkpoint), "--data", store, "--presets", "x", "-o", str(tmp_path / "b")]
    )
    assert res.exit_code == 1 and "unknown matcher preset" in res.output and not (tmp_path / "b").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    res = runner.invoke(app, ["recon", "-k", str(checkpoint), "--data", store, "-o", str(busy), *FAST])
    assert res.exit_code == 1 and "not empty" in res.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_script_runs_from_a_checkout():
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    for command in ("recon", "success", "known-phase", "localopt"):
        assert command in res.stdout


def test_targets_csv_ids_cells_and_disorder(tmp_path):
    from pymatgen.core import Lattice, Structure
    from xtal_tools.evaluation.targets import read_targets_csv

    fcc_cu().to(filename=str(tmp_path / "cu.cif"))
    alloy = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    alloy.to(filename=str(tmp_path / "alloy.cif"))
    path = _bad_csv(tmp_path, "t.csv", f"cif,pressure\ncu.cif,1.5\n{tmp_path / 'cu.cif'},0\n")
    given = read_targets_csv(path)
    assert [(t.id, t.num_atoms, t.pressure, t.formula) for t in given] == [
        ("cu", 4, 1.5, "Cu4"),
        ("cu", 4, 0.0, "Cu4"),
    ]
    assert [t.num_atoms for t in read_targets_csv(path, cell="primitive")] == [1, 1]
    with pytest.raises(ValueError, match="unknown cell"):
        read_targets_csv(path, cell="niggli")
    with pytest.raises(ValueError, match="partially occupied"):
        read_targets_csv(_bad_csv(tmp_path, "a.csv", "cif,pressure\nalloy.cif,0\n"))
    with pytest.raises(ValueError, match="cannot read CIF"):
        (tmp_path / "junk.cif").write_text("data_x\n_cell_length_a 3\n")
        read_targets_csv(_bad_csv(tmp_path, "j.csv", "cif,pressure\njunk.cif,0\n"))


def test_duplicate_target_ids_are_refused(checkpoint, targets_csv, tmp_path):
    path = _bad_csv(tmp_path, "t.csv", f"cif,pressure,id\n{targets_csv.parent / 'cu.cif'},0,x\n"
                    f"{targets_csv.parent / 'cu.cif'},1,x\n")  # fmt: skip
    res = runner.invoke(
        app, ["success", "-k", str(checkpoint), "--targets", str(path), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 1 and "duplicate target id 'x'" in res.output


@pytest.mark.parametrize(("flag", "relaxed"), [([], True), (["--no-relax"], False)])
def test_known_phase_relaxes_when_a_calculator_is_given_unless_refused(
    flag, relaxed, checkpoint, targets_csv, tmp_path
):
    out = tmp_path / "kp"
    args = [
        "known-phase",
        "-k",
        str(checkpoint),
        "--targets",
        str(targets_csv),
        "--limit",
        "1",
        "-o",
        str(out),
    ]
    opts = ["--runs", "1", "--budget", "2", "--batch", "2", "--calculator", "emt", "--max-steps", "5"]
    res = runner.invoke(app, [*args, *opts, *flag, *FAST])
    assert res.exit_code == 0, res.output
    summary, _, _ = _outputs(out)
    assert summary["settings"]["relax"]["enabled"] is relaxed
    counts = summary["results"]["relaxation"]
    if relaxed:  # every valid sample up to the first match is relaxed
        assert counts["tried"] >= 1 and counts["steps"] >= 1
    else:
        assert counts is None


@pytest.mark.parametrize(
    ("command", "bars"),
    [
        (["recon", "--data", "{store}"], ("reconstruct: 100%|", "match [")),
        (
            ["success", "--targets", "{csv}", "-n", "2", "--calculator", "emt", "--max-steps", "5"],
            ("sample: 100%|", "relax: 100%|", "csp ["),
        ),
        (
            ["known-phase", "--targets", "{csv}", "--runs", "1", "--budget", "2", "--batch", "2"],
            ("runs: 100%|",),
        ),
    ],
    ids=["recon", "success", "known-phase"],
)
def test_progress_bars_go_to_stderr_with_progress_and_nowhere_without(
    command, bars, checkpoint, store, targets_csv, tmp_path
):
    command = [a.format(store=store, csv=targets_csv) for a in command]
    for flag in ("--progress", "--no-progress"):
        out = tmp_path / flag
        res = runner.invoke(app, [*command, "-k", str(checkpoint), "-o", str(out), *FAST, flag])
        assert res.exit_code == 0, res.output
        assert "|" not in res.stdout and "[#" not in res.stdout and "[-" not in res.stdout
        for bar in bars:
            assert (bar in res.stderr) == (flag == "--progress"), (bar, res.stderr)
        assert "100%|" not in (out / "summary.json").read_text()
