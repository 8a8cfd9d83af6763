"""Fixtures for the xtal_data tests: small stores built once per session from the shared datasets."""

from __future__ import annotations

import pytest
from xtal_data import CrystalStore, ingest


@pytest.fixture(scope="session")
def perov_store(shared_data, tmp_path_factory) -> CrystalStore:
    """The full Perov-5 validation split (3,787 structures, 0 GPa) in a local store."""
    url = str(tmp_path_factory.mktemp("stores") / "perov5.zarr")
    ingest(str(shared_data / "perov_5" / "val.csv"), url, pressure=0.0, workers=1, progress=False)
    return CrystalStore.open(url)


@pytest.fixture(scope="session")
def carbon_store(shared_data, tmp_path_factory) -> CrystalStore:
    """The full Carbon-24 validation split (2,032 structures at 10 GPa) in a local store."""
    url = str(tmp_path_factory.mktemp("stores") / "carbon24.zarr")
    ingest(str(shared_data / "carbon_24" / "val.csv"), url, pressure=10.0, workers=1, progress=False)
    return CrystalStore.open(url)
