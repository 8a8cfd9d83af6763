"""Thin typer command-line tools over the Cond-CDVAE packages (train, sample, evaluate, csp)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
