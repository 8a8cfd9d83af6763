"""``CondCDVAE``: composes conditioning, encoder, latent, lattice head and the GemNet score decoder.

Graphs are built with xtal_graph functions here, outside the networks: the encoder's on the true
structure (a radius or CrystalNN graph, or the edges the batch carries from a cache, see
``_encoder_graph``), the decoder's on the noisy one (a radius graph with its cutoff and cap).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from score_decoder import GemNetScore, fit_scale_factors
from torch import Tensor, nn
from xtal_graph import (
    Crystal,
    CrystalBatch,
    PeriodicGraph,
    Triplets,
    cart_to_frac,
    frac_to_cart,
    minimum_image,
    radius_graph_pbc,
    triplets,
    wrap_frac,
)

from ._conditioning import ConditionEncoder
from ._config import CondCDVAEConfig
from ._encoder import LatentStats, PeriodicDimeNetPP
from ._encoder_graph import encoder_graph
from ._latent import LatentPrior
from ._lattice import LatticeHead, lattice_to_scaled_params, scaled_params_to_lattice
from ._losses import LossOutput, coord_loss_per_crystal, kl_per_crystal, noise_levels
from ._scalers import RunningStats, Standardizer
from ._volume import VolumePrior

__all__ = ["CondCDVAE", "build_graph"]

# Floors of the lattice scaler's standard deviations: Å per atom^(1/3) for lengths, degrees for angles.
# Only reached by (near-)constant columns such as the cubic cells of Perov-5.
LATTICE_MIN_SCALE = (1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3)


def build_graph(
    frac_coords: Tensor, lattice: Tensor, num_atoms: Tensor, *, cutoff: float, max_neighbors: int | None
) -> tuple[PeriodicGraph, Triplets]:
    """Radius graph (xtal_graph) and its triplets for a flat batch."""
    graph = radius_graph_pbc(frac_coords, lattice, num_atoms, cutoff, max_neighbors)
    return graph, triplets(graph, frac_coords.shape[0])


def _mlp(in_dim: int, hidden: int, num_layers: int, out_dim: int) -> nn.Sequential:
    """Linear -> ReLU, (num_layers - 1) x [Linear -> ReLU], Linear (the reference's ``build_mlp``)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.ReLU()]
    for _ in range(num_layers - 1):
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)


class CondCDVAE(nn.Module):
    """Conditional crystal diffusion VAE (Luo et al., 2024) over composition and scalar conditions.

    ``forward(batch, teacher_forcing=...)`` returns the training loss; sampling lives in
    :func:`cond_vae.sample`. Scalers must be fitted (:meth:`fit_scalers`) before either.
    """

    def __init__(self, config: CondCDVAEConfig) -> None:
        super().__init__()
        # what the training data covered (elements, condition ranges, largest cell); set by training,
        # saved in and read from checkpoints; None when unknown
        self.trained_on: dict | None = None
        # composition-and-pressure prior on the cell volume, fitted on the training crystals (training sets
        # it; saved in checkpoints); the sampler may size the lattice head's cells with it. None: none
        self.volume_prior: VolumePrior | None = None
        # the training crystals' latent codes by cell size (cond_vae.fit_latent_prior; saved in checkpoints);
        # the sampler may draw latents from it instead of N(0, I). None: none
        self.latent_prior: LatentPrior | None = None
        self.config = config
        self.conditions = ConditionEncoder(
            num_elements=config.num_elements,
            composition_dim=config.composition_dim,
            scalar_conditions=config.scalar_conditions,
        )
        self.encoder = PeriodicDimeNetPP(
            config.encoder,
            cond_dim=config.cond_dim,
            latent_dim=config.latent_dim,
            num_elements=config.num_elements,
        )
        self.zgivenc = _mlp(
            config.latent_dim + config.cond_dim,
            config.zgivenc_hidden_dim,
            config.zgivenc_num_layers,
            config.zgivenc_out_dim,
        )
        self.lattice_head = LatticeHead(in_dim=config.zgivenc_out_dim, hidden_dim=config.lattice_hidden_dim)
        self.decoder = GemNetScore(config.decoder)
        self.lattice_scaler = Standardizer(LATTICE_MIN_SCALE)
        sigmas = noise_levels(
            sigma_begin=config.sigma_begin, sigma_end=config.sigma_end, num_levels=config.num_noise_levels
        )
        self.register_buffer("sigmas", sigmas)  # (L,) Å

    # ------------------------------------------------------------------ scalers
    @torch.no_grad()
    def fit_scalers(
        self, data: CrystalBatch | Iterable[Crystal | CrystalBatch], *, fit_lattice: bool = True
    ) -> dict[str, Any]:
        """Fit the lattice scaler (unless ``fit_lattice=False``) and every scalar-condition scaler on
        training data; returns their JSON view.

        ``data``: a ``CrystalBatch``, or an iterable of ``Crystal`` / ``CrystalBatch`` (streamed, so a
        DataLoader over the training set works). Non-finite values raise ``ValueError``.
        """
        lattice_stats = RunningStats(6)
        cond_stats = {name: RunningStats(1) for name in self.config.condition_names}
        items = [data] if isinstance(data, CrystalBatch) else data
        for item in items:
            if isinstance(item, Crystal):
                lattice = torch.tensor(np.array(item.lattice, dtype=np.float64))[None]
                num_atoms = torch.tensor([len(item.atom_types)])
                props = {k: np.asarray([v], dtype=np.float64) for k, v in item.properties.items()}
            elif isinstance(item, CrystalBatch):
                lattice, num_atoms = item.lattice.double().cpu(), item.num_atoms.cpu()
                props = {k: v.double().cpu().numpy() for k, v in item.properties.items()}
            else:
                raise TypeError(
                    f"fit_scalers expects Crystal or CrystalBatch items, got {type(item).__name__}"
                )
            lattice_stats.update(lattice_to_scaled_params(lattice, num_atoms).numpy())
            for name, stats in cond_stats.items():
                if name not in props:
                    raise KeyError(f"condition {name!r} missing from a training item's properties")
                stats.update(props[name].reshape(-1, 1))
        if fit_lattice:
            self.lattice_scaler.set_from(lattice_stats)
        for name, stats in cond_stats.items():
            scaler = self.conditions.scalers[name]
            scaler.set_from(stats)
            std, lo, hi = float(stats.std[0]), float(stats.lo[0]), float(stats.hi[0])
            if std < float(scaler.min_scale):
                warnings.warn(
                    f"condition {name!r} is (nearly) constant in the training data (std {std:.3g}, "
                    f"range [{lo:g}, {hi:g}]): using the floor scale {float(scaler.min_scale):g}; "
                    f"the model cannot learn its effect from these data",
                    UserWarning,
                    stacklevel=2,
                )
        return self.scalers_dict()

    def scalers_dict(self) -> dict[str, Any]:
        """JSON view of all scalers (saved alongside checkpoints for humans)."""
        return {
            "lattice": self.lattice_scaler.to_dict(),
            **{name: scaler.to_dict() for name, scaler in self.conditions.scalers.items()},
        }

    def _require_fitted(self) -> None:
        unfitted = [n for n, s in self.conditions.scalers.items() if not bool(s.fitted)]
        if not bool(self.lattice_scaler.fitted):
            unfitted.insert(0, "lattice")
        if unfitted:
            raise RuntimeError(
                f"scalers {unfitted} are not fitted: call model.fit_scalers(training_data) first"
            )

    @torch.no_grad()
    def fit_decoder_scale_factors(self, batch: CrystalBatch, *, seed: int = 0) -> dict[str, float]:
        """Fit the decoder's GemNet scale factors on one batch of noised training structures.

        Call once for a new model, after :meth:`fit_scalers` and before training (``cond_vae.training``
        does). The structures are noised as in training (one random level per crystal, true lattice)
        and decoded with ``cond_z`` of the posterior mean; the noise comes from a generator seeded
        with ``seed``, so the fit is deterministic and leaves torch's global RNG untouched.
        Returns the factors by module name (see :func:`score_decoder.fit_scale_factors`).
        """
        self._require_fitted()
        gen = torch.Generator(device=batch.frac_coords.device).manual_seed(int(seed))
        cond = self.condition_vector(batch)
        cond_z = self.cond_z(self.encode(batch, cond).mu, cond)
        level = torch.randint(
            0, self.config.num_noise_levels, (batch.num_crystals,), generator=gen, device=gen.device
        )
        sigma = self.sigmas.to(batch.frac_coords.dtype)[level][batch.batch]  # (N,)
        cart = frac_to_cart(batch.frac_coords, batch.lattice, batch=batch.batch)
        noise = torch.randn(cart.shape, generator=gen, device=gen.device, dtype=cart.dtype)
        noisy = wrap_frac(cart_to_frac(cart + sigma.unsqueeze(-1) * noise, batch.lattice, batch=batch.batch))
        dec = self.config.decoder
        graph, trips = build_graph(
            noisy, batch.lattice, batch.num_atoms, cutoff=dec.cutoff, max_neighbors=dec.max_neighbors
        )
        inputs = {"atom_types": batch.atom_types, "batch": batch.batch, "graph": graph, "triplets": trips}
        return fit_scale_factors(self.decoder, [{**inputs, "cond": cond_z}])

    # ------------------------------------------------------------------ parts
    def condition_vector(self, batch: CrystalBatch) -> Tensor:
        """``c (C, cond_dim)`` of a batch (composition from its atoms, scalars from its properties)."""
        return self.conditions(
            atom_types=batch.atom_types,
            batch=batch.batch,
            num_crystals=batch.num_crystals,
            properties=batch.properties,
        )

    def encode(self, batch: CrystalBatch, cond: Tensor | None = None) -> LatentStats:
        """Posterior ``mu, logvar (C, Z)`` of a batch of true structures.

        Uses ``batch.edge_index`` / ``cell_offsets`` as the encoder graph when the batch carries them
        (they must have been built with this model's ``config.encoder`` settings, as
        ``cond_vae.training.EncoderGraphData`` does); otherwise builds the graph now.
        """
        cond = self.condition_vector(batch) if cond is None else cond
        # the batch's precomputed edges (a training cache) when present, else built now
        graph, trips = encoder_graph(batch, self.config.encoder)
        stats = self.encoder(
            atom_types=batch.atom_types,
            batch=batch.batch,
            graph=graph,
            triplets=trips,
            cond=cond,
            num_crystals=batch.num_crystals,
        )
        # network outputs leave in the batch's precision (bf16 under autocast would reach the losses)
        dtype = batch.frac_coords.dtype
        return LatentStats(mu=stats.mu.to(dtype), logvar=stats.logvar.to(dtype))

    def cond_z(self, z: Tensor, cond: Tensor) -> Tensor:
        """``MLP([z | c])`` ``(C, zgivenc_out_dim)``: what the lattice head and the decoder read."""
        return self.zgivenc(torch.cat([z, cond], dim=-1))

    def predict_lattice(self, cond_z: Tensor, num_atoms: Tensor) -> tuple[Tensor, Tensor]:
        """``(scaled params (C, 6), lattice (C, 3, 3) Å)`` predicted from ``cond_z``."""
        dtype = self.lattice_head[-1].weight.dtype  # the model's precision, also under autocast
        pred_std = self.lattice_head(cond_z).to(dtype)  # (C, 6)
        params = self.lattice_scaler.inverse_transform(pred_std)
        return params, scaled_params_to_lattice(params, num_atoms)

    def score(
        self, *, atom_types: Tensor, batch: Tensor, graph: PeriodicGraph, triplets: Triplets, cond_z: Tensor
    ) -> Tensor:
        """Decoder output ``(N, 3)`` (~ minus the unit noise direction; divide by sigma for the score)."""
        out = self.decoder(atom_types=atom_types, batch=batch, graph=graph, triplets=triplets, cond=cond_z)
        return out.to(graph.vectors.dtype)  # the geometry's precision, also under autocast

    # ------------------------------------------------------------------ training loss
    def forward(
        self, batch: CrystalBatch, *, teacher_forcing: bool, coord_loss_trains_lattice: bool = True
    ) -> LossOutput:
        """Loss of one batch; ``batch.properties`` must hold every scalar condition (raw units).

        Noise levels and noise come from torch's global RNG. With ``teacher_forcing`` the true lattice
        is noised and decoded (the lattice loss is always on the prediction); without, the predicted one.
        ``coord_loss_trains_lattice`` (without teacher forcing): let the coordinate loss's gradient reach
        the lattice head through the predicted cell, as the reference does. It pulls the predicted cells
        larger (denoising is easier in a larger cell): measured on the default model, lengths 0.33
        standard deviations too long on its own training crystals, volumes about 1.8x
        (``docs/benchmarks/default_model_relay.md``). ``False`` detaches the cell: only the lattice loss
        trains the lattice head.
        """
        self._require_fitted()
        cfg = self.config
        num_crystals, num_atoms, atom_batch = batch.num_crystals, batch.num_atoms, batch.batch
        cond = self.condition_vector(batch)  # (C, cond_dim)
        stats = self.encode(batch, cond)
        z = stats.mu + torch.exp(0.5 * stats.logvar) * torch.randn_like(stats.mu)  # (C, Z)
        cond_z = self.cond_z(z, cond)

        pred_std = self.lattice_head(cond_z).to(batch.lattice.dtype)  # (C, 6), not autocast's
        true_params = lattice_to_scaled_params(batch.lattice, num_atoms)
        lattice_err = ((pred_std - self.lattice_scaler.transform(true_params)) ** 2).mean(-1)  # (C,)
        pred_params = self.lattice_scaler.inverse_transform(pred_std)
        if teacher_forcing:
            lattice, degenerate = batch.lattice, torch.zeros((), dtype=torch.long, device=cond.device)
            true_frame = batch.lattice  # (C, 3, 3): noise, decoder and target all in the batch's frame
        else:
            lattice, degenerate = usable_predicted_lattice(pred_params, true_params, num_atoms)
            if not coord_loss_trains_lattice:
                lattice = lattice.detach()
            # the predicted cell is built in the canonical orientation of its parameters, so the target
            # displacement is measured in the true cell in that orientation too (whatever the batch's)
            true_frame = scaled_params_to_lattice(true_params, num_atoms)

        level = torch.randint(0, cfg.num_noise_levels, (num_crystals,), device=cond.device)  # (C,)
        sigma = self.sigmas.to(batch.frac_coords.dtype)[level][atom_batch]  # (N,)
        cart = frac_to_cart(batch.frac_coords, lattice, batch=atom_batch)
        cart = cart + sigma.unsqueeze(-1) * torch.randn_like(cart)
        noisy_frac = wrap_frac(cart_to_frac(cart, lattice, batch=atom_batch))
        dec = cfg.decoder
        graph, trips = build_graph(
            noisy_frac, lattice, num_atoms, cutoff=dec.cutoff, max_neighbors=dec.max_neighbors
        )
        score = self.score(
            atom_types=batch.atom_types, batch=atom_batch, graph=graph, triplets=trips, cond_z=cond_z
        )
        displacement = minimum_image(batch.frac_coords - noisy_frac, true_frame, batch=atom_batch)
        coord = coord_loss_per_crystal(
            displacement=displacement, sigma=sigma, score=score, batch=atom_batch, num_crystals=num_crystals
        )
        kl = kl_per_crystal(stats.mu, stats.logvar)
        per_crystal = cfg.cost_lattice * lattice_err + cfg.cost_coord * coord + cfg.beta * kl
        n = num_atoms.to(pred_params.dtype).unsqueeze(-1) ** (1.0 / 3.0)
        return LossOutput(
            total=per_crystal.mean(),
            lattice=lattice_err.mean(),
            coord=coord.mean(),
            kl=kl.mean(),
            per_crystal_total=per_crystal,
            pred_lengths=(pred_params[:, :3] * n).detach(),
            pred_angles=pred_params[:, 3:].detach(),
            noise_level=level,
            degenerate_lattices=degenerate,
        )

    def num_parameters(self) -> dict[str, int]:
        """Trainable parameter counts per part and in total."""
        parts = {
            "conditions": self.conditions,
            "encoder": self.encoder,
            "zgivenc": self.zgivenc,
            "lattice_head": self.lattice_head,
            "decoder": self.decoder,
        }
        counts = {k: sum(p.numel() for p in m.parameters() if p.requires_grad) for k, m in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts


def usable_predicted_lattice(
    pred_params: Tensor, true_params: Tensor, num_atoms: Tensor, *, min_flatness: float = 0.05
) -> tuple[Tensor, Tensor]:
    """The lattices ``(C, 3, 3)`` (Å) built from the predicted scaled parameters ``(C, 6)``, with the
    true parameters in place of each degenerate prediction.

    A prediction is degenerate when its angles admit no cell (or nearly none): ``V / (a b c)``, which is
    1 for a rectangular box and 0 for a flat one, is below ``min_flatness``, or it is not finite.
    Noising and decoding in such a cell is undefined (its inverse does not exist), so without teacher
    forcing those crystals fall back to their true lattice (in the standard orientation of
    ``lattice_from_params``; the decoder is invariant to it). The replacement happens on the
    parameters, so gradients flow through every kept prediction and never through a degenerate one.
    Returns the lattices and how many crystals fell back (a 0-d long tensor).
    """
    with torch.no_grad():
        pred = scaled_params_to_lattice(pred_params, num_atoms)  # (C, 3, 3)
        flatness = torch.linalg.det(pred).abs() / pred.norm(dim=-1).prod(-1)  # (C,)
        bad = ~(torch.isfinite(flatness) & (flatness >= min_flatness))  # (C,)
    params = torch.where(bad[:, None], true_params.to(pred_params.dtype), pred_params)  # (C, 6)
    return scaled_params_to_lattice(params, num_atoms), bad.sum()
