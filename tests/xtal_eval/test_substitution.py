"""The substitution baseline: element pairing, ranking by likeness, the target volume, reasons, bad input.

Torch-free. Needs ASE (the ``baselines`` extra) for the covalent radii.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

pytest.importorskip("ase", reason="the substitution baseline needs ASE: pip install 'xtal-eval[baselines]'")

from pymatgen.core import Lattice, Structure  # noqa: E402
from xtal_eval.substitution import anonymous_formula, pair_elements, substitution_baseline  # noqa: E402

pytestmark = pytest.mark.torch_free


def rock_salt(a: str, b: str, edge: float) -> Structure:
    return Structure(Lattice.cubic(edge), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a: str, b: str, x: str, edge: float) -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(edge), [a, b, x, x, x], coords)


def test_pairing_by_count_then_electronegativity():
    assert anonymous_formula(Counter({8: 3, 20: 1, 22: 1})) == (3, 1, 1)
    # Sr (X 0.95) < Zr (1.33) pairs with Ca (1.00) < Ti (1.54); O with O
    assert pair_elements(Counter({20: 1, 22: 1, 8: 3}), Counter({38: 1, 40: 1, 8: 3})) == {
        38: 20,
        40: 22,
        8: 8,
    }
    assert pair_elements(Counter({11: 1, 17: 1}), Counter({8: 3, 20: 1, 22: 1})) is None


def test_the_most_alike_reference_first_with_the_targets_elements_and_volume():
    refs = [rock_salt("Li", "F", 4.0), perovskite("Sr", "Zr", "O", 4.1), rock_salt("K", "Br", 6.6)]
    res = substitution_baseline([("Na1Cl1", 45.0), ("Ca1Ti1O3", 56.0)], refs, num_per_target=3)
    nacl, from_lif = res.structures[0][0], res.structures[0][1]
    assert res.seeds[0][:2] == [2, 0]  # KBr is more alike NaCl than LiF is; the perovskite is no analogue
    assert [str(s.specie) for s in nacl] == ["Na", "Cl"] and [str(s.specie) for s in from_lif] == ["Na", "Cl"]
    assert nacl.volume == pytest.approx(45.0) and from_lif.volume == pytest.approx(45.0)
    assert np.allclose(nacl.frac_coords, refs[2].frac_coords) and nacl.lattice.angles == pytest.approx(
        (90,) * 3
    )
    catio3 = res.structures[1][0]
    assert [str(s.specie) for s in catio3] == ["Ca", "Ti", "O", "O", "O"] and catio3.volume == pytest.approx(
        56.0
    )
    assert res.structures[0][2] is None and res.reasons[0][2] == "fewer analogues than samples"
    assert res.structures[1][1:] == [None, None] and res.seeds[1] == [1, -1, -1]
    assert res.failures == {"fewer analogues than samples": 3}
    none = substitution_baseline([("Mg2Si1O4", 70.0)], refs, num_per_target=2)
    assert none.structures == [[None, None]] and none.failures == {"no analogue": 2}


def test_pressure_breaks_ties_between_equal_chemistries():
    refs = [rock_salt("K", "Br", 6.6), rock_salt("K", "Br", 6.0)]
    res = substitution_baseline(
        [("Na1Cl1", 45.0)], refs, num_per_target=2, target_pressures=[20.0], reference_pressures=[0.0, 25.0]
    )
    assert res.seeds == [[1, 0]]
    same = substitution_baseline([("Na1Cl1", 45.0)], refs, num_per_target=2)
    assert same.seeds == [[0, 1]]  # equal distances keep the references' order


def test_bad_input_is_named():
    refs = [rock_salt("K", "Br", 6.6)]
    with pytest.raises(ValueError, match="num_per_target"):
        substitution_baseline([("Na1Cl1", 45.0)], refs, num_per_target=0)
    with pytest.raises(ValueError, match="volume"):
        substitution_baseline([("Na1Cl1", -1.0)], refs, num_per_target=1)
    with pytest.raises(ValueError, match="unknown element"):
        substitution_baseline([("Xq1Cl1", 45.0)], refs, num_per_target=1)
    with pytest.raises(ValueError, match="both the targets and the references"):
        substitution_baseline([("Na1Cl1", 45.0)], refs, num_per_target=1, target_pressures=[0.0])
    with pytest.raises(ValueError, match="pressures: 2 for 1 targets"):
        substitution_baseline(
            [("Na1Cl1", 45.0)], refs, num_per_target=1, target_pressures=[0.0, 1.0], reference_pressures=[0.0]
        )
    disordered = Structure(Lattice.cubic(5.0), [{"K": 0.5, "Na": 0.5}, "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="reference 0 .* is disordered"):
        substitution_baseline([("Na1Cl1", 45.0)], [disordered], num_per_target=1)
