"""A run's configuration file: ``[train]`` (TrainConfig), ``[model]`` (a preset plus overrides) and
``[data]`` (DataConfig), e.g.::

    [model]
    preset = "cond_cdvae_4m"      # or "cond_cdvae_86m", "tiny"
    latent_dim = 128              # any CondCDVAEConfig field overrides the preset
    [model.decoder]
    num_blocks = 4                # nested configs override field by field

    [train]
    batch_size = 128

    [data]
    path = "data/mp20.zarr"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cond_vae import toml
from cond_vae._config import CondCDVAEConfig
from cond_vae.training._config import DataConfig, TrainConfig

MODEL_PRESETS = {
    "cond_cdvae_4m": CondCDVAEConfig.cond_cdvae_4m,
    "cond_cdvae_86m": CondCDVAEConfig.cond_cdvae_86m,
    "tiny": CondCDVAEConfig.tiny,
}
_TABLES = ("train", "model", "data")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run reads from its configuration file."""

    train: TrainConfig = field(default_factory=TrainConfig)
    model: CondCDVAEConfig = field(default_factory=CondCDVAEConfig.cond_cdvae_4m)
    data: DataConfig = field(default_factory=DataConfig)
    model_preset: str = "cond_cdvae_4m"

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": self.train.to_dict(),
            "model": {"preset": self.model_preset, **self.model.to_dict()},
            "data": toml.to_plain(self.data),
        }

    def to_toml(self, path: str | Path) -> None:
        Path(path).write_text(toml.dumps(self.to_dict()))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def model_config_from_table(table: dict[str, Any]) -> tuple[CondCDVAEConfig, str]:
    """``[model]`` -> (config, preset name). Unknown presets and keys raise ``ValueError``."""
    table = dict(table)
    preset = table.pop("preset", "cond_cdvae_4m")
    if preset not in MODEL_PRESETS:
        raise ValueError(f"[model] preset {preset!r} is unknown; choose one of {sorted(MODEL_PRESETS)}")
    merged = _merge(MODEL_PRESETS[preset]().to_dict(), table)
    try:
        return CondCDVAEConfig.from_dict(merged), preset
    except (TypeError, ValueError) as err:
        raise ValueError(f"[model]: {err}") from err


def run_config_from_dict(data: dict[str, Any], *, source: str = "config") -> RunConfig:
    unknown = sorted(set(data) - set(_TABLES))
    if unknown:
        raise ValueError(f"{source}: unknown table(s) {unknown}; expected {list(_TABLES)}")
    model, preset = model_config_from_table(data.get("model", {}))
    return RunConfig(
        train=TrainConfig.from_dict(data.get("train", {})),
        model=model,
        data=toml.from_plain(DataConfig, data.get("data", {}), where="data"),
        model_preset=preset,
    )


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run configuration TOML file (see the module docstring); errors name the file."""
    try:
        return run_config_from_dict(toml.read(path), source=str(path))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from err
