"""Relaxation RMSD, validity, reconstruction summaries and the execution backends."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure
from xtal_eval import Parallel, match_pairs, reconstruction, relaxation_rmsd, structure_valid, validity
from xtal_eval.geometry import min_image_vectors
from xtal_eval.parallel import run_tasks

from tests.xtal_eval._helpers import perturbed, structures

pytestmark = pytest.mark.torch_free


def _brute_min_image(dfrac, lattice, reach=6):
    r = np.arange(-reach, reach + 1)
    images = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    cand = (dfrac[:, None, :] + images[None]) @ lattice
    return np.linalg.norm(cand, axis=-1).min(axis=1)


@given(
    shear=st.floats(-3.0, 3.0),
    dfrac=st.lists(st.lists(st.floats(-2, 2), min_size=3, max_size=3), min_size=1, max_size=6),
)
def test_min_image_is_exact_in_skewed_cells(shear, dfrac):
    lattice = np.array([[4.0, 0, 0], [shear * 4.0, 3.0, 0], [1.3, -2.2, 5.0]])
    dfrac = np.array(dfrac)
    got = np.linalg.norm(min_image_vectors(dfrac, lattice), axis=-1)
    np.testing.assert_allclose(got, _brute_min_image(dfrac, lattice), rtol=0, atol=1e-9)


def test_min_image_beats_27_images_on_a_skewed_cell():
    lattice = np.array([[1.0, 0, 0], [5.5, 0.3, 0], [0, 0, 5.0]])
    d = np.array([[0.5, 0.5, 0.0]])
    naive = np.min(
        [np.linalg.norm((d + np.array([i, j, 0])) @ lattice) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    )
    exact = np.linalg.norm(min_image_vectors(d, lattice))
    assert exact < naive - 1e-3


def test_relaxation_rmsd_is_minimum_image_in_unrelaxed_lattice():
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.99, 0, 0], [0.5, 0.5, 0.5]])
    relaxed = Structure(Lattice.cubic(4.4), ["Na", "Cl"], [[0.01, 0, 0], [0.5, 0.5, 0.5]])
    # Na moves 0.02 fractional across the boundary = 0.08 Å in the unrelaxed lattice; Cl does not move
    assert relaxation_rmsd(s, relaxed) == pytest.approx(np.sqrt(0.08**2 / 2), abs=1e-12)


def test_structure_validity_rules():
    ok = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    close = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.1, 0, 0]])  # 0.4 Å apart
    wrap = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.99, 0, 0], [0.05, 0, 0]])  # 0.24 Å across the cell
    assert structure_valid(ok) and not structure_valid(close) and not structure_valid(wrap)
    assert not structure_valid(Structure(Lattice.cubic(0.4), ["C"], [[0, 0, 0]]))  # volume 0.064 < 0.1 Å^3
    # one site, volume 0.125: valid, as in the reference (a site and its own images are not a pair)
    assert structure_valid(Structure(Lattice.cubic(0.5), ["C"], [[0, 0, 0]]))


def test_smact_composition_validity():
    pytest.importorskip("smact")
    from xtal_eval import composition_valid

    assert composition_valid(Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]))
    assert not composition_valid(
        Structure(Lattice.cubic(4.0), ["Na", "Na", "Cl"], [[0, 0, 0], [0.5] * 3, [0.2] * 3])
    )
    assert composition_valid(Structure(Lattice.cubic(4.0), ["Fe", "Ni"], [[0, 0, 0], [0.5] * 3]))  # alloy
    report = validity([Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])])
    assert report.summary() == {"struct_valid": 0.0, "comp_valid": 1.0, "valid": 0.0}


def test_reconstruction_gates_and_means():
    pytest.importorskip("smact")
    gt = [
        Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]),
        Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3]),
        Structure(
            Lattice.cubic(4.0), ["Na", "Na", "Cl"], [[0, 0, 0], [0.5] * 3, [0.25] * 3]
        ),  # not SMACT valid
    ]
    preds = [perturbed(s, seed=i, sigma=0.02) for i, s in enumerate(gt)]
    report = reconstruction(preds, gt, presets="cdvae,strict", spacegroup=True)
    none, pred = report.get("cdvae", "none"), report.get("cdvae", "pred")
    assert (none.n, none.n_matched, pred.n_matched) == (3, 3, 2)
    rms = report.table.rms("cdvae")
    assert none.mean_rmsd == pytest.approx(rms.mean()) and pred.mean_rmsd == pytest.approx(rms[:2].mean())
    assert none.match_rate == 1.0 and pred.match_rate == pytest.approx(2 / 3)


def _square(x):
    return x * x


def test_backends_keep_task_order():
    tasks = list(range(23))
    expected = [t * t for t in tasks]
    assert run_tasks(_square, tasks, Parallel()) == expected
    assert run_tasks(_square, tasks, Parallel(backend="process", n_jobs=2)) == expected
    with pytest.raises(ValueError):
        Parallel(backend="threads")


@pytest.mark.slow
@given(s=structures(min_sites=2, max_sites=4))
def test_process_pool_equals_serial(s):
    first = [perturbed(s, seed=i, sigma=0.1) for i in range(4)]
    second = [s] * 4
    serial = match_pairs(first, second, presets="paper", chunk_size=1)
    pooled = match_pairs(
        first, second, presets="paper", chunk_size=1, parallel=Parallel(backend="process", n_jobs=2)
    )
    assert serial == pooled


def test_csp_gate_excludes_invalid_samples_from_match_at_k():
    pytest.importorskip("smact")
    from xtal_eval import csp

    target = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    squashed = Structure(
        Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.07, 0, 0]]
    )  # 0.39 Å apart: invalid
    good = perturbed(target, seed=0, sigma=0.02)
    samples = [[squashed, good]]
    ungated = csp([target], samples, presets="cdvae", ks=(1, 2))
    gated = csp([target], samples, presets="cdvae", ks=(1, 2), gate="pred")
    assert gated.n_gated == 1
    assert gated.get("cdvae").match_rate(2) == 1.0 and gated.get("cdvae").match_rate(1) == 0.0
    # the curve is never gated (statgen): identical with and without the gate
    assert ungated.get("cdvae").first_match.tolist() == gated.get("cdvae").first_match.tolist()


def test_progress_bar_and_json_report(tmp_path):
    import io
    import json

    from xtal_eval.parallel import Progress
    from xtal_eval.report import write_json

    stream = io.StringIO()
    bar = Progress(3, desc="match", stream=stream)
    for _ in range(3):
        bar.update()
    assert "3/3" in stream.getvalue() and stream.getvalue().endswith("\n")
    write_json(tmp_path / "r.json", {"a": np.float64(np.nan), "b": np.arange(2), "c": np.bool_(True)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": None, "b": [0, 1], "c": True}


def test_csp_spacegroup_agreement_of_best_sample():
    from xtal_eval import csp

    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    lowered = rocksalt.copy()
    # tetragonal strain: another space group, yet RMS ~0 (the matcher compares on an averaged lattice)
    lowered.apply_strain([0.15, 0.0, 0.0])
    samples = [[perturbed(rocksalt, seed=0, sigma=0.01, strain=0.0), lowered]]
    report = csp([rocksalt], samples, presets="cdvae", ks=(1, 2), spacegroup=True)
    res = report.get("cdvae")
    assert res.best_index.tolist() == [[0, 1]]
    assert res.same_spacegroup.tolist() == [[True, False]]
    assert res.spacegroup_agreement(1) == 1.0 and res.spacegroup_agreement(2) == 0.0
