"""COV-R / COV-P end to end with CDVAE's fingerprints (needs the ``coverage`` extra: matminer).

Generated = a subset of the references, so the expected coverage is known exactly: recall is the
subset's share, precision is 1, and every generated structure sits at distance 0 from a reference.
"""

import numpy as np
import pytest

from tests.xtal_eval._helpers import grid_structures  # noqa: F401  (keeps the helper import path checked)

pytestmark = pytest.mark.torch_free
pytest.importorskip("matminer", reason="COV fingerprints need the coverage extra (matminer)")


def _references():
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    mgo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return [nacl, cscl, si, mgo]


def test_coverage_of_a_subset_of_the_references_is_exact():
    from xtal_eval.generation import coverage, fingerprints

    refs = _references()
    ref_struct, ref_comp = fingerprints(refs)
    assert ref_struct.shape[0] == ref_comp.shape[0] == 4 and ref_comp.shape[1] == 132
    assert np.isfinite(ref_struct).all() and np.isfinite(ref_comp).all()
    gen_struct, gen_comp = fingerprints(refs[:2])
    cov = coverage(gen_struct, gen_comp, ref_struct, ref_comp, cutoffs="mp20")
    assert cov.cov_recall == pytest.approx(0.5) and cov.cov_precision == pytest.approx(1.0)
    assert cov.amsd_precision == pytest.approx(0.0, abs=1e-9)


def test_gen_cli_reports_coverage(tmp_path):
    import json

    from typer.testing import CliRunner
    from xtal_eval.cli import app

    refs = _references()
    for folder, structures in (("gen", refs[:2]), ("ref", refs)):
        (tmp_path / folder).mkdir()
        for i, s in enumerate(structures):
            s.to(filename=str(tmp_path / folder / f"{i}.cif"))
    out = tmp_path / "gen.json"
    args = ["gen", str(tmp_path / "gen"), str(tmp_path / "ref"), "--cov", "mp20", "--json", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cov = json.loads(out.read_text())["coverage"]
    assert cov["cov_recall"] == pytest.approx(0.5) and cov["cov_precision"] == pytest.approx(1.0)
