"""Opening a checkpoint: the one place that finds it (the shipped default model when none is named),
picks the device, joins a multi-process run, and describes what a checkpoint supports.

    model = open_model(None, device="auto").model          # the default model, on a GPU when there is one
    info = describe(None, formula="Si4O8")                   # what it was trained on, without building it

A checkpoint is a directory of ``config.json`` + ``model.safetensors`` (:mod:`cond_vae.checkpoint`):
loading it never runs code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CHECKPOINT",
    "OpenModel",
    "checkpoint_path",
    "condition_warnings",
    "describe",
    "open_model",
    "resolve_device",
]


def _default_checkpoint() -> Path | None:
    path = Path(__file__).resolve().parent / "models" / "default"
    return path if (path / "model.safetensors").is_file() else None


DEFAULT_CHECKPOINT: Path | None = _default_checkpoint()
"""The default model shipped inside xtal-tools (package data; its card: ``models/default/MODEL_CARD.md``)."""


def checkpoint_path(checkpoint: str | Path | None) -> Path:
    """``checkpoint`` as a path, or the shipped default model for None / ``""``.

    Raises:
        FileNotFoundError: not a directory, or no default model in this installation.
    """
    if checkpoint is None or str(checkpoint) == "":
        if DEFAULT_CHECKPOINT is None:
            raise FileNotFoundError(
                "no checkpoint given and no default model is installed (give --checkpoint)"
            )
        return DEFAULT_CHECKPOINT
    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} is not a directory")
    return path


def resolve_device(device: str | None) -> str:
    """``auto``/None -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device {device!r}: choose auto, cpu or cuda")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device}: torch sees no CUDA device on this machine")
    return device


@dataclass(frozen=True)
class OpenModel:
    """A loaded model and where it came from: ``path``, ``device`` (``cuda:<local rank>`` under a
    launcher), and the process's ``rank`` of ``world_size`` (1 without a launcher)."""

    model: Any
    path: Path
    device: str
    rank: int = 0
    world_size: int = 1

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (after a last barrier), if this run joined one."""
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()


def open_model(
    checkpoint: str | Path | None, *, device: str | None = "auto", join: bool = False
) -> OpenModel:
    """Load ``checkpoint`` (None: the default model) onto ``device``.

    With ``join=True`` and a launcher's environment (torchrun sets ``RANK``/``WORLD_SIZE``), the process
    joins the process group (NCCL on CUDA, gloo on the CPU) and takes the GPU of its local rank.

    Raises:
        FileNotFoundError, ValueError: a missing or broken checkpoint (named), or a bad device.
    """
    from cond_vae.checkpoint import load_checkpoint
    from cond_vae.distributed import process_env

    path = checkpoint_path(checkpoint)
    dev = resolve_device(device)
    env = process_env() if join else None
    if env is not None and env.world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo")
        if dev == "cuda":
            dev = f"cuda:{env.local_rank}"
    model = load_checkpoint(path, map_location=dev)
    rank, world = (env.rank, env.world_size) if env is not None else (0, 1)
    return OpenModel(model, path, dev, rank, world)


def condition_warnings(model, pressures) -> list[str]:
    """Plain-words notes for pressures outside what ``model`` was trained on (sampling then extrapolates;
    a relaxation still applies the requested pressure). Returned, not warned."""
    import warnings

    import torch

    if "pressure" not in model.config.condition_names:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # check_query also warns: here its messages are the values
        return list(
            model.conditions.check_query("pressure", torch.tensor(list(pressures), dtype=torch.float64))
        )


def describe(checkpoint: str | Path | None, *, formula: str | None = None) -> dict[str, Any]:
    """What a checkpoint is and supports, as a JSON-ready dict, without building the model.

    Architecture and parameter count (from the weights' header), conditions and their trained ranges,
    elements seen in training, the largest cell, noise levels, the default sampler's cost, the volume
    prior, versions, the model card; with ``formula``, whether its elements were seen in training and
    (with a volume prior) its cell volume per atom at 0 GPa.
    """
    from cond_vae import CondCDVAEConfig, parse_formula
    from cond_vae.checkpoint import read_checkpoint_info
    from cond_vae.sampling import SamplerConfig
    from safetensors import safe_open

    path = checkpoint_path(checkpoint)
    raw = read_checkpoint_info(path)
    config = CondCDVAEConfig.from_dict(raw["config"])
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint: no model.safetensors in {path}")
    with safe_open(str(weights), framework="pt") as fh:
        names = list(fh.keys())
        sizes = [fh.get_slice(n).get_shape() for n in names]
    trained = raw.get("trained_on") or {}
    enc, dec = config.encoder, config.decoder
    out = {
        "checkpoint": str(path),
        "tensors": len(names),
        "numbers_in_weights": sum(math.prod(s) for s in sizes),
        "latent_dim": config.latent_dim,
        "encoder": {
            "hidden_channels": enc.hidden_channels,
            "num_blocks": enc.num_blocks,
            "cutoff_A": enc.cutoff,
            "max_neighbors": enc.max_neighbors,
        },
        "decoder": {
            "emb_size_atom": dec.emb_size_atom,
            "num_blocks": dec.num_blocks,
            "cutoff_A": dec.cutoff,
            "max_neighbors": dec.max_neighbors,
        },
        "max_atoms": config.max_atoms,
        "conditions": list(config.condition_names),
        "noise_levels": [config.num_noise_levels, config.sigma_begin, config.sigma_end],
        "default_sampler": {**SamplerConfig().to_dict(), "decoder_calls": SamplerConfig().decoder_calls()},
        "trained_on": trained or None,
        "volume_prior": raw.get("volume_prior"),
        "latent_prior": raw.get("latent_prior"),
        "versions": raw.get("versions", {}),
        "extra": raw.get("extra", {}),
        "model_card": str(path / "MODEL_CARD.md") if (path / "MODEL_CARD.md").is_file() else None,
    }
    if formula is not None:
        parsed = parse_formula(formula, max_atoms=config.max_atoms, num_elements=config.num_elements)
        seen = set(trained.get("elements", []))
        unseen = sorted({int(z) for z in parsed.atom_types} - seen) if seen else []
        out["formula"] = {
            "formula": parsed.formula,
            "atoms": len(parsed.atom_types),
            "unseen_elements": unseen,
        }
        if raw.get("volume_prior"):
            out["formula"]["prior_volume_per_atom_0GPa"] = _prior_volume(
                raw["volume_prior"], parsed.atom_types
            )
    return out


def _prior_volume(prior: dict, atom_types) -> float:
    """Volume per atom (Å^3) of a cell of ``atom_types`` at zero conditions under a saved volume prior."""
    import torch
    from cond_vae import VolumePrior

    vp = VolumePrior.from_dict(prior)
    atoms = torch.tensor(list(atom_types))
    zero = {vp.condition: torch.zeros(1)} if vp.condition else {}
    batch = torch.zeros(len(atoms), dtype=torch.long)
    volume = vp.volume(atom_types=atoms, batch=batch, num_atoms=torch.tensor([len(atoms)]), conditions=zero)
    return round(float(volume[0]) / len(atoms), 3)
