"""Zarr crystal store on any fsspec URL: ingestion, curation, splits, statistics.

Core calls::

    from xtal_data import CrystalStore, ingest
    report = ingest("mp_20/val.feather", "mp20.zarr")            # any path or fsspec URL
    store = CrystalStore.open("mp20.zarr")                        # or "s3://bucket/mp20.zarr"
    table = store.read()                                          # CrystalArrays (numpy, ragged)

The core never imports torch; the torch adapter is ``xtal_data.torch_dataset`` (extra ``xtal-data[torch]``).
"""

__version__ = "0.1.0"

from xtal_data.ingest import IngestReport, NothingIngestedError, ingest  # noqa: E402
from xtal_data.integrity import CorruptStoreError  # noqa: E402
from xtal_data.records import CrystalArrays, CrystalRecord  # noqa: E402
from xtal_data.sources import Skip  # noqa: E402
from xtal_data.store import SCHEMA_VERSION, AppendResult, CrystalStore, StoreConfig  # noqa: E402

__all__ = [
    "SCHEMA_VERSION",
    "AppendResult",
    "CorruptStoreError",
    "CrystalArrays",
    "CrystalRecord",
    "CrystalStore",
    "IngestReport",
    "NothingIngestedError",
    "Skip",
    "StoreConfig",
    "__version__",
    "ingest",
]
