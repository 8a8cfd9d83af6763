"""Structure map (Fig. 4): descriptors, seeded embeddings, statistics, outputs (fake sampler, no model)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("pyxtal", reason="the random twins need pyxtal (xtal-tools dependency)")
pytest.importorskip(
    "sklearn", reason="the t-SNE embedding needs scikit-learn (extra xtal-tools[structure-map])"
)

from pymatgen.core import Lattice, Structure  # noqa: E402
from xtal_tools.evaluation.structure_map import (  # noqa: E402
    StructureMapSettings,
    describe,
    embed,
    map_stats,
    run_structure_map,
)

FCC = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
PNG = b"\x89PNG\r\n\x1a\n"


class PressureCu:
    """Cu4 fcc whose lattice constant shrinks with the requested pressure, slightly rattled per sample;
    sample 0 at 25 GPa is an invalid cell (None)."""

    def __init__(self):
        self.calls = []

    def __call__(self, formulas, pressures, *, num, seed):
        (p,) = pressures
        self.calls.append((formulas[0], p, num, seed))
        rng = np.random.default_rng(seed)
        a = 3.6 * (1 - 0.004 * p)
        return [
            [
                None
                if (p == 25.0 and j == 0)
                else Structure(Lattice.cubic(a), ["Cu"] * 4, FCC + rng.normal(0, 0.01, (4, 3)))
                for j in range(num)
            ]
        ]


def _run(**kw):
    settings = StructureMapSettings(
        pressures=(0.0, 25.0, 50.0), num_per_target=8, descriptor="rdf", embedding="tsne", seed=3, **kw
    )
    return run_structure_map(PressureCu(), ["Cu4"], settings, volumes={("Cu4", 25.0): 40.0})


@pytest.fixture(scope="module")
def result():
    return _run()


def test_rows_and_statistics(result):
    rows = result.rows
    assert len(rows) == 3 * 8 * 2
    made = [r for r in rows if r["status"] == "made"]
    assert len(made) == 47  # one invalid generated cell; its twin still made from the given volume
    bad = next(r for r in rows if r["id"] == "generated/Cu4/25/0")
    assert bad["status"] == "not_made" and np.isnan(bad["x"])
    twin = next(r for r in rows if r["id"] == "pyxtal/Cu4/25/0")
    assert twin["status"] == "made" and twin["volume_per_atom_A3"] == pytest.approx(10.0)
    assert all(np.isfinite(r["x"]) and np.isfinite(r["y"]) for r in made)
    st = result.stats
    # the fake's volume follows pressure: generated neighbours share their pressure far above chance
    assert st["pressure_neighbour_agreement"] > 0.9 > 0.5 > st["pressure_neighbour_chance"]
    assert st["spread_mean"]["generated"] < st["spread_mean"]["pyxtal"]  # rattled fcc vs random cells


def test_pressure_agreement_falls_to_chance_when_pressure_is_ignored():
    rng = np.random.default_rng(0)
    rows = [
        {"formula": "A", "source": "generated", "pressure_GPa": float(p)} for p in np.repeat([0, 10, 20], 10)
    ]
    x = rng.normal(size=(30, 4))  # descriptors unrelated to the pressure
    st = map_stats(rows, x, k=5)
    assert st["pressure_neighbour_chance"] == pytest.approx(9 / 29)
    assert abs(st["pressure_neighbour_agreement"] - 9 / 29) < 0.2
    x += 100 * np.repeat([0, 1, 2], 10)[:, None]  # now they separate by pressure
    assert map_stats(rows, x, k=5)["pressure_neighbour_agreement"] == 1.0


def test_seeded_and_reproducible(result):
    again = _run()
    assert [(r["x"], r["y"]) for r in again.rows] == pytest.approx(
        [(r["x"], r["y"]) for r in result.rows], nan_ok=True
    )
    other = _run(random_twins=False)
    assert {r["source"] for r in other.rows} == {"generated"}


def test_outputs(result, tmp_path):
    summary = result.write(tmp_path, meta={"note": "x"})
    assert summary["counts"]["generated"] == {"n": 24, "n_made": 23}
    assert json.loads((tmp_path / "summary.json").read_text())["note"] == "x"
    with (tmp_path / "structure_map.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 48 and {"x", "y", "pressure_GPa", "source"} <= set(rows[0])
    assert (tmp_path / "structure_map.png").read_bytes()[:8] == PNG


def test_soap_descriptor_and_umap_when_installed():
    pytest.importorskip("dscribe", reason="SOAP needs dscribe (extra xtal-tools[structure-map])")
    s = StructureMapSettings(descriptor="soap", r_cut=4.0, n_max=2, l_max=1)
    a = Structure(Lattice.cubic(3.6), ["Cu"] * 4, FCC)
    b = a.copy()
    b.apply_operation(
        __import__("pymatgen.core.operations", fromlist=["x"]).SymmOp.from_axis_angle_and_translation(
            [1, 1, 0], 33.0
        )
    )  # rotated copy: same SOAP
    c = Structure(Lattice.cubic(3.0), ["Cu"] * 4, FCC)
    x = describe([a, b, c], s)
    assert x.shape[0] == 3 and np.allclose(x[0], x[1], atol=1e-6) and not np.allclose(x[0], x[2], atol=1e-3)
    pytest.importorskip("umap", reason="UMAP needs umap-learn (extra xtal-tools[structure-map])")
    z = np.random.default_rng(0).normal(size=(20, 5))
    u = StructureMapSettings(embedding="umap", seed=1)
    assert np.array_equal(embed(z, u), embed(z, u))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="descriptor"):
        StructureMapSettings(descriptor="mbtr")
    with pytest.raises(ValueError, match="embedding"):
        StructureMapSettings(embedding="pca")
    with pytest.raises(ValueError, match="pressures"):
        StructureMapSettings(pressures=(float("nan"),))


def test_a_missing_optional_dependency_names_the_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dscribe" else real(name, *a)
    )
    sampler = PressureCu()
    with pytest.raises(ImportError, match=r"pip install 'xtal-tools\[structure-map\]'"):
        run_structure_map(sampler, ["Cu4"], StructureMapSettings(descriptor="soap", embedding="tsne"))
    assert sampler.calls == []  # refused before any sampling
    with pytest.raises(ValueError):
        run_structure_map(sampler, ["Cu0"], StructureMapSettings(descriptor="rdf", embedding="tsne"))
