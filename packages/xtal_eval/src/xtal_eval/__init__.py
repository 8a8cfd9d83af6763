"""Torch-free structure matching and generation metrics for crystal generation and CSP."""

__version__ = "0.1.0"

__all__ = ["__version__"]
