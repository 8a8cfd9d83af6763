"""examples/xtal_eval_only.py and examples/xtal_eval_recon.py: metrics without torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.examples._helpers import load_example, run_example

pytestmark = pytest.mark.torch_free


def test_demo_runs_without_torch_and_writes_curve_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "eval"
    proc = run_example(
        "xtal_eval_only", "--demo", str(tmp_path / "demo"), "--out", str(out), check_no_torch=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "NO_TORCH_OK" in proc.stdout
    assert "6 targets, 5 samples each, 3 missing" in proc.stdout
    summary = json.loads((out / "csp.json").read_text())
    assert set(summary) == {"cdvae", "paper", "strict"}
    for preset, s in summary.items():
        curve = np.asarray(s["success_curve"])
        assert curve.shape == (5,)
        assert np.all(np.diff(curve) >= 0), preset  # success can only grow with more samples
        # every target has one close copy (0.02 Å) among its five samples: all presets find it
        assert curve[-1] == pytest.approx(1.0) == s["match_rate@5"]
        assert s["match_rate@1"] == pytest.approx(curve[0])
        assert s["match_rate@1"] >= 2 / 6  # targets 0 and 5 have their close copy first
    assert (out / "csp_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_samples_count_as_no_match(tmp_path, monkeypatch):
    example = load_example("xtal_eval_only", monkeypatch)
    targets, samples = example.write_demo(tmp_path / "demo", num=5)
    grouped = example.samples_by_row(samples, num_targets=6, num=5)
    assert [sum(s is None for s in row) for row in grouped] == [0, 1, 0, 1, 0, 1]
    assert grouped[1][2] is None  # row 1 skipped index (1 + 1) % 5


def test_badly_named_or_out_of_range_sample_files_fail_clearly(tmp_path, monkeypatch):
    example = load_example("xtal_eval_only", monkeypatch)
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sample.cif").write_text("data_x\n")
    with pytest.raises(ValueError, match="sample.cif: not named"):
        example.samples_by_row(folder, num_targets=1, num=1)
    (folder / "sample.cif").unlink()
    (folder / "00003_NaCl_0000.cif").write_text("data_x\n")
    with pytest.raises(ValueError, match="row 3 but the test set has 2 targets"):
        example.samples_by_row(folder, num_targets=2, num=1)


def test_without_inputs_it_exits_with_usage(tmp_path):
    proc = run_example("xtal_eval_only", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "give TARGETS and SAMPLES, or --demo DIR" in proc.stderr


@pytest.mark.data
def test_recon_example_on_mp20(shared_data):
    pytest.importorskip("smact")  # the example reports the CDVAE validity gates
    proc = run_example(
        "xtal_eval_recon",
        "--data",
        str(shared_data / "mp_20" / "val.feather"),
        "--n",
        "6",
        check_no_torch=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "NO_TORCH_OK" in proc.stdout
    assert (
        proc.stdout.count("recon ") == 9 and proc.stdout.count("csp ") == 2
    )  # 3 presets x 3 gates; 2 presets


@pytest.mark.data
def test_dask_example_gives_identical_results_on_every_backend(shared_data):
    pytest.importorskip("distributed")
    data = str(shared_data / "mp_20" / "val.feather")
    proc = run_example("xtal_eval_dask", "--data", data, "--n", "8", "--workers", "2", check_no_torch=True)
    assert proc.returncode == 0, proc.stderr
    assert "NO_TORCH_OK" in proc.stdout
    assert "identical results on every backend: True" in proc.stdout
    assert "process pool x2" in proc.stdout and "dask (2 workers)" in proc.stdout
