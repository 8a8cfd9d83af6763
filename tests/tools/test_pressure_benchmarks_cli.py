"""``tools/benchmark pressure-response`` and ``structure-map`` end to end with a tiny model (EMT relaxation,
the dependency-free descriptor and t-SNE), their --config surface and their bad inputs."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import pytest
import torch
from cond_vae.checkpoint import save_checkpoint
from typer.testing import CliRunner
from xtal_tools.cli.benchmark import app

from tests.cond_vae._helpers import tiny_model

pytest.importorskip("pyxtal", reason="the random twins need pyxtal (xtal-tools[baselines])")

runner = CliRunner()
FAST = ["--levels", "3", "--device", "cpu", "--seed", "2"]
PR = ["--formulas", "Cu2", "--pressures", "0,20", "-n", "2", "--phases", "NaCl-B1", "--phase-runs", "1",
      "--phase-budget", "4", "--fraction-pressures", "0", "--fraction-num", "4", "--calculator", "emt",
      "--max-steps", "10"]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


@pytest.fixture(scope="module")
def pressure_run(checkpoint, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("pr") / "out"
    res = runner.invoke(app, ["pressure-response", "-k", str(checkpoint), *PR, *FAST, "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_pressure_response_writes_every_output(pressure_run):
    out, output = pressure_run
    for name in ("rows.csv", "phases.csv", "phase_fractions.csv", "pressure_response.png", "summary.json"):
        assert (out / name).is_file(), name
    with (out / "rows.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    # 2 pressures x 2 samples, each beside its PyXtal twin
    assert {r["source"] for r in rows} == {"generated", "pyxtal"} and len(rows) == 8
    assert sorted({float(r["pressure_GPa"]) for r in rows}) == [0.0, 20.0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["pressure_response"]["pressures"] == [0.0, 20.0]
    record = tomllib.loads((out / "run.toml").read_text())
    assert record["run"]["status"] == "completed" and record["relax"]["calculator"] == "emt"
    # the tiny model knows about 1.5-18 GPa: each pressure outside it is said once, in plain words
    assert output.count("warning: pressure 20 GPa is outside the range") == 1
    assert output.count("warning: pressure 0 GPa is outside the range") == 1


def test_pressure_response_repeats_from_its_run_toml(checkpoint, pressure_run, tmp_path):
    out, _ = pressure_run
    again = tmp_path / "again"
    res = runner.invoke(app, ["pressure-response", "--config", str(out / "run.toml"), "-o", str(again)])
    assert res.exit_code == 0, res.output

    def rows(folder):  # every column but the timings
        with (folder / "rows.csv").open() as fh:
            return [{k: v for k, v in r.items() if "second" not in k} for r in csv.DictReader(fh)]

    assert rows(again) == rows(out)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--phases", "NaCl-rocksalt"], "unknown phase(s) ['NaCl-rocksalt']"),
        (["--pressures", "0,-5"], "negative"),
        (["--calculator", "no_such_module:calc"], "cannot import 'no_such_module'"),
    ],
)
def test_pressure_response_bad_input_writes_nothing(checkpoint, tmp_path, extra, message):
    out = tmp_path / "out"
    args = ["pressure-response", "-k", str(checkpoint), *PR, *extra, *FAST, "-o", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and message in res.output, res.output
    assert not out.exists()


def test_structure_map_embeds_generated_beside_random(checkpoint, tmp_path):
    pytest.importorskip("sklearn", reason="t-SNE needs scikit-learn (xtal-tools[structure-map])")
    out = tmp_path / "map"
    args = ["structure-map", "-k", str(checkpoint), "--formulas", "Cu2", "--pressures", "0,20", "-n", "4",
            "--descriptor", "rdf", "--embedding", "tsne", "--landmarks", "none", *FAST,
            "-o", str(out)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "structure_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "structure_map.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 16 and {r["source"] for r in rows} == {"generated", "pyxtal"}
    res = runner.invoke(app, [*args[:-1], str(tmp_path / "bad"), "--embedding", "pca"])
    assert res.exit_code == 1 and "unknown embedding 'pca'" in res.output
    assert not (tmp_path / "bad").exists()
