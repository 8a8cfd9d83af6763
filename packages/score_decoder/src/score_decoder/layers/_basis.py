"""Radial and angular bases: e3nn Gaussians with a polynomial envelope, and Legendre polynomials."""

from __future__ import annotations

import math

import torch
from e3nn.math import soft_one_hot_linspace
from torch import nn

from ._base import he_orthogonal_
from ._layout import TripletLayout

__all__ = ["PolynomialEnvelope", "RadialBasis", "AngleBasis", "CircularBasis"]


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff ``u(x) = 1 + a x^p + b x^(p+1) + c x^(p+2)`` for ``x = d / cutoff < 1``, else 0.

    The coefficients make ``u``, ``u'`` and ``u''`` vanish at ``x = 1`` (GemNet's envelope).

    Args:
        exponent: The exponent ``p`` (5 in GemNet).
    """

    def __init__(self, *, exponent: int):
        super().__init__()
        p = exponent
        self.p = p
        self.a = -(p + 1) * (p + 2) / 2
        self.b = p * (p + 2)
        self.c = -p * (p + 1) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Envelope of scaled distances ``x`` (any shape) -> same shape."""
        xp = x.pow(self.p)
        u = 1 + self.a * xp + self.b * xp * x + self.c * xp * x * x
        return torch.where(x < 1, u, torch.zeros_like(x))


class RadialBasis(nn.Module):
    """Gaussian radial basis on ``[0, cutoff]`` times the polynomial envelope.

    Uses :func:`e3nn.math.soft_one_hot_linspace` (Gaussians ``exp(-((d - mu_k)/delta)^2)`` with
    centres ``mu_k`` evenly spaced at ``delta = cutoff / (num_radial - 1)``), rescaled by
    ``sqrt(num_radial)`` so that each feature has a second moment of about one inside the cutoff.

    Args:
        num_radial: Number of Gaussians ``K``.
        cutoff: Cutoff in Å.
        envelope_exponent: Exponent of :class:`PolynomialEnvelope`.
    """

    def __init__(self, *, num_radial: int, cutoff: float, envelope_exponent: int):
        super().__init__()
        self.num_radial = num_radial
        self.cutoff = float(cutoff)
        self.envelope = PolynomialEnvelope(exponent=envelope_exponent)
        self.norm = math.sqrt(num_radial)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """Distances ``(E,)`` in Å -> basis ``(E, K)``."""
        gauss = soft_one_hot_linspace(
            distances, start=0.0, end=self.cutoff, number=self.num_radial, basis="gaussian", cutoff=False
        )  # (E, K)
        env = self.envelope(distances / self.cutoff)  # (E,)
        return gauss * (env * self.norm).unsqueeze(-1)


class AngleBasis(nn.Module):
    """Component-normalised Legendre polynomials ``sqrt(2l + 1) P_l(cos theta)``, ``l < num_spherical``.

    These are the ``m = 0`` real spherical harmonics (times ``sqrt(4 pi)``) of the angle between two
    bonds; each has unit mean square over uniformly distributed directions.

    Args:
        num_spherical: Number of orders ``S``.
    """

    def __init__(self, *, num_spherical: int):
        super().__init__()
        self.num_spherical = num_spherical
        self.register_buffer(
            "norm", torch.sqrt(2.0 * torch.arange(num_spherical, dtype=torch.float64) + 1.0), persistent=False
        )

    def forward(self, cos_angle: torch.Tensor) -> torch.Tensor:
        """Cosines ``(T,)`` -> basis ``(T, S)``."""
        polys = [torch.ones_like(cos_angle)]
        if self.num_spherical > 1:
            polys.append(cos_angle)
        for l in range(1, self.num_spherical - 1):
            polys.append(((2 * l + 1) * cos_angle * polys[l] - l * polys[l - 1]) / (l + 1))
        return torch.stack(polys, dim=-1) * self.norm.to(cos_angle.dtype)


class CircularBasis(nn.Module):
    """Learned angle x radius basis of every triplet, laid out in padded per-edge slots.

    ``B_ji[c, k] = sum_l W_l(rbf_ji)[c] Y_l(theta_kji) / sqrt(S)``: a linear map of the radial basis
    of the receiving edge ``ji`` gives one weight per (channel, order); these contract with the
    Legendre basis of each triplet's angle. This is GemNet's efficient down-projection; it does not
    depend on the block, so it is computed once per forward pass.

    Args:
        num_radial: Radial basis size ``K_rad``.
        num_spherical: Angle basis size ``S``.
        emb_size_cbf: Output channels.
    """

    def __init__(self, *, num_radial: int, num_spherical: int, emb_size_cbf: int):
        super().__init__()
        self.num_spherical = num_spherical
        self.emb_size_cbf = emb_size_cbf
        self.linear = nn.Linear(num_radial, emb_size_cbf * num_spherical, bias=False)
        self.norm = 1.0 / math.sqrt(num_spherical)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        he_orthogonal_(self.linear.weight)

    def forward(self, rbf: torch.Tensor, sph: torch.Tensor, layout: TripletLayout) -> torch.Tensor:
        """Radial ``(E, K_rad)``, angles ``(T, S)`` -> ``(E, emb_size_cbf, K)`` (zero in empty slots)."""
        weights = self.linear(rbf).view(-1, self.emb_size_cbf, self.num_spherical)  # (E, cbf, S)
        sph_slots = layout.gather_triplets(sph)  # (E, K, S)
        return torch.bmm(weights, sph_slots.transpose(1, 2)) * self.norm
