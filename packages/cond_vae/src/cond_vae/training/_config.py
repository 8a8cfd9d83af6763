"""Training configuration: a frozen dataclass with TOML load/save.

Defaults follow the reference's README runs (reference-anatomy §3): Adam lr 1e-4, ReduceLROnPlateau
(factor 0.6, patience 30 validations, min lr 1e-5) stepped on the validation loss after every
validation (every 5 epochs), gradient clipping by value at 0.5, teacher forcing of the lattice for
epochs 0..60, batch 128 per process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cond_vae import toml

_DEVICES = ("auto", "cpu", "cuda")
_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (not what to train: that is ``CondCDVAEConfig``).

    Steps: one step is one batch of ``batch_size`` crystals per process (split into ``accumulate``
    micro-batches), followed by one optimiser update; a batch whose loss is non-finite and skipped
    (``on_nonfinite = "skip"``) still counts as a step. Epochs count from 0.
    """

    seed: int = 42
    device: str = "auto"  # "auto" (cuda when present), "cpu", "cuda"; under torchrun: cuda:LOCAL_RANK
    dtype: str = "float32"  # parameters and batches; "float64" for exactness tests
    # bfloat16 autocast of the training forward pass: the networks' matrix products in bf16, the geometry
    # (positions, cells, neighbour lists: xtal_graph) and the losses in float32. True, False, or "auto":
    # on where the device multiplies bf16 natively (CUDA sm80+, x86 with AMX / AVX512-BF16), where it
    # makes a step ~1.8x cheaper (docs/benchmarks/cond_vae_training.md); emulated bf16 is slower than
    # fp32. Validation always runs in float32, so learning curves compare across settings.
    bf16_autocast: bool | Literal["auto"] = False
    # torch.compile the encoder and decoder (cond_vae.compile_networks): fused kernels, fewer launches;
    # pays on a GPU (measured in docs/benchmarks/gpu.md), about a minute of compilation at the start
    compile: bool = False
    batch_size: int = 128  # crystals per process per step (the reference: 128 per GPU)
    accumulate: int = 1  # micro-batches per step (strided split, see ``_data.step_batches``)
    val_batch_size: int | None = None  # default: batch_size
    drop_last: bool = False
    num_workers: int = 0
    # the encoder's graph of each training/validation crystal: "memory" (built once per run),
    # "none" (rebuilt at every step), "store" (a sidecar .npz beside a local xtal-data store, named
    # after the graph settings) or the path of a sidecar .npz; a sidecar keeps graphs across runs
    encoder_graphs: str = "memory"
    # the cell each training/validation crystal is shown in: "niggli" (its Niggli-reduced cell, computed
    # once per run, as the reference trains) or "as_stored" (whatever cell the store holds; the lattice
    # head then learns arbitrary settings: docs/benchmarks/default_model_relay.md, "Cell settings")
    cells: str = "niggli"
    # at the end of a run, fit the latent prior (cond_vae.fit_latent_prior: the training crystals' codes
    # by cell size, which the sampler draws from by default) for best/ and the returned model: one
    # encoder pass over the training data
    latent_prior: bool = True
    max_epochs: int = 600
    max_steps: int | None = None  # stop early after this many steps (checkpointed, resumable)
    # stop after this many minutes of this process's loop (checkpointed, resumable): a training relay
    # gives each session or lent GPU a fixed budget; SIGINT/SIGTERM stop the same way
    max_minutes: float | None = None
    # warm start: the weights (and fitted scalers/scale factors) of this model checkpoint directory, a
    # fresh optimiser; ignored when resuming a step checkpoint (that holds the weights already)
    init_from: str | None = None
    # with init_from: keep its scalers ("keep"), refit the condition scalers on this run's training data
    # ("conditions": new pressures or ranges; the lattice scaler stays) or refit every scaler ("all")
    init_scalers: str = "keep"
    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    plateau_factor: float = 0.6
    plateau_patience: int = 30  # in validations (30 x 5 epochs in the reference)
    plateau_min_lr: float = 1e-5
    val_every_epochs: int = 5
    teacher_forcing_max_epoch: int = 60  # the true lattice is used for epochs <= this (0-based)
    # after teacher forcing, may the coordinate loss train the lattice head through the predicted cell?
    # True is the reference's behaviour; it biases the cells large (CondCDVAE.forward explains)
    coord_loss_trains_lattice: bool = True
    grad_clip: float = 0.5
    grad_clip_mode: str = "value"  # "value" (element-wise, the reference), "norm" or "none"
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 2  # step checkpoints kept (oldest removed); best/ and the last stay
    log_every_steps: int = 50
    on_nonfinite: str = "raise"  # "raise" or "skip" (skip the batch, count and report it)
    max_nonfinite_skips: int = 100  # with "skip": raise after this many skipped batches
    progress: bool = True  # tqdm progress bar on rank 0
    tensorboard: bool = False  # also log to TensorBoard (needs the ``tensorboard`` package)

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"TrainConfig: {message}")

        need(self.device in _DEVICES, f"device must be one of {_DEVICES}, got {self.device!r}")
        need(self.dtype in _DTYPES, f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.accumulate >= 1, f"accumulate must be >= 1, got {self.accumulate}")
        need(self.accumulate <= self.batch_size, "accumulate cannot exceed batch_size")
        need(self.val_batch_size is None or self.val_batch_size >= 1, "val_batch_size must be >= 1")
        need(self.max_epochs >= 1, f"max_epochs must be >= 1, got {self.max_epochs}")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1")
        need(self.max_minutes is None or self.max_minutes > 0, "max_minutes must be > 0")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(len(self.adam_betas) == 2, "adam_betas must hold two numbers")
        need(0 < self.plateau_factor < 1, "plateau_factor must lie in (0, 1)")
        need(self.val_every_epochs >= 1, "val_every_epochs must be >= 1")
        need(self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}")
        need(
            self.grad_clip_mode in ("value", "norm", "none"),
            "grad_clip_mode must be 'value', 'norm' or 'none'",
        )
        need(self.checkpoint_every_steps >= 1, "checkpoint_every_steps must be >= 1")
        need(self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1")
        need(self.log_every_steps >= 1, "log_every_steps must be >= 1")
        need(self.on_nonfinite in ("raise", "skip"), "on_nonfinite must be 'raise' or 'skip'")
        need(self.num_workers >= 0, "num_workers must be >= 0")
        need(
            self.bf16_autocast in (True, False, "auto"),
            f"bf16_autocast must be true, false or 'auto', got {self.bf16_autocast!r}",
        )
        need(bool(self.encoder_graphs), "encoder_graphs must be 'memory', 'none', 'store' or a file path")
        need(self.init_scalers in ("keep", "conditions", "all"), "init_scalers: keep, conditions or all")
        need(
            self.cells in ("niggli", "as_stored"),
            f"cells must be 'niggli' or 'as_stored', got {self.cells!r}",
        )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return toml.to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return toml.from_plain(cls, data, where="train")

    def to_toml(self, path: str | Path) -> None:
        """Write ``[train]`` to ``path``."""
        Path(path).write_text(toml.dumps({"train": self.to_dict()}))

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read the ``[train]`` table of ``path`` (other tables are ignored)."""
        return cls.from_dict(toml.read(path).get("train", {}))


@dataclass(frozen=True)
class DataConfig:
    """Where the crystals come from: an xtal-data store (local path or fsspec URL) and one of its splits.

    ``split`` names a stored split (``xtal-data split`` writes "random" or "composition"); its parts
    ``train_part`` and ``val_part`` are used (``val_part = ""`` trains without validation). With
    ``split = ""`` the whole store is the training set.
    """

    path: str | None = None
    split: str = "random"
    train_part: str = "train"
    val_part: str = "val"
    max_train: int | None = None  # use only the first N training crystals (smoke runs)
    max_val: int | None = None
