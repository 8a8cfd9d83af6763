"""Checkpoints that load without executing code: ``model.safetensors`` + ``config.json``.

``config.json`` holds the schema version, the model config, a readable copy of the scalers (the
weights file holds the authoritative buffers), the volume prior (if the model has one), the versions
of the five packages and torch, and a caller's ``extra`` dict (JSON). Files are written to temporary
names and renamed, so an interrupted save never leaves a half-written checkpoint under the final names.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ._config import CondCDVAEConfig
from ._latent import LatentPrior
from ._model import CondCDVAE
from ._volume import VolumePrior

__all__ = ["SCHEMA_VERSION", "load_checkpoint", "package_versions", "read_checkpoint_info", "save_checkpoint"]

SCHEMA_VERSION = 1
WEIGHTS, CONFIG = "model.safetensors", "config.json"
LATENT_PRIOR = "latent_prior.safetensors"  # the model's LatentPrior, when it has one
_PACKAGES = ("xtal-graph", "score-decoder", "cond-vae", "xtal-eval", "xtal-data")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the five packages and torch (``None`` if not installed)."""
    out: dict[str, str | None] = {}
    for name in (*_PACKAGES, "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def save_checkpoint(directory: str | os.PathLike, model: CondCDVAE, *, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    ``extra`` must be JSON-serialisable (e.g. ``{"step": 1000, "epoch": 3}``); it is returned by
    :func:`read_checkpoint_info`. Returns the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prior = getattr(model, "volume_prior", None)
    latent = getattr(model, "latent_prior", None)
    info = {
        "schema_version": SCHEMA_VERSION,
        "format": "cond-vae checkpoint",
        "config": model.config.to_dict(),
        "scalers": model.scalers_dict(),
        "versions": package_versions(),
        "trained_on": getattr(model, "trained_on", None),  # what the training data covered (see below)
        "volume_prior": None if prior is None else prior.to_dict(),
        "latent_prior": None if latent is None else _latent_entry(latent),
        "extra": extra or {},
    }
    text = json.dumps(info, indent=2, allow_nan=False)  # fails before anything is written
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_weights, tmp_config = directory / f".{WEIGHTS}.tmp", directory / f".{CONFIG}.tmp"
    save_file(tensors, str(tmp_weights), metadata={"schema_version": str(SCHEMA_VERSION)})
    tmp_config.write_text(text)
    if latent is not None:
        latent.save(directory / LATENT_PRIOR)  # before config.json names it
    os.replace(tmp_weights, directory / WEIGHTS)
    os.replace(tmp_config, directory / CONFIG)
    return directory


def read_checkpoint_info(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint, after checking its schema version."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no {CONFIG} in {directory}")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"checkpoint: {path} is not valid JSON ({err})") from None
    version = info.get("schema_version") if isinstance(info, dict) else None
    if not isinstance(version, int):
        raise ValueError(f"checkpoint: {path} has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"checkpoint: {path} has schema version {version}, newer than this cond-vae "
            f"({SCHEMA_VERSION}); upgrade cond-vae (written with {info.get('versions', {}).get('cond-vae')})"
        )
    return info


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> CondCDVAE:
    """Rebuild a :class:`CondCDVAE` from a checkpoint directory (no pickle, no code execution).

    Every way a checkpoint can be broken (a missing, truncated or damaged file, a config.json that does
    not describe the weights) is a FileNotFoundError or ValueError naming the file and what is wrong."""
    info = read_checkpoint_info(directory)
    path = Path(directory) / CONFIG
    config = _config_from(info, path)
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint: no {WEIGHTS} in {directory}")
    try:
        state = load_file(str(weights), device=str(map_location))
    except Exception as err:  # safetensors raises its own error type for truncated or damaged files
        detail = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(
            f"checkpoint: {weights} cannot be read ({detail}); the file is truncated or damaged "
            f"({weights.stat().st_size} bytes): copy or save the checkpoint again"
        ) from None
    try:
        model = CondCDVAE(config)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ValueError(f"checkpoint: the model config in {path} cannot build a model ({err})") from None
    _check_fits(model, state, weights, path)
    # dtype of every floating tensor follows the saved weights (float32 or float64 checkpoints)
    first_param = next(name for name, _ in model.named_parameters())
    model.to(dtype=state[first_param].dtype)
    model.load_state_dict(state, strict=True)
    model.trained_on = info.get("trained_on")  # elements, conditions' ranges, sizes (None: not recorded)
    if info.get("volume_prior") is not None:  # older checkpoints have none
        try:
            model.volume_prior = VolumePrior.from_dict(info["volume_prior"])
        except ValueError as err:
            raise ValueError(f"checkpoint: {path} holds an invalid volume_prior ({err})") from None
    if info.get("latent_prior") is not None:  # older checkpoints have none
        model.latent_prior = _load_latent_prior(Path(directory), info["latent_prior"], config.latent_dim)
    return model.to(map_location)


def _latent_entry(latent: LatentPrior) -> dict:
    """What ``config.json`` says of the latent prior (its file holds the tensors)."""
    return {
        "file": LATENT_PRIOR,
        "crystals": latent.num_crystals,
        "components": int(latent.sizes.shape[0]),
        "analogues": latent.has_analogues,
    }


def _load_latent_prior(directory: Path, entry: Any, latent_dim: int) -> LatentPrior:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise ValueError(f"checkpoint: latent_prior in {directory / CONFIG} must name its file")
    file = directory / entry["file"]
    if not file.is_file():
        raise FileNotFoundError(f"checkpoint: {directory / CONFIG} names a latent prior; {file} is missing")
    try:
        prior = LatentPrior.load(file, num_crystals=int(entry.get("crystals", 0)))
    except Exception as err:  # safetensors' own error type for damaged files, ValueError for bad content
        detail = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"checkpoint: {file} is not a valid latent prior ({detail})") from None
    if prior.dim != latent_dim:
        raise ValueError(f"checkpoint: {file} is {prior.dim}-dimensional, the model's latent {latent_dim}")
    return prior


def _config_from(info: dict, path: Path) -> CondCDVAEConfig:
    if not isinstance(info.get("config"), dict):
        raise ValueError(f"checkpoint: {path} has no 'config' object")
    try:
        return CondCDVAEConfig.from_dict(info["config"])
    except (TypeError, KeyError, ValueError) as err:
        raise ValueError(f"checkpoint: {path} holds an invalid model config ({err})") from None


def _check_fits(model: CondCDVAE, state: dict, weights: Path, path: Path) -> None:
    """The weights must have exactly the names and shapes the config's model has."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint: {weights} does not match the config in {path} (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )
    wrong = [
        (k, tuple(state[k].shape), shape) for k, shape in expected.items() if tuple(state[k].shape) != shape
    ]
    if wrong:
        shown = "; ".join(
            f"{k} is {list(got)} in the weights, {list(want)} for the config" for k, got, want in wrong[:3]
        )
        raise ValueError(
            f"checkpoint: {weights} does not match the config in {path}: {len(wrong)} tensors differ in "
            f"shape ({shown}); was config.json edited or taken from another checkpoint?"
        )
