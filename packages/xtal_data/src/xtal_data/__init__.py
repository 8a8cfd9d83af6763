"""Zarr crystal store on any fsspec URL: ingestion, curation, splits."""

__version__ = "0.1.0"

__all__ = ["__version__"]
