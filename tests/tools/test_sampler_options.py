"""One sampler for every tool: the same request and seed give the same structures from ``tools/sample``,
``tools/csp``'s sampling, the benchmarks' sampler and ``tools/evaluate``'s; the shared sampler flags and
the ``[sampler]`` TOML table resolve into one ``SamplerConfig`` that every run record holds."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest
import torch
from ase.io import read
from cond_vae import SamplerConfig
from cond_vae.checkpoint import load_checkpoint, save_checkpoint
from cond_vae.sampling import make_requests, sample_requests
from typer.testing import CliRunner
from xtal_tools.cli import _options
from xtal_tools.cli.sample import app as sample_app
from xtal_tools.config import resolve
from xtal_tools.evaluation.samplers import ModelSampler
from xtal_tools.evaluation.split_eval import EvalSettings, sample_targets
from xtal_tools.generation import SampleConfig
from xtal_tools.prediction.job import sample_structures

from tests.cond_vae._helpers import tiny_model

runner = CliRunner()
SAMPLER = SamplerConfig(levels=3, batch_size=4)
FLAGS = ["--levels", "3", "--batch-size", "4", "--device", "cpu"]
FORMULA, PRESSURE, NUM, SEED = "Si2O4", 5.0, 3, 7


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", tiny_model(dtype=torch.float32))


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_checkpoint(checkpoint, map_location="cpu")


@pytest.fixture(scope="module")
def reference(model):
    """The engine itself: one row, NUM samples."""
    requests = make_requests(model, [FORMULA], [PRESSURE])
    return sample_requests(model, requests, num_per_row=NUM, seed=SEED, sampler=SAMPLER)


def _same(structure, sample) -> None:
    """A pymatgen structure equals an engine sample bit for bit (cell, coordinates, species)."""
    c = sample.crystal
    np.testing.assert_array_equal(structure.lattice.matrix, c.lattice)
    np.testing.assert_array_equal(structure.frac_coords, c.frac_coords)
    assert [site.specie.Z for site in structure] == c.atom_types.tolist()


def _dataset(tmp_path, atom_types, pressure):
    from xtal_data import CrystalRecord, CrystalStore
    from xtal_data.torch_dataset import CrystalDataset

    n = len(atom_types)
    record = CrystalRecord(
        id="t0", atomic_numbers=np.array(atom_types), frac_coords=np.random.default_rng(0).random((n, 3)),
        lattice=np.eye(3) * 5.0, pressure=pressure,
    ).validate()  # fmt: skip
    store = CrystalStore.create(str(tmp_path / "one.zarr"))
    store.append([record])
    return CrystalDataset(store, indices=[0], properties=("pressure",))


def test_every_tool_gives_the_same_structures_for_one_request_and_seed(
    model, checkpoint, reference, tmp_path
):
    assert all(s.valid for s in reference), "the tiny model should give valid cells here"
    # tools/csp: N samples of one formula are one row with num_per_row = N
    csp = sample_structures(model, [FORMULA], pressure=PRESSURE, num=NUM, seed=SEED, sampler=SAMPLER)
    assert [(s.row, s.index) for s in csp] == [(0, k) for k in range(NUM)]
    for a, b in zip(csp, reference, strict=True):
        np.testing.assert_array_equal(a.crystal.frac_coords, b.crystal.frac_coords)
        np.testing.assert_array_equal(a.crystal.lattice, b.crystal.lattice)
    # tools/benchmark: ModelSampler
    (group,) = ModelSampler(model, sampler=SAMPLER)([FORMULA], [PRESSURE], num=NUM, seed=SEED)
    for structure, s in zip(group, reference, strict=True):
        _same(structure, s)
    # tools/evaluate: a target of that cell formula and pressure
    dataset = _dataset(tmp_path, [14, 8, 14, 8, 8, 8], PRESSURE)
    groups, failed, _ = sample_targets(model, dataset, EvalSettings(seed=SEED, sampler=SAMPLER), NUM)
    assert failed == {}
    for structure, s in zip(groups[0], reference, strict=True):
        _same(structure, s)
    # tools/sample, through the command line (extxyz keeps ~1e-8 Å)
    out = tmp_path / "cli"
    args = ["-k", str(checkpoint), "--formula", FORMULA, "--pressure", str(PRESSURE), "-n", str(NUM)]
    res = runner.invoke(
        sample_app, [*args, "--seed", str(SEED), *FLAGS, "--format", "extxyz", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    frames = read(out / "samples.extxyz", index=":")
    assert len(frames) == NUM
    for atoms, s in zip(frames, reference, strict=True):
        np.testing.assert_allclose(atoms.cell.array, s.crystal.lattice, atol=1e-6)
        cart = s.crystal.frac_coords @ s.crystal.lattice
        np.testing.assert_allclose(atoms.positions, cart, atol=1e-5)


def test_csp_deals_samples_round_robin_over_cell_formulas(model):
    formulas = ["Si1O2", "Si2O4"]
    got = sample_structures(model, formulas, pressure=PRESSURE, num=3, seed=SEED, sampler=SAMPLER)
    rows = sample_requests(
        model, make_requests(model, formulas, [PRESSURE] * 2), num_per_row=2, seed=SEED, sampler=SAMPLER
    )
    by_key = {(s.row, s.index): s for s in rows}
    assert [(s.row, s.index) for s in got] == [(0, 0), (1, 0), (0, 1)]  # sample k: row k % F, index k // F
    for s in got:
        np.testing.assert_array_equal(s.crystal.frac_coords, by_key[(s.row, s.index)].crystal.frac_coords)


def test_the_option_block_defaults_are_sampler_configs():
    """Every sampler flag maps to a SamplerConfig field and defaults to "not given"."""
    fields = {f.name for f in dataclasses.fields(SamplerConfig)}
    mapped = {_options.SAMPLER.fields.get(p.name, p.name) for p in _options.SAMPLER.params}
    assert mapped <= fields and len(mapped) == len(_options.SAMPLER.params)
    assert all(p.default is None for p in _options.SAMPLER.params)
    assert resolve(SampleConfig, table="sample").sampler == SamplerConfig()
    flags = {"sampler": dict.fromkeys(mapped)}
    assert resolve(SampleConfig, table="sample", nested_flags=flags).sampler == SamplerConfig()


def test_flags_override_the_toml_table(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[sampler]\nmethod = "langevin"\nsteps_per_level = 2\nstep_lr = 3e-4\nlevels = 5\n')
    flags = {"sampler": {"step_lr": 1e-3, "final_denoise": False, "levels": None}}
    got = resolve(SampleConfig, table="sample", path=path, nested_flags=flags).sampler
    assert got == SamplerConfig(
        method="langevin", steps_per_level=2, step_lr=1e-3, levels=5, final_denoise=False
    )
    path.write_text("[sampler]\nsteps = 2\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['steps'\] in \[sampler\]"):
        resolve(SampleConfig, table="sample", path=path)
    path.write_text("[other]\nx = 1\n")
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['other'\]"):
        resolve(SampleConfig, table="sample", path=path)
    path.write_text('[sample]\nnum = "many"\n')
    with pytest.raises((ValueError, TypeError)):
        resolve(SampleConfig, table="sample", path=path)


def test_flags_and_toml_round_trip_through_the_run_record(checkpoint, model, tmp_path):
    table = tmp_path / "sampler.toml"
    table.write_text('[sampler]\nmethod = "langevin"\nsteps_per_level = 2\nlevels = 3\nskin = 0.5\n')
    first = tmp_path / "first"
    args = ["-k", str(checkpoint), "--formula", FORMULA, "--pressure", "5", "-n", "2", "--seed", "1"]
    flags = ["--config", str(table), "--step-lr", "2e-4", "--no-final-denoise", "--batch-size", "3"]
    res = runner.invoke(
        sample_app, [*args, *flags, "--device", "cpu", "--format", "extxyz", "-o", str(first)]
    )
    assert res.exit_code == 0, res.output
    expected = SamplerConfig(
        method="langevin",
        steps_per_level=2,
        levels=3,
        skin=0.5,
        step_lr=2e-4,
        final_denoise=False,
        batch_size=3,
    )
    record = tomllib.loads((first / "run.toml").read_text())
    assert SamplerConfig.from_dict(record["sampler"]) == expected
    assert record["sample"]["formula"] == FORMULA and record["sample"]["num"] == 2
    calls = expected.decoder_calls(len(model.sigmas))
    assert record["derived"]["decoder_calls_per_structure"] == calls == 6
    assert record["summary"]["decoder_calls"] == 2 * calls
    # the run.toml is a whole config: with no flag at all the second run samples the same structures
    second = tmp_path / "second"
    res = runner.invoke(sample_app, ["--config", str(first / "run.toml"), "-o", str(second)])
    assert res.exit_code == 0, res.output
    again = tomllib.loads((second / "run.toml").read_text())
    assert again["sampler"] == record["sampler"] and again["sample"] == record["sample"]
    assert (second / "samples.extxyz").read_text() == (first / "samples.extxyz").read_text()


def test_a_bad_sampler_value_fails_clearly_and_writes_nothing(checkpoint, tmp_path):
    out = tmp_path / "out"
    args = ["-k", str(checkpoint), "--formula", FORMULA, "--pressure", "5", "-o", str(out), "--device", "cpu"]
    res = runner.invoke(sample_app, [*args, "--sampler", "euler"])
    assert res.exit_code == 1 and "method must be one of" in res.output
    assert not out.exists() or not any(out.iterdir())


def test_a_flag_the_method_does_not_read_is_reported(checkpoint, tmp_path):
    assert _options.unused_sampler_flags("pc", {"steps_per_level": 10, "snr": 0.2}) == ["--steps-per-level"]
    assert _options.unused_sampler_flags("langevin", {"snr": 0.2, "levels": None}) == ["--snr"]
    args = ["-k", str(checkpoint), "--formula", FORMULA, "--pressure", "5", "-n", "1", "--device", "cpu"]
    res = runner.invoke(sample_app, [*args, "--sampler", "pc", "--steps-per-level", "3", "--levels", "3",
                                     "-o", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output.count("warning: --steps-per-level is ignored by --sampler pc") == 1
    assert "ignored by" in tomllib.loads((tmp_path / "o" / "run.toml").read_text())["derived"]["warnings"][0]


def test_csp_and_evaluate_record_the_sampler(checkpoint, model, tmp_path):
    from xtal_tools.cli.csp import app as csp_app

    out = tmp_path / "csp"
    args = [
        "-k",
        str(checkpoint),
        "-f",
        FORMULA,
        "-p",
        "5",
        "-n",
        "2",
        "--no-relax",
        "--no-progress",
        "-o",
        str(out),
    ]
    res = runner.invoke(csp_app, [*args, "--seed", "1", "--sampler", "ode", *FLAGS])
    assert res.exit_code == 0, res.output
    config = tomllib.loads((out / "5GPa" / "run.toml").read_text())
    expected = SamplerConfig(method="ode", levels=3, batch_size=4)
    assert SamplerConfig.from_dict(config["sampler"]) == expected
    assert config["derived"]["decoder_calls_per_structure"] == expected.decoder_calls(len(model.sigmas)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sampler]\nsteps = 2\n", "unknown key(s) ['steps'] in [sampler]"),
        ("[relax]\nfmax = 0.1\n", "unknown table(s) ['relax'] for this command"),
        ("this is not toml", "not valid TOML"),
        ("[sample]\nnum = 0\n", "num must be >= 1, got 0"),
    ],
)
def test_a_bad_config_file_fails_clearly_and_writes_nothing(checkpoint, tmp_path, text, message):
    path, out = tmp_path / "s.toml", tmp_path / "out"
    path.write_text(text)
    args = ["-k", str(checkpoint), "--formula", FORMULA, "--pressure", "5", "--config", str(path)]
    res = runner.invoke(sample_app, [*args, "-o", str(out)])
    assert res.exit_code == 1, res.output
    assert f"--config {path}" in res.output and message in res.output
    assert not out.exists()
