"""Cond-CDVAE: a crystal diffusion VAE conditioned on composition and pressure."""

__version__ = "0.1.0"

__all__ = ["__version__"]
