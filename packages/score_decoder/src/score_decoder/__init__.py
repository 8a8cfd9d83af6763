"""GemNet score network: noise-conditional, per-atom Cartesian score vectors, equivariant by construction."""

__version__ = "0.1.0"

__all__ = ["__version__"]
