"""Training cells: every crystal shown in its Niggli-reduced cell (``TrainConfig.cells``), the same
structure, one setting per structure whatever cell the data held."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cond_vae import CondCDVAEConfig, lattice_to_scaled_params
from cond_vae.checkpoint import load_checkpoint
from cond_vae.training import TrainConfig, train
from cond_vae.training._cells import ReducedCellData, niggli_transform, with_cells
from cond_vae.training._graph_cache import with_encoder_graphs
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice
from xtal_graph import collate, lattice_from_params, lattice_to_params

from tests.cond_vae._helpers import random_crystals

SKEWS = [
    np.array(m)
    for m in (
        [[1, 1, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [2, 1, 0], [1, 0, 1]],
        [[0, 1, 0], [1, 0, 0], [0, 0, -1]],
    )
]


def _skewed(crystals):
    """The same crystals in other cells: ``L' = S L``, ``frac' = frac S^-1`` (S unimodular)."""
    out = []
    for k, c in enumerate(crystals):
        s = SKEWS[k % len(SKEWS)]
        frac = np.asarray(c.frac_coords) @ np.linalg.inv(s)
        out.append(c.replace(lattice=s @ np.asarray(c.lattice), frac_coords=frac % 1.0))
    return out


def test_niggli_transform_is_unimodular_right_handed_and_gives_pymatgens_reduced_cell():
    for c in _skewed(random_crystals(12, seed=3)):
        t = niggli_transform(c.lattice)
        assert t.dtype == np.int64 and round(np.linalg.det(t)) == 1
        ours = Lattice(t @ np.asarray(c.lattice))
        ref = Lattice(np.asarray(c.lattice)).get_niggli_reduced_lattice()
        assert np.allclose(ours.abc, ref.abc) and np.allclose(ours.angles, ref.angles)


def test_reduced_cells_hold_the_same_structures_and_batches_match_crystals():
    stored = _skewed(random_crystals(9, seed=4))
    data = ReducedCellData(stored)
    assert data.num_changed >= 6
    matcher = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
    for k in range(len(data)):
        reduced = data[k]
        assert abs(np.linalg.det(reduced.lattice)) == pytest.approx(abs(np.linalg.det(stored[k].lattice)))
        assert matcher.fit(reduced.to_pymatgen(), stored[k].to_pymatgen())
        # served in the canonical orientation of their parameters, as the lattice head builds its cells
        canonical = lattice_from_params(*lattice_to_params(torch.tensor(reduced.lattice)))
        assert np.allclose(canonical.numpy(), reduced.lattice, atol=1e-10)
    batch, ref = data.batch([4, 0, 7]), collate([data[4], data[0], data[7]], dtype=torch.float64)
    assert torch.allclose(batch.lattice, ref.lattice, atol=1e-12)
    assert torch.allclose(batch.frac_coords, ref.frac_coords, atol=1e-12)


def test_one_setting_per_structure_whatever_cell_was_stored():
    crystals = random_crystals(6, seed=5)
    a, b = with_cells(crystals, "niggli"), with_cells(_skewed(crystals), "niggli")
    for k in range(6):
        la, aa = lattice_to_params(torch.tensor(a[k].lattice))
        lb, ab = lattice_to_params(torch.tensor(b[k].lattice))
        assert torch.allclose(la, lb, atol=1e-8) and torch.allclose(aa, ab, atol=1e-6)
    assert with_cells(crystals, "as_stored") is crystals
    with pytest.raises(ValueError, match="cells must be one of"):
        with_cells(crystals, "primitive")
    with pytest.raises(ValueError, match="cells must be 'niggli' or 'as_stored'"):
        TrainConfig(cells="conventional")


def test_encoder_graph_sidecars_record_the_cells(tmp_path):
    crystals, encoder = random_crystals(4, seed=6), CondCDVAEConfig.tiny().encoder
    path = tmp_path / "graphs.npz"
    with_encoder_graphs(crystals, encoder=encoder, dtype=torch.float64, where=str(path))
    with pytest.raises(ValueError, match="was built with"):
        reduced = with_cells(crystals, "niggli")
        with_encoder_graphs(reduced, encoder=encoder, dtype=torch.float64, where=str(path), cells="niggli")


def test_training_fits_the_lattice_scaler_on_reduced_cells(tmp_path):
    crystals = _skewed(random_crystals(6, seed=7))
    cfg = TrainConfig(seed=0, device="cpu", batch_size=3, max_steps=1, progress=False, dtype="float64")
    models = {}
    for cells in ("niggli", "as_stored"):
        run = train(cfg.replace(cells=cells), CondCDVAEConfig.tiny(), crystals, None, tmp_path / cells)
        models[cells] = load_checkpoint(run.final_checkpoint)

    def mean_params(data):
        b = collate([data[i] for i in range(len(data))], dtype=torch.float64)
        return lattice_to_scaled_params(b.lattice, b.num_atoms).mean(0)

    for cells, data in (("niggli", with_cells(crystals, "niggli")), ("as_stored", crystals)):
        assert torch.allclose(models[cells].lattice_scaler.mean.double().cpu(), mean_params(data), atol=1e-9)
