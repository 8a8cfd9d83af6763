"""Frozen configuration dataclasses for Cond-CDVAE and their JSON round trip.

The presets follow the README runs of the reference code (``reference-anatomy.md`` §6):
``cond_cdvae_4m()`` and ``cond_cdvae_86m()`` reproduce the paper's two models without the weights the
reference builds but never trains; ``tiny()`` is a few-thousand-parameter model for CPU tests.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from score_decoder import GemNetConfig

__all__ = ["ENCODER_GRAPHS", "SCALAR_BASES", "CondCDVAEConfig", "EncoderConfig", "ScalarCondition"]

SCALAR_BASES = ("standardised", "raw")  # where a scalar condition's Gaussian centres lie

ENCODER_GRAPHS = ("radius", "crystalnn")


@dataclass(frozen=True)
class ScalarCondition:
    """One scalar condition (e.g. pressure in GPa) read from ``batch.properties[name]``.

    ``basis = "standardised"`` (the paper's): the value is standardised with the training mean and scale,
    then expanded on ``n_basis`` Gaussians with centres evenly spaced on ``[start, stop]`` standard
    deviations. ``basis = "raw"``: the centres lie on ``[start, stop]`` in the property's own unit (GPa),
    so the encoding does not depend on the training data's spread (a set that is mostly at 0 GPa puts
    50 GPa at 7 standard deviations, beyond a standardised basis). ``width``: the Gaussians' width in the
    basis' unit (default: the centre spacing); a width of several spacings makes neighbouring values
    share features, so the model can interpolate between the few pressures it was trained at.
    ``min_scale`` floors the standard deviation (in the property's unit): a constant training column
    (e.g. all pressures 0 GPa) gets scale ``min_scale`` instead of the reference's 1e-5.
    """

    name: str
    n_basis: int = 80
    start: float = -2.0
    stop: float = 5.0
    min_scale: float = 1.0
    basis: str = "standardised"
    width: float | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"ScalarCondition {self.name!r}: {message}")

        need(self.n_basis >= 2, f"n_basis must be >= 2, got {self.n_basis}")
        need(self.stop > self.start, f"need stop > start, got {self.start}, {self.stop}")
        need(self.min_scale > 0, f"min_scale must be > 0, got {self.min_scale}")
        need(self.basis in SCALAR_BASES, f"basis must be one of {SCALAR_BASES}, got {self.basis!r}")
        need(self.width is None or self.width > 0, f"width must be > 0 or None, got {self.width}")


@dataclass(frozen=True)
class EncoderConfig:
    """Periodic DimeNet++ encoder (lengths in Å).

    ``graph``: the encoder's graph of the true structure. ``"radius"``: every neighbour within
    ``cutoff``, the ``max_neighbors`` nearest per atom (xtal_graph's radius graph). ``"crystalnn"``:
    the reference's CrystalNN bonds (pymatgen; precompute them with
    ``cond_vae.training.EncoderGraphData``), for which ``cutoff`` only shapes the radial basis
    (contributions vanish beyond it) and ``max_neighbors`` is unused.
    """

    hidden_channels: int = 128
    num_blocks: int = 4
    int_emb_size: int = 128
    basis_emb_size: int = 8
    out_emb_channels: int = 128
    num_spherical: int = 7
    num_radial: int = 6
    cutoff: float = 7.0
    max_neighbors: int | None = 20
    envelope_exponent: int = 5
    num_before_skip: int = 1
    num_after_skip: int = 2
    num_output_layers: int = 3
    graph: str = "radius"  # "radius" or "crystalnn"

    def __post_init__(self) -> None:
        if self.graph not in ENCODER_GRAPHS:
            raise ValueError(f"EncoderConfig: graph must be one of {ENCODER_GRAPHS}, got {self.graph!r}")


@dataclass(frozen=True)
class CondCDVAEConfig:
    """Everything that defines a Cond-CDVAE model (architecture, noise schedule, loss weights).

    ``decoder.cond_dim`` must equal ``zgivenc_out_dim``: the decoder reads ``cond_z = MLP([z | c])``.
    ``max_atoms`` is the largest cell the sampler accepts (the training data's largest cell is a good value).
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: GemNetConfig = field(default_factory=lambda: GemNetConfig.cond_cdvae_4m())
    latent_dim: int = 128
    composition_dim: int = 50
    num_elements: int = 100
    scalar_conditions: tuple[ScalarCondition, ...] = (ScalarCondition("pressure"),)
    zgivenc_hidden_dim: int = 64
    zgivenc_num_layers: int = 3
    zgivenc_out_dim: int = 64
    lattice_hidden_dim: int = 256
    sigma_begin: float = 10.0
    sigma_end: float = 0.01
    num_noise_levels: int = 50
    cost_lattice: float = 10.0
    cost_coord: float = 10.0
    beta: float = 0.01
    max_atoms: int = 60

    def __post_init__(self) -> None:
        if self.decoder.cond_dim != self.zgivenc_out_dim:
            raise ValueError(
                f"decoder.cond_dim ({self.decoder.cond_dim}) must equal "
                f"zgivenc_out_dim ({self.zgivenc_out_dim})"
            )
        names = [s.name for s in self.scalar_conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate scalar condition names: {names}")
        if not self.sigma_begin > self.sigma_end > 0:
            raise ValueError(f"need sigma_begin > sigma_end > 0, got {self.sigma_begin}, {self.sigma_end}")
        if self.num_noise_levels < 2:
            raise ValueError("num_noise_levels must be >= 2")
        if self.max_atoms < 1:
            raise ValueError("max_atoms must be >= 1")

    @property
    def cond_dim(self) -> int:
        """Size of the condition vector ``c = [composition | Gauss(scalar_1) | ...]``."""
        return self.composition_dim + sum(s.n_basis for s in self.scalar_conditions)

    @property
    def condition_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scalar_conditions)

    # ----------------------------------------------------------------- presets
    @classmethod
    def cond_cdvae_4m(cls, **overrides: Any) -> CondCDVAEConfig:
        """The paper's 4M model (reference README overrides); 3.7M trainable parameters."""
        decoder = dataclasses.replace(GemNetConfig.cond_cdvae_4m(), cond_dim=64)
        return cls(**{"encoder": EncoderConfig(), "decoder": decoder, "latent_dim": 128, **overrides})

    @classmethod
    def cond_cdvae_86m(cls, **overrides: Any) -> CondCDVAEConfig:
        """The paper's 86M model (reference README overrides); 73M trainable parameters."""
        encoder = EncoderConfig(hidden_channels=512, num_blocks=6, int_emb_size=256, out_emb_channels=512)
        decoder = dataclasses.replace(GemNetConfig.cond_cdvae_86m(), cond_dim=64)
        return cls(**{"encoder": encoder, "decoder": decoder, "latent_dim": 512, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> CondCDVAEConfig:
        """A few-ten-thousand-parameter model for CPU tests (same structure, small widths)."""
        encoder = EncoderConfig(
            hidden_channels=16,
            num_blocks=1,
            int_emb_size=8,
            basis_emb_size=4,
            out_emb_channels=16,
            num_spherical=3,
            num_radial=4,
            cutoff=5.0,
            max_neighbors=12,
            num_output_layers=1,
        )
        decoder = dataclasses.replace(GemNetConfig.tiny(), cond_dim=16)
        defaults: dict[str, Any] = {
            "encoder": encoder,
            "decoder": decoder,
            "latent_dim": 8,
            "composition_dim": 8,
            "scalar_conditions": (ScalarCondition("pressure", n_basis=8),),
            "zgivenc_hidden_dim": 16,
            "zgivenc_num_layers": 2,
            "zgivenc_out_dim": 16,
            "lattice_hidden_dim": 16,
            "max_atoms": 24,
        }
        return cls(**{**defaults, **overrides})

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nested dataclasses become dicts, tuples become lists)."""
        return _to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CondCDVAEConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_jsonable(cls, data)


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    return obj


def _from_jsonable(tp: Any, data: Any) -> Any:
    """Rebuild a value of (annotated) type ``tp`` from JSON data."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp.__name__}, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.init}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown keys for {tp.__name__}: {sorted(unknown)}")
        return tp(**{k: _from_jsonable(hints[k], v) for k, v in data.items()})
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_jsonable(args[0], x) for x in data)
        return tuple(_from_jsonable(a, x) for a, x in zip(args, data, strict=True))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return _from_jsonable(args[0], data) if len(args) == 1 else data
    if origin in (list, dict):
        return data
    if tp is float and isinstance(data, int):
        return float(data)
    if tp in (tuple, list) and isinstance(data, list):
        return tuple(data)
    return data
