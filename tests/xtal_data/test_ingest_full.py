"""Full MP-20 validation file in parallel (slow; run by the main suite only, not the torch-free job)."""

from __future__ import annotations

import pytest
from xtal_data import CrystalStore, ingest


@pytest.mark.slow
def test_mp20_full_file_in_parallel(shared_data, tmp_path):
    report = ingest(
        str(shared_data / "mp_20" / "val.feather"), str(tmp_path / "mp.zarr"), workers=2, progress=False
    )
    assert (report.read, report.written, len(report.skipped)) == (9047, 9047, 0)
    assert len(CrystalStore.open(str(tmp_path / "mp.zarr"))) == 9047
