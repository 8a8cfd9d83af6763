"""Shared helpers for the xtal_data tests: hand-made structures and hypothesis strategies (numpy only)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from xtal_data import CrystalRecord

SALT_A = 5.64  # Å, rock-salt NaCl conventional cell


def rock_salt(id: str = "nacl", a: float = SALT_A, pressure: float = 0.0, **properties) -> CrystalRecord:
    """Conventional NaCl cell (8 atoms); shortest distance a / 2."""
    base = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac = np.concatenate([base, base + [0.5, 0, 0]]) % 1.0
    z = np.array([11] * 4 + [17] * 4)
    return CrystalRecord(id, z, frac, np.eye(3) * a, pressure, properties).validate()


def simple_cubic(id: str, a: float, z: int = 6, pressure: float = 0.0, **properties) -> CrystalRecord:
    """One atom in a cubic cell of edge ``a`` Å: its shortest distance is ``a`` (to its own image)."""
    return CrystalRecord(id, np.array([z]), np.zeros((1, 3)), np.eye(3) * a, pressure, properties).validate()


CIF_NACL = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_type_symbol
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na Na0 0.0 0.0 0.0 1
Na Na1 0.5 0.5 0.0 1
Na Na2 0.5 0.0 0.5 1
Na Na3 0.0 0.5 0.5 1
Cl Cl0 0.5 0.0 0.0 1
Cl Cl1 0.0 0.5 0.0 1
Cl Cl2 0.0 0.0 0.5 1
Cl Cl3 0.5 0.5 0.5 1
"""

POSCAR_SI = """Si2
1.0
0.0 2.715 2.715
2.715 0.0 2.715
2.715 2.715 0.0
Si
2
Direct
0.0 0.0 0.0
0.25 0.25 0.25
"""


@st.composite
def records(draw, id: str | None = None, max_atoms: int = 12) -> CrystalRecord:
    """Random valid records: any element, coordinates in [0, 1), well-conditioned lattice, properties."""
    n = draw(st.integers(1, max_atoms))
    z = draw(arrays(np.int64, n, elements=st.integers(1, 118)))
    frac = draw(arrays(np.float64, (n, 3), elements=st.floats(0, 1, exclude_max=True, width=64)))
    lengths = draw(arrays(np.float64, 3, elements=st.floats(2.0, 30.0)))
    shear = draw(arrays(np.float64, (3, 3), elements=st.floats(-0.3, 0.3)))
    lattice = np.diag(lengths) + shear * lengths[:, None]
    pressure = draw(st.floats(0, 500, allow_nan=False))
    props = {}
    if draw(st.booleans()):
        props["energy"] = draw(st.floats(-20, 5, allow_nan=False))
    if draw(st.booleans()):
        props["source"] = draw(
            st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=8)
        )
    ident = (
        id
        if id is not None
        else draw(
            st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=12)
        )
    )
    return CrystalRecord(ident, z, frac, lattice, pressure, props)
