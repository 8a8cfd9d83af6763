"""The Dask backend on an in-process local cluster (needs the ``dask`` extra; skipped without it)."""

import pytest
from pymatgen.core import Lattice, Structure
from xtal_eval import Parallel, match_pairs

from tests.xtal_eval._helpers import perturbed

distributed = pytest.importorskip("distributed")


def test_dask_backend_equals_serial():
    gt = [Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])] * 3 + [
        Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    ]
    preds = [perturbed(s, seed=i, sigma=0.05) for i, s in enumerate(gt)][::-1]
    serial = match_pairs(preds, gt, presets="cdvae,strict", chunk_size=1)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            remote = match_pairs(
                preds,
                gt,
                presets="cdvae,strict",
                chunk_size=1,
                parallel=Parallel(backend="dask", client=client),
            )
    assert remote == serial
    assert serial.matched("cdvae").tolist() == [False, True, True, False]
