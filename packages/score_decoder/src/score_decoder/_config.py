"""Frozen configuration of the GemNet-T score network, with the paper's presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["GemNetConfig"]


@dataclass(frozen=True)
class GemNetConfig:
    """Hyper-parameters of :class:`~score_decoder.GemNetScore` (GemNet-T, direct vector output).

    Widths follow GemNet's names (Gasteiger et al., 2021). Defaults are the decoder of the
    Cond-CDVAE 4M model (``cond_cdvae_4m``).

    Attributes:
        num_blocks: Number of interaction blocks (there are ``num_blocks + 1`` output blocks).
        emb_size_atom: Atom embedding width.
        emb_size_edge: Edge (message) embedding width.
        emb_size_trip: Width of the down-projected triplet messages.
        emb_size_rbf: Width of the projected radial basis used in the triplet, atom and output blocks.
        emb_size_cbf: Width of the projected circular (angle x radius) basis.
        emb_size_bil_trip: Output width of the triplet bilinear layer.
        num_spherical: Number of Legendre orders ``l = 0 .. num_spherical - 1`` of the angle basis.
        num_radial: Number of Gaussian radial functions on ``[0, cutoff]``.
        cutoff: Radius-graph cutoff in Å; the caller builds the graph with it.
        max_neighbors: Neighbour cap per centre atom the caller uses when building the graph
            (``None``: no cap).
        envelope_exponent: Exponent ``p`` of the polynomial envelope that takes every radial
            function smoothly to zero at the cutoff.
        num_before_skip: Residual layers on the triplet message before the edge skip connection.
        num_after_skip: Residual layers on the edge message after the skip connection.
        num_concat: Residual layers after the atom-to-edge concatenation update.
        num_atom: Residual layers in the atom update and in each output block.
        cond_dim: Width of the per-crystal conditioning vector (``0``: unconditional).
        num_elements: Largest supported atomic number (atom types must lie in ``1..num_elements``).
        avg_neighbors: Expected number of edges into an atom, used to normalise the per-atom and
            per-edge sums at initialisation (``None``: ``max_neighbors``, or 20 without a cap).
    """

    num_blocks: int = 4
    emb_size_atom: int = 128
    emb_size_edge: int = 128
    emb_size_trip: int = 64
    emb_size_rbf: int = 16
    emb_size_cbf: int = 16
    emb_size_bil_trip: int = 64
    num_spherical: int = 7
    num_radial: int = 128
    cutoff: float = 7.0
    max_neighbors: int | None = 20
    envelope_exponent: int = 5
    num_before_skip: int = 1
    num_after_skip: int = 2
    num_concat: int = 1
    num_atom: int = 3
    cond_dim: int = 64
    num_elements: int = 100
    avg_neighbors: float | None = None

    def __post_init__(self) -> None:
        positive = (
            "num_blocks emb_size_atom emb_size_edge emb_size_trip emb_size_rbf emb_size_cbf "
            "emb_size_bil_trip num_spherical num_radial envelope_exponent num_elements"
        ).split()
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GemNetConfig.{name} must be a positive integer, got {value!r}")
        for name in ("num_before_skip", "num_after_skip", "num_concat", "num_atom", "cond_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"GemNetConfig.{name} must be a non-negative integer, got {value!r}")
        if self.num_radial < 2:
            raise ValueError(f"GemNetConfig.num_radial must be at least 2, got {self.num_radial}")
        if not self.cutoff > 0:
            raise ValueError(f"GemNetConfig.cutoff must be > 0 Å, got {self.cutoff!r}")
        if self.max_neighbors is not None and self.max_neighbors < 1:
            raise ValueError(f"GemNetConfig.max_neighbors must be >= 1 or None, got {self.max_neighbors}")
        if self.avg_neighbors is not None and not self.avg_neighbors > 0:
            raise ValueError(f"GemNetConfig.avg_neighbors must be > 0 or None, got {self.avg_neighbors}")

    @property
    def expected_neighbors(self) -> float:
        """Normalisation constant for sums over the edges into an atom."""
        if self.avg_neighbors is not None:
            return float(self.avg_neighbors)
        return float(self.max_neighbors) if self.max_neighbors is not None else 20.0

    def replace(self, **changes) -> GemNetConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def cond_cdvae_4m(cls, **changes) -> GemNetConfig:
        """Decoder of the Cond-CDVAE 4M model: 4 blocks, hidden 128, cond_z of width 64."""
        return cls(num_blocks=4, emb_size_atom=128, emb_size_edge=128, cond_dim=64).replace(**changes)

    @classmethod
    def cond_cdvae_86m(cls, **changes) -> GemNetConfig:
        """Decoder of the Cond-CDVAE 86M model: 6 blocks, hidden 512, cond_z of width 64."""
        return cls(num_blocks=6, emb_size_atom=512, emb_size_edge=512, cond_dim=64).replace(**changes)

    @classmethod
    def tiny(cls, **changes) -> GemNetConfig:
        """A 14k-parameter network for tests and examples (2 blocks, width 16, cutoff 5 Å, 12 neighbours)."""
        base = cls(
            num_blocks=2,
            emb_size_atom=16,
            emb_size_edge=16,
            emb_size_trip=8,
            emb_size_rbf=4,
            emb_size_cbf=4,
            emb_size_bil_trip=8,
            num_spherical=3,
            num_radial=8,
            cutoff=5.0,
            max_neighbors=12,
            num_after_skip=1,
            num_atom=1,
            cond_dim=8,
        )
        return base.replace(**changes)
