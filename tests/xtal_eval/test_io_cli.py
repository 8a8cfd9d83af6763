"""Input readers, clear errors naming the culprit, and the ``xtal-eval`` command line."""

import json
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from xtal_eval import StructureSet, load_structures, match_pairs, pair_sets, relaxation_rmsds

pytestmark = pytest.mark.torch_free

typer_testing = pytest.importorskip("typer.testing")


def _nacl(shift=0.0) -> Structure:
    return Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5 + shift, 0.5, 0.5]])


def _write_csv(path, ids, structures):
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        for i, s in zip(ids, structures, strict=True):
            writer.writerow([i, s.to(fmt="cif")])


@pytest.fixture
def files(tmp_path):
    gts = [_nacl(), Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])]
    preds = [_nacl(0.01), Structure(Lattice.cubic(4.3), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.48]])]
    _write_csv(tmp_path / "gt.csv", ["a", "b"], gts)
    folder = tmp_path / "pred"
    folder.mkdir()
    for i, s in enumerate(preds):
        s.to(filename=str(folder / f"{i}.cif"))
    return tmp_path, preds, gts


def test_readers_agree_and_keep_ids(files):
    tmp, preds, gts = files
    table = load_structures(tmp / "gt.csv")
    assert table.ids == ("a", "b") and len(table) == 2
    assert load_structures(tmp / "gt.csv", limit=1).ids == ("a",)
    folder = load_structures(tmp / "pred")
    assert folder.ids == ("0", "1")
    assert np.allclose(folder.structures[1].frac_coords, preds[1].frac_coords, atol=1e-6)
    one = load_structures(tmp / "pred" / "1.cif")
    assert one.ids == ("1",)
    preds[0].to(filename=str(tmp / "POSCAR"))
    assert load_structures(tmp / "POSCAR").structures[0].composition == preds[0].composition


def test_extxyz_and_ase_atoms(tmp_path):
    ase_io = pytest.importorskip("ase.io")
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = [AseAtomsAdaptor.get_atoms(_nacl()), AseAtomsAdaptor.get_atoms(_nacl(0.02))]
    ase_io.write(tmp_path / "x.extxyz", atoms, format="extxyz")
    got = load_structures(tmp_path / "x.extxyz")
    assert len(got) == 2 and got.structures[1].composition.reduced_formula == "NaCl"
    assert len(load_structures(atoms)) == 2


def test_bad_input_names_the_item(files, tmp_path):
    tmp, _, _ = files
    (tmp / "pred" / "2.cif").write_text("data_broken\n_cell_length_a nonsense\n")
    with pytest.raises(ValueError, match="2.cif"):
        load_structures(tmp / "pred")
    with open(tmp / "bad.csv", "w") as handle:
        handle.write("material_id,cif\nx1,not a cif\n")
    with pytest.raises(ValueError, match="row 0.*x1"):
        load_structures(tmp / "bad.csv")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_structures(tmp / "missing")
    with pytest.raises(ValueError, match="empty"):
        load_structures([])
    with pytest.raises(ValueError, match="item 1"):
        load_structures([_nacl(), "not a structure"])
    bad = Structure(Lattice.cubic(4), ["Na"], [[0, 0, 0]])
    bad.lattice = Lattice(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="item 0.*non-finite"):
        load_structures([bad])


def test_mismatched_lengths_and_missing_ids_are_errors():
    with pytest.raises(ValueError, match="lengths differ"):
        match_pairs([_nacl()], [_nacl(), _nacl()])
    with pytest.raises(ValueError, match="empty"):
        match_pairs([], [])
    a = StructureSet((_nacl(), _nacl()), ("x", "y"))
    b = StructureSet((_nacl(), _nacl()), ("x", "z"))
    with pytest.raises(ValueError, match="z"):
        pair_sets(a, b)
    with pytest.raises(ValueError, match="by order"):
        pair_sets(StructureSet((_nacl(),)), StructureSet((_nacl(), _nacl())))
    with pytest.raises(ValueError, match="site 1"):
        relaxation_rmsds([_nacl()], [Structure(Lattice.cubic(5.64), ["Na", "Na"], [[0, 0, 0], [0.5] * 3])])


def test_pairing_by_id_follows_the_second_set():
    a = StructureSet((_nacl(0.01), _nacl(0.02)), ("q", "p"))
    b = StructureSet((_nacl(), _nacl()), ("p", "q"))
    first, _, labels, mode = pair_sets(a, b)
    assert mode == "id" and labels == ["p", "q"] and first[0] is a.structures[1]


def test_cli_recon_writes_json_and_csv(files):
    from xtal_eval.cli import app

    tmp, _, _ = files
    runner = typer_testing.CliRunner()
    out = tmp / "out.json"
    result = runner.invoke(
        app,
        [
            "recon",
            str(tmp / "pred"),
            str(tmp / "gt.csv"),
            "--preset",
            "cdvae",
            "--json",
            str(out),
            "--csv",
            str(tmp / "out.csv"),
            "--no-gates",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["match_rate"] == 1.0 and 0 < summary["mean_rmsd"] < 0.1
    assert summary["pairing"] == "order"
    assert (tmp / "out.csv").read_text().splitlines()[0] == "id,cdvae_matched,cdvae_rms"


def test_cli_bad_input_exits_non_zero_and_writes_nothing(files):
    from xtal_eval.cli import app

    tmp, _, _ = files
    runner = typer_testing.CliRunner()
    out = tmp / "never.json"
    result = runner.invoke(app, ["recon", str(tmp / "pred"), str(tmp / "nothing.csv"), "--json", str(out)])
    assert result.exit_code == 1 and "nothing.csv" in result.output
    assert not out.exists()


def test_cli_match_rmsd_and_csp(files):
    from xtal_eval.cli import app

    tmp, preds, gts = files
    runner = typer_testing.CliRunner()
    r = runner.invoke(
        app, ["match", str(tmp / "pred"), str(tmp / "gt.csv"), "-p", "strict", "--criterion", "fit"]
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["rmsd", str(tmp / "pred"), str(tmp / "gt.csv"), "--json", str(tmp / "r.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp / "r.json").read_text())["mean_rmsd"] > 0
    samples = tmp / "samples"
    for tid, s in (("a", preds[0]), ("b", preds[1])):
        (samples / tid).mkdir(parents=True)
        gts[1 - "ab".index(tid)].to(filename=str(samples / tid / "0.cif"))  # a wrong first sample
        s.to(filename=str(samples / tid / "1.cif"))
    r = runner.invoke(
        app,
        [
            "csp",
            str(tmp / "gt.csv"),
            str(samples),
            "-p",
            "cdvae",
            "--ks",
            "1,2",
            "--json",
            str(tmp / "c.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp / "c.json").read_text())["presets"]["cdvae"]
    assert res["match_rate@1"] == 0.0 and res["match_rate@2"] == 1.0
    assert res["success_curve"]["all"] == [0.0, 1.0]


warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")


def test_reads_an_xtal_data_store(tmp_path):
    xtal_data = pytest.importorskip("xtal_data")
    from xtal_data import CrystalRecord

    records = [CrystalRecord.from_pymatgen(_nacl(), id="n1", pressure=0.0)]
    try:
        store = xtal_data.CrystalStore.create(str(tmp_path / "s.zarr"))
        store.append(records)
    except (AttributeError, TypeError) as exc:  # the store API is owned by xtal-data
        pytest.skip(f"xtal-data store API differs: {exc}")
    got = load_structures(tmp_path / "s.zarr")
    assert got.ids == ("n1",) and got.structures[0].composition.reduced_formula == "NaCl"


def test_cli_gen(files):
    from xtal_eval.cli import app

    tmp, _, _ = files
    runner = typer_testing.CliRunner()
    args = [
        "gen",
        str(tmp / "pred"),
        str(tmp / "gt.csv"),
        "--train",
        str(tmp / "gt.csv"),
        "--json",
        str(tmp / "g.json"),
    ]
    r = runner.invoke(app, [*args, "--csv", str(tmp / "g.csv"), "--no-composition"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp / "g.json").read_text())
    assert summary["uniqueness"] == 1.0 and summary["novelty"] == 0.0 and summary["struct_valid"] == 1.0
    assert summary["wdist_density"] > 0


def test_cli_plots(files):
    pytest.importorskip("matplotlib")
    from xtal_eval.cli import app

    tmp, _, _ = files
    runner = typer_testing.CliRunner()
    png = tmp / "h.png"
    r = runner.invoke(
        app, ["recon", str(tmp / "pred"), str(tmp / "gt.csv"), "--no-gates", "--plot", str(png)]
    )
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_csp_with_a_samples_table(files):
    import csv

    from xtal_eval.cli import app

    tmp, preds, gts = files
    with open(tmp / "samples.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target_id", "cif"])
        for tid, s in (("b", preds[1]), ("a", gts[1]), ("a", preds[0])):
            writer.writerow([tid, s.to(fmt="cif")])
    runner = typer_testing.CliRunner()
    r = runner.invoke(
        app,
        [
            "csp",
            str(tmp / "gt.csv"),
            str(tmp / "samples.csv"),
            "-p",
            "cdvae",
            "--ks",
            "1,2",
            "--json",
            str(tmp / "c.json"),
            "--csv",
            str(tmp / "c.csv"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp / "c.json").read_text())["presets"]["cdvae"]
    assert res["match_rate@1"] == 0.5 and res["match_rate@2"] == 1.0
    rows = (tmp / "c.csv").read_text().splitlines()
    assert rows[1].startswith("a,2,2,") and rows[2].startswith("b,2,1,")
    with open(tmp / "orphan.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["target_id", "cif"], ["zz", preds[0].to(fmt="cif")]])
    r = runner.invoke(app, ["csp", str(tmp / "gt.csv"), str(tmp / "orphan.csv")])
    assert r.exit_code == 1 and "zz" in r.output
