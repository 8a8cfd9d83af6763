"""``xtal_eval.structure_files``: the shared format detection and CIF / POSCAR parsing."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure
from xtal_eval.io import load_structures
from xtal_eval.structure_files import parse_structures, read_structure_file, structure_format

pytestmark = pytest.mark.torch_free

NACL = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.cif", "cif"),
        ("dir/B.CIF", "cif"),
        ("x.vasp", "poscar"),
        ("x.poscar", "poscar"),
        ("POSCAR", "poscar"),
        ("contcar_3", "poscar"),
        ("notes.txt", None),
        ("a.xyz", None),
    ],
)
def test_structure_format(name, fmt):
    assert structure_format(name) == fmt


def test_parse_both_formats_and_every_cif_block():
    cif = NACL.to(fmt="cif")
    assert parse_structures(cif, "cif")[0].matches(NACL)
    assert len(parse_structures(cif + "\n" + cif.replace("data_", "data_b", 1), "cif")) == 2
    assert parse_structures(NACL.to(fmt="poscar"), "poscar")[0].matches(NACL)
    with pytest.raises(ValueError, match="unknown structure format 'xyz'"):
        parse_structures("", "xyz")


def test_read_structure_file_names_the_file(tmp_path):
    (tmp_path / "s.poscar").write_text(NACL.to(fmt="poscar"))
    assert read_structure_file(tmp_path / "s.poscar").matches(NACL)
    assert load_structures(tmp_path).ids == ("s",)  # a .poscar file in a folder is read too
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a nonsense\n")
    with pytest.warns(UserWarning):
        with pytest.raises(ValueError, match=r"bad.cif: cannot read structure file"):
            read_structure_file(tmp_path / "bad.cif")
    with pytest.raises(ValueError, match=r"my label: cannot read structure file .*not a CIF or POSCAR"):
        read_structure_file(tmp_path / "notes.txt", "my label")
