"""Cond-CDVAE: a crystal diffusion VAE conditioned on composition and pressure (Luo et al., 2024).

Core calls::

    from cond_vae import CondCDVAE, CondCDVAEConfig, sample, write_cif
    from cond_vae.checkpoint import save_checkpoint, load_checkpoint

    model = CondCDVAE(CondCDVAEConfig.cond_cdvae_4m())
    model.fit_scalers(train_crystals)                      # lattice + pressure scalers (buffers)
    model.volume_prior = fit_volume_prior(train_crystals)  # cell volume from composition + pressure
    model.latent_prior = fit_latent_prior(model, train_crystals)  # after training: where its codes lie
    model.fit_decoder_scale_factors(collate(train_crystals[:128]))  # GemNet scale factors
    out = model(batch, teacher_forcing=True)               # LossOutput; out.total.backward()
    save_checkpoint("ckpt/", model)
    samples = sample(load_checkpoint("ckpt/"), ["Si4O8"], [50.0], num_per_row=10, seed=0)
    write_cif(samples, "out/")
"""

from ._compile import compile_networks
from ._conditioning import CompositionEmbedding, ConditionEncoder, GaussianBasis
from ._config import CondCDVAEConfig, EncoderConfig, ScalarCondition
from ._encoder import LatentStats, PeriodicDimeNetPP
from ._formula import ParsedFormula, check_scalar, parse_formula
from ._latent import LatentPrior, fit_latent_prior
from ._lattice import (
    LatticeCheck,
    LatticeHead,
    lattice_to_scaled_params,
    scaled_params_to_lattice,
    validate_lattices,
)
from ._losses import LossOutput, noise_levels
from ._model import CondCDVAE, build_graph
from ._neighbors import NeighborList
from ._scalers import RunningStats, Standardizer
from ._volume import VolumePrior, fit_volume_prior
from ._writers import WriteReport, write_cif, write_extxyz, write_store
from .sampling import SampledStructure, SamplerConfig, reconstruct, sample

__version__ = "0.1.0"

__all__ = [
    "CompositionEmbedding",
    "CondCDVAE",
    "CondCDVAEConfig",
    "ConditionEncoder",
    "EncoderConfig",
    "GaussianBasis",
    "LatentStats",
    "LatentPrior",
    "LatticeCheck",
    "LatticeHead",
    "LossOutput",
    "NeighborList",
    "ParsedFormula",
    "PeriodicDimeNetPP",
    "RunningStats",
    "SampledStructure",
    "SamplerConfig",
    "ScalarCondition",
    "Standardizer",
    "VolumePrior",
    "WriteReport",
    "__version__",
    "build_graph",
    "check_scalar",
    "compile_networks",
    "fit_latent_prior",
    "fit_volume_prior",
    "lattice_to_scaled_params",
    "noise_levels",
    "parse_formula",
    "reconstruct",
    "sample",
    "scaled_params_to_lattice",
    "validate_lattices",
    "write_cif",
    "write_extxyz",
    "write_store",
]
