"""Lattice maths for row-vector lattices (``cart = frac @ L``), in Å and degrees.

Every function takes torch tensors (anything ``torch.as_tensor`` accepts is converted, numpy arrays
become float64 tensors) and is differentiable unless stated otherwise. Lattices are ``(..., 3, 3)``
with the lattice vectors a, b, c as rows.

Batched coordinates: functions that combine per-atom coordinates ``(N, 3)`` with lattices accept the
lattice as one ``(3, 3)`` matrix, as one matrix per atom ``(N, 3, 3)``, or as one matrix per crystal
``(C, 3, 3)`` together with ``num_atoms (C,)`` or ``batch (N,)`` (the crystal index of every atom).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._precision import full_precision

__all__ = [
    "LatticeParams",
    "cart_to_frac",
    "frac_to_cart",
    "lattice_from_params",
    "lattice_to_params",
    "minimum_image",
    "perpendicular_widths",
    "volume",
    "wrap_frac",
]


def _as_float_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x if x.is_floating_point() else x.to(torch.get_default_dtype())
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class LatticeParams:
    """Lattice parameters: ``lengths (..., 3)`` (a, b, c) in Å and ``angles (..., 3)`` (alpha, beta,
    gamma) in degrees. Unpacks as ``lengths, angles = lattice_to_params(lattice)``."""

    lengths: Tensor
    angles: Tensor

    def __iter__(self):
        return iter((self.lengths, self.angles))


@full_precision
def lattice_from_params(lengths: Any, angles: Any) -> Tensor:
    """Lattice matrix from lengths (Å) and angles (degrees), oriented as pymatgen's
    ``Lattice.from_parameters``: c along z, a in the xz plane.

    Args:
        lengths: ``(..., 3)`` lattice lengths a, b, c in Å.
        angles: ``(..., 3)`` angles alpha (b, c), beta (a, c), gamma (a, b) in degrees.

    Returns:
        ``(..., 3, 3)`` lattice with rows a, b, c, in Å.

    Examples:
        >>> lattice_from_params([2.0, 3.0, 4.0], [90.0, 90.0, 90.0]).diagonal().tolist()
        [2.0, 3.0, 4.0]
    """
    lengths = _as_float_tensor(lengths)
    angles = _as_float_tensor(angles).to(lengths.dtype)
    alpha, beta, gamma = torch.deg2rad(angles).unbind(-1)
    a, b, c = lengths.unbind(-1)
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_a, sin_b = torch.sin(alpha), torch.sin(beta)
    # angle between the projections of a and b on the plane normal to c
    cos_gs = ((cos_a * cos_b - cos_g) / (sin_a * sin_b)).clamp(-1.0, 1.0)
    sin_gs = torch.sqrt((1.0 - cos_gs**2).clamp_min(0.0))
    zero = torch.zeros_like(a)
    row_a = torch.stack([a * sin_b, zero, a * cos_b], dim=-1)
    row_b = torch.stack([-b * sin_a * cos_gs, b * sin_a * sin_gs, b * cos_a], dim=-1)
    row_c = torch.stack([zero, zero, c], dim=-1)
    return torch.stack([row_a, row_b, row_c], dim=-2)


def _angle(u: Tensor, v: Tensor) -> Tensor:
    """Angle between vectors in degrees, stable near 0 and 180 degrees."""
    return torch.rad2deg(torch.atan2(torch.linalg.cross(u, v).norm(dim=-1), (u * v).sum(-1)))


@full_precision
def lattice_to_params(lattice: Any) -> LatticeParams:
    """Lengths (Å) and angles (degrees) of a ``(..., 3, 3)`` lattice; inverse of
    :func:`lattice_from_params` up to a rotation."""
    lattice = _as_float_tensor(lattice)
    a, b, c = lattice.unbind(-2)
    lengths = lattice.norm(dim=-1)  # (..., 3)
    angles = torch.stack([_angle(b, c), _angle(a, c), _angle(a, b)], dim=-1)
    return LatticeParams(lengths=lengths, angles=angles)


@full_precision
def volume(lattice: Any) -> Tensor:
    """Cell volume ``|det L|`` in Å^3, shape ``(...)`` for a ``(..., 3, 3)`` lattice. Left-handed
    lattices (a reflection of a right-handed one) have the same, positive volume."""
    return torch.linalg.det(_as_float_tensor(lattice)).abs()


@full_precision
def perpendicular_widths(lattice: Any) -> Tensor:
    """Distances between opposite faces of the cell, ``(..., 3)`` in Å.

    ``widths[..., k]`` is the spacing of the lattice planes spanned by the two other lattice vectors:
    a point at Cartesian distance ``r`` has ``|frac_k| <= r / widths[k]``. A periodic search to
    radius ``r`` therefore needs ``ceil(r / widths[k])`` images along axis ``k``.
    """
    lattice = _as_float_tensor(lattice)
    a, b, c = lattice.unbind(-2)
    vol = volume(lattice)[..., None]
    areas = torch.stack(
        [torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)], dim=-2
    ).norm(dim=-1)  # (..., 3)
    return vol / areas


def wrap_frac(frac_coords: Any) -> Any:
    """Wrap fractional coordinates into ``[0, 1)``; numpy in, numpy out, tensor in, tensor out.

    Unlike a plain ``x % 1``, never returns 1.0: in float32, ``-1e-9 % 1`` rounds to exactly 1.0,
    which is mapped to 0.0 here (the same point of the crystal). Differentiable (gradient 1).

    Examples:
        >>> wrap_frac(torch.tensor([-1e-9, 1.25, -0.25])).tolist()
        [0.0, 0.25, 0.75]
    """
    if isinstance(frac_coords, Tensor):
        wrapped = torch.remainder(frac_coords, 1.0)
        return torch.where(wrapped >= 1.0, wrapped - wrapped.detach(), wrapped)
    arr = np.asarray(frac_coords)
    wrapped = np.remainder(arr, 1.0)
    return np.where(wrapped >= 1.0, 0.0, wrapped).astype(arr.dtype, copy=False)


def _per_row_lattice(lattice: Tensor, rows: int, num_atoms: Tensor | None, batch: Tensor | None) -> Tensor:
    """Lattice per row of a ``(rows, 3)`` array: ``(3, 3)`` or ``(rows, 3, 3)``."""
    if lattice.shape[-2:] != (3, 3):
        raise ValueError(f"lattice must have shape (3, 3) or (C, 3, 3), got {tuple(lattice.shape)}")
    if lattice.ndim == 2:
        return lattice
    if batch is not None:
        return lattice[batch]
    if num_atoms is not None:
        num_atoms = torch.as_tensor(num_atoms, device=lattice.device)
        return lattice.repeat_interleave(num_atoms, dim=0, output_size=rows)
    if lattice.shape[0] != rows:
        raise ValueError(
            f"lattice has {lattice.shape[0]} matrices for {rows} coordinates: pass num_atoms or batch"
        )
    return lattice


def _apply(coords: Tensor, matrix: Tensor) -> Tensor:
    if matrix.ndim == 2:
        return coords @ matrix
    return torch.bmm(coords.unsqueeze(-2), matrix).squeeze(-2)


@full_precision
def frac_to_cart(
    frac_coords: Any, lattice: Any, num_atoms: Any = None, *, batch: Tensor | None = None
) -> Tensor:
    """Cartesian coordinates (Å) ``(N, 3) = frac_coords @ L`` of each atom's crystal.

    Args:
        frac_coords: ``(N, 3)`` fractional coordinates.
        lattice: ``(3, 3)``, ``(N, 3, 3)``, or ``(C, 3, 3)`` together with ``num_atoms`` or ``batch``.
        num_atoms: ``(C,)`` atoms per crystal (atoms stored crystal by crystal).
        batch: ``(N,)`` crystal index of each atom (alternative to ``num_atoms``).
    """
    frac_coords = _as_float_tensor(frac_coords)
    lattice = _as_float_tensor(lattice).to(frac_coords.dtype)
    return _apply(frac_coords, _per_row_lattice(lattice, frac_coords.shape[0], num_atoms, batch))


@full_precision
def cart_to_frac(
    cart_coords: Any, lattice: Any, num_atoms: Any = None, *, batch: Tensor | None = None
) -> Tensor:
    """Fractional coordinates ``(N, 3) = cart_coords @ L^-1``; arguments as :func:`frac_to_cart`."""
    cart_coords = _as_float_tensor(cart_coords)
    inverse = torch.linalg.inv(_as_float_tensor(lattice).to(cart_coords.dtype))
    return _apply(cart_coords, _per_row_lattice(inverse, cart_coords.shape[0], num_atoms, batch))


_IMAGES_27 = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.float64)


def _closest_images(frac: Tensor, lattice: Tensor, images: Tensor) -> tuple[Tensor, Tensor]:
    """Best image shift among ``images (M, 3)`` for each row: (shift (R, 3), squared distance (R,))."""
    cand = frac[:, None, :] + images.to(frac.device)  # (R, M, 3)
    cart = cand @ lattice if lattice.ndim == 2 else torch.bmm(cand, lattice)
    dist2 = (cart * cart).sum(-1)  # (R, M)
    best = dist2.argmin(dim=1)
    return images.to(frac.device)[best], dist2.gather(1, best[:, None]).squeeze(1)


@full_precision
def minimum_image(
    frac_diff: Any, lattice: Any, num_atoms: Any = None, *, batch: Tensor | None = None
) -> Tensor:
    """Exact minimum-image Cartesian displacement, ``(N, 3)`` in Å.

    Returns ``(frac_diff + n) @ L`` with the integer vector ``n`` that minimises its length, for any
    cell shape (no 27-image approximation): after wrapping into ``[-1/2, 1/2)`` and taking the best of
    the 27 neighbouring images (distance ``r``), the minimum image can only have
    ``|frac_k + n_k| <= r / width_k``, so rows whose bound allows shifts beyond +-1 (skewed or thin
    cells) are searched over that whole range. The shift is chosen without gradient; the result is
    differentiable with respect to ``frac_diff`` and ``lattice``.

    Args:
        frac_diff: ``(N, 3)`` fractional displacements (any real values), e.g. ``frac_b - frac_a``.
        lattice: ``(3, 3)``, ``(N, 3, 3)``, or ``(C, 3, 3)`` together with ``num_atoms`` or ``batch``.
        num_atoms: ``(C,)`` atoms per crystal; batch: ``(N,)`` crystal index of each row.
    """
    frac_diff = _as_float_tensor(frac_diff)
    lattice = _per_row_lattice(
        _as_float_tensor(lattice).to(frac_diff.dtype), frac_diff.shape[0], num_atoms, batch
    )
    with torch.no_grad():
        frac64 = frac_diff.detach().double()
        lat64 = lattice.detach().double()
        shift = -torch.round(frac64)
        reduced = frac64 + shift  # (N, 3) in [-1/2, 1/2]
        best, dist2 = _closest_images(reduced, lat64, _IMAGES_27)
        widths = perpendicular_widths(lat64)
        widths = widths.expand(reduced.shape) if widths.ndim == 1 else widths
        reach = torch.floor(dist2.sqrt()[:, None] * (1 + 1e-9) / widths + reduced.abs())  # (N, 3)
        need = (reach > 1).any(dim=1)
        if bool(need.any()):
            rows = need.nonzero().squeeze(1)
            for chunk in rows.split(4096):
                span = [int(m) for m in reach[chunk].amax(dim=0).tolist()]
                grid = torch.tensor(
                    list(itertools.product(*(range(-m, m + 1) for m in span))),
                    dtype=torch.float64,
                    device=reduced.device,
                )
                sub_lat = lat64 if lat64.ndim == 2 else lat64[chunk]
                best[chunk] = _closest_images(reduced[chunk], sub_lat, grid)[0]
        shift = shift + best
    return _apply(frac_diff + shift.to(frac_diff.dtype), lattice)
