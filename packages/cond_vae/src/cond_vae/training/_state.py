"""Resumable training checkpoints, stored without pickle.

A step checkpoint is a directory::

    step_00001000/
      model.safetensors, config.json   <- cond_vae.checkpoint.save_checkpoint (weights, config, scalers)
      train_state.safetensors          <- optimiser moments, RNG states (tensors)
      train_state.json                 <- step/epoch/position in the epoch, optimiser param groups,
                                          LR-scheduler state, best validation loss, TrainConfig

It is written to a temporary sibling directory and renamed into place, so a crash never leaves a
half-written checkpoint under the final name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from cond_vae.checkpoint import save_checkpoint

STATE_SCHEMA = 1
_TENSORS = "train_state.safetensors"
_JSON = "train_state.json"


@dataclass
class LoopState:
    """Where the loop is; everything needed, with the optimiser and scheduler, to continue exactly."""

    step: int = 0  # steps done (including skipped non-finite batches)
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # step batches of ``epoch`` already consumed
    best_val_loss: float = math.inf
    best_step: int | None = None
    num_skipped: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"step", "epoch", "ids", "reason"}
    interval_sums: list[float] = field(default_factory=list)  # train-log sums since the last log row
    csv_rows: int = 0  # rows of metrics.csv written when the checkpoint was taken


def _atomic_dir(final: Path) -> Path:
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def _commit_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_training_checkpoint(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    loop: LoopState,
    train_config_dict: dict[str, Any],
) -> Path:
    """Write a resumable checkpoint of ``model`` (unwrapped, not DDP) and the training state."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_dir(final)
    save_checkpoint(tmp, model, extra={"step": loop.step, "epoch": loop.epoch})

    tensors: dict[str, torch.Tensor] = {}
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for index, entry in opt["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.state.{index}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                opt_scalars.setdefault(str(index), {})[name] = value
    tensors["rng.torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    meta = {
        "schema": STATE_SCHEMA,
        "loop": dataclasses.asdict(loop),
        "optimizer": {"param_groups": opt["param_groups"], "scalar_state": opt_scalars},
        "scheduler": scheduler.state_dict(),
        "train_config": train_config_dict,
    }
    save_file(tensors, str(tmp / _TENSORS))
    (tmp / _JSON).write_text(json.dumps(meta, indent=1, default=_json_default))
    _commit_dir(tmp, final)
    return final


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in train_state.json")


def read_training_meta(directory: str | Path) -> dict[str, Any]:
    """The JSON part of a training checkpoint (clear errors for a missing or newer-schema one)."""
    path = Path(directory) / _JSON
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} is not a resumable training checkpoint (no {_JSON}); "
            "a model-only checkpoint (e.g. best/) cannot be resumed"
        )
    meta = json.loads(path.read_text())
    if meta.get("schema", 0) > STATE_SCHEMA:
        raise ValueError(
            f"{path}: training-state schema {meta.get('schema')} is newer than this cond-vae "
            f"supports ({STATE_SCHEMA}); upgrade cond-vae to resume it"
        )
    return meta


def load_training_state(
    directory: str | Path,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
) -> LoopState:
    """Restore optimiser, scheduler and RNG states in place; return the loop position."""
    directory = Path(directory)
    meta = read_training_meta(directory)
    tensors = load_file(str(directory / _TENSORS))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer.state."):
            _, _, index, name = key.split(".", 3)
            state.setdefault(int(index), {})[name] = value
    for index, scalars in meta["optimizer"]["scalar_state"].items():
        state.setdefault(int(index), {}).update(scalars)
    groups = meta["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch_cpu"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return LoopState(**meta["loop"])


def latest_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    """The step checkpoint with the highest step under ``checkpoints_dir`` (None when there is none)."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return None
    found = sorted(p for p in root.glob("step_*") if (p / _JSON).is_file())
    return found[-1] if found else None


def prune_checkpoints(checkpoints_dir: str | Path, keep: int) -> None:
    """Remove all but the newest ``keep`` step checkpoints."""
    found = sorted(p for p in Path(checkpoints_dir).glob("step_*") if p.is_dir())
    for old in found[:-keep]:
        shutil.rmtree(old)


def save_model_only(directory: str | Path, model: torch.nn.Module, extra: dict[str, Any]) -> Path:
    """An atomic model-only checkpoint (weights + config), e.g. ``best/``."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_dir(final)
    save_checkpoint(tmp, model, extra=extra)
    _commit_dir(tmp, final)
    return final
