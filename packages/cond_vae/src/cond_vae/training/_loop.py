"""``train()``: the training loop (one process, or one of several under torchrun with DDP).

Output directory::

    out_dir/
      config.toml            resolved [train] and [model] configuration, package versions (rank 0)
      metrics.csv            train rows every ``log_every_steps``, a val row per validation
      checkpoints/step_*/    resumable step checkpoints (every ``checkpoint_every_steps`` and at the end)
      best/                  model-only checkpoint with the lowest validation loss
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from xtal_graph import Crystal

from cond_vae import distributed, toml
from cond_vae._compile import compile_networks
from cond_vae._config import CondCDVAEConfig
from cond_vae._latent import fit_latent_prior
from cond_vae._model import CondCDVAE
from cond_vae._volume import fit_volume_prior
from cond_vae.checkpoint import WEIGHTS, load_checkpoint, package_versions, read_checkpoint_info
from cond_vae.training import _data, _state
from cond_vae.training._autocast import use_bf16_autocast
from cond_vae.training._cells import ReducedCellData, with_cells
from cond_vae.training._config import TrainConfig
from cond_vae.training._graph_cache import with_encoder_graphs
from cond_vae.training._metrics import MetricsLog, ValMetrics
from cond_vae.training._step import NonFiniteLossError, train_step, validate

# Fields that may change between a run and its resumption without breaking exactness.
_RESUMABLE_CHANGES = {
    "max_epochs", "max_steps", "max_minutes", "init_from", "progress", "checkpoint_every_steps",
    "keep_checkpoints", "log_every_steps", "tensorboard", "num_workers", "max_nonfinite_skips",
    "encoder_graphs",  # where cached encoder graphs live: the same graphs, bit for bit (tested)
    "latent_prior",  # fitted after the loop, from the trained weights
}  # fmt: skip

SCALE_FIT_CRYSTALS = 128  # training crystals the decoder's scale factors are fitted on (a new run)


@dataclass(frozen=True)
class SkippedBatch:
    """A step whose batch was skipped because of a non-finite loss or gradient."""

    step: int
    epoch: int
    ids: tuple[str | None, ...]
    reason: str


@dataclass(frozen=True)
class TrainResult:
    """What a finished ``train`` call leaves behind (paths are inside ``out_dir``)."""

    out_dir: Path
    steps: int
    epochs_completed: int
    final_checkpoint: Path
    best_checkpoint: Path | None
    best_val_loss: float | None
    last_val: ValMetrics | None
    last_train_loss: float | None
    skipped: tuple[SkippedBatch, ...]
    seconds: float
    stopped_by: str  # "max_epochs", "max_steps", "max_minutes", "SIGINT" or "SIGTERM"
    resumed_from_step: int | None  # the step a resumed run continued from (None: a new run)
    model: CondCDVAE = field(repr=False, compare=False)  # this process's trained model (not DDP-wrapped)


def train(
    train_config: TrainConfig,
    model_config: CondCDVAEConfig | None,
    train_data: Iterable[Crystal] | Sequence[Crystal],
    val_data: Iterable[Crystal] | Sequence[Crystal] | None,
    out_dir: str | Path,
    *,
    resume_from: str | Path | None = None,
) -> TrainResult:
    """Train a Cond-CDVAE on crystals (each with ``properties`` holding every scalar condition).

    ``resume_from``: a step checkpoint directory, or ``"auto"`` for the newest one under
    ``out_dir/checkpoints`` (a fresh start when there is none). When resuming, ``model_config`` may be
    ``None`` (taken from the checkpoint); if given it must equal the checkpoint's.
    Under torchrun (WORLD_SIZE > 1) every process calls ``train`` with the same arguments.
    Raises ``NonFiniteLossError`` (with the crystal ids) on a non-finite loss when
    ``on_nonfinite = "raise"``.
    """
    ctx = distributed.setup(train_config.device)
    finished = False
    try:
        trainer = _Trainer(train_config, model_config, train_data, val_data, Path(out_dir), ctx, resume_from)
        result = trainer.run()
        del trainer  # the DDP wrapper (its reducer holds the process group) goes before the group
        finished = True
        return result
    finally:
        distributed.teardown(ctx, synchronize=finished)


class _Trainer:
    def __init__(self, cfg, model_config, train_data, val_data, out_dir, ctx, resume_from):
        self.cfg, self.ctx, self.out_dir = cfg, ctx, out_dir
        self.train_data = _data.as_sequence(train_data, name="training")
        self.val_data = None if val_data is None else _data.as_sequence(val_data, name="validation")
        # every crystal in the cell TrainConfig.cells names (Niggli-reduced once per run by default)
        self.train_data = with_cells(self.train_data, cfg.cells)
        self.val_data = None if self.val_data is None else with_cells(self.val_data, cfg.cells)
        if ctx.is_main and cfg.cells == "niggli":
            parts = [("training", self.train_data), ("validation", self.val_data)]
            said = "; ".join(
                f"{d.num_changed:,} of {len(d):,} {name}"
                for name, d in parts
                if isinstance(d, ReducedCellData)
            )
            print(f"cells: Niggli-reduced ({said} crystals were stored in another cell)", file=sys.stderr)
        self.dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        self.autocast = use_bf16_autocast(cfg.bf16_autocast, ctx.device)
        if ctx.is_main and self.autocast:
            where = f"the networks on {ctx.device}; geometry, losses and validation in fp32"
            print(f"precision: bf16 autocast of {where}", file=sys.stderr)
        self.ckpt_dir = out_dir / "checkpoints"
        resume = self._resolve_resume(resume_from)
        self.model = self._build_model(model_config, resume)
        if cfg.compile:
            compile_networks(self.model)  # in place: parameter names and checkpoints unchanged
        graphs = functools.partial(
            with_encoder_graphs,
            encoder=self.model.config.encoder,
            dtype=self.dtype,
            where=cfg.encoder_graphs,
            cells=cfg.cells,
        )  # the encoder's graph of every true structure, built once (TrainConfig.encoder_graphs)
        self.train_data = graphs(self.train_data)
        self.val_data = None if self.val_data is None else graphs(self.val_data)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.net = (
            DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
            if ctx.distributed
            else self.model
        )
        self.optimizer = torch.optim.Adam(
            self.params, lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            min_lr=cfg.plateau_min_lr,
        )  # fmt: skip
        self.loop = _state.LoopState()
        if resume is not None:
            self._check_resumable(resume)
            self.loop = _state.load_training_state(resume, optimizer=self.optimizer, scheduler=self.scheduler)
        self.resumed_from_step = self.loop.step if resume is not None else None
        if ctx.is_main and resume_from is not None:
            said = (
                f"resuming {resume} at step {self.loop.step} (epoch {self.loop.epoch})"
                if resume is not None
                else f"resume 'auto': no checkpoint under {self.ckpt_dir}, starting a new run at step 0"
                + (f" from the weights of {cfg.init_from}" if cfg.init_from else "")
            )
            print(said, file=sys.stderr, flush=True)
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            config = {"train": cfg.to_dict(), "model": self.model.config.to_dict()}
            versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
            header = f"# Resolved configuration (cond_vae.training.load_run_config reads it).\n# {versions}\n"
            (out_dir / "config.toml").write_text(header + toml.dumps(config))
        distributed.barrier(ctx)
        tb = out_dir / "tensorboard" if cfg.tensorboard else None
        self.log = MetricsLog(out_dir / "metrics.csv", enabled=ctx.is_main, tensorboard_dir=tb)
        self.log.start(keep_rows=self.loop.csv_rows if resume is not None else None)
        self.last_val: ValMetrics | None = None
        self.last_train_loss: float | None = None

    # ------------------------------------------------------------------ set-up
    def _resolve_resume(self, resume_from) -> Path | None:
        existing = _state.latest_checkpoint(self.ckpt_dir)
        if resume_from is not None and str(resume_from) == "auto":
            return existing
        path = None if resume_from is None else Path(resume_from)
        if path is not None:
            _state.read_training_meta(path)  # clear error when it is not a training checkpoint
        if existing is not None and (path is None or path.resolve().parent != self.ckpt_dir.resolve()):
            raise FileExistsError(
                f"{self.out_dir} already holds checkpoints of another run (newest {existing.name}); "
                "resume it (resume_from='auto', --resume auto) or choose a new output directory"
            )
        return path

    def _build_model(self, model_config, resume: Path | None) -> CondCDVAE:
        torch.manual_seed(self.cfg.seed)
        if resume is not None:
            model = _load_weights_exact(resume)
            if model_config is not None and model.config != model_config:
                raise ValueError(
                    f"model config differs from the checkpoint's in {resume}; pass None to reuse it"
                )
        elif self.cfg.init_from is not None:  # warm start: weights, scalers and scale factors as saved
            # a config that only moves the conditions' Gaussian bases (same sizes) is accepted
            model = _load_weights_exact(Path(self.cfg.init_from), rebase=model_config)
            if self.cfg.init_scalers != "keep":  # new conditions or ranges: standardise on this run's data
                model.fit_scalers(
                    _data.scaler_items(self.train_data), fit_lattice=self.cfg.init_scalers == "all"
                )
        else:
            if model_config is None:
                raise ValueError("model_config is required unless resuming from a checkpoint")
            model = CondCDVAE(model_config)
            model.fit_scalers(_data.scaler_items(self.train_data))
        model.trained_on = _data.coverage(self.train_data, model.config.condition_names)
        names = model.config.condition_names
        model.volume_prior = fit_volume_prior(
            _data.scaler_items(self.train_data), condition="pressure" if "pressure" in names else None
        )
        if self.dtype == torch.float64:
            model = model.to(torch.float64)  # scalers are float64 already; never cast them to float32
        model = model.to(self.ctx.device)
        if resume is None and self.cfg.init_from is None:  # else the weights carry fitted factors
            # the same crystals whatever the batch size and number of processes: identical factors
            head = _data.head_batch(self.train_data, SCALE_FIT_CRYSTALS, self.dtype)
            head = head.to(device=self.ctx.device)
            model.fit_decoder_scale_factors(head, seed=self.cfg.seed)
        return model.train()

    def _check_resumable(self, resume: Path) -> None:
        saved = _state.read_training_meta(resume)["train_config"]
        now = self.cfg.to_dict()
        changed = sorted(k for k in now if k not in _RESUMABLE_CHANGES and saved.get(k) != now[k])
        if changed:
            warnings.warn(
                f"resuming {resume} with changed settings {changed}: the run continues but will not "
                "equal an uninterrupted one",
                stacklevel=3,
            )

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        cfg, loop, ctx = self.cfg, self.loop, self.ctx
        start = time.perf_counter()
        n_batches = len(self._epoch_batches(0))
        total = (
            cfg.max_epochs * n_batches
            if cfg.max_steps is None
            else min(cfg.max_steps, cfg.max_epochs * n_batches)
        )
        bar = _progress(total=total, initial=min(loop.step, total), enabled=cfg.progress and ctx.is_main)
        interval = torch.tensor(loop.interval_sums or [0.0] * 6, dtype=torch.float64)
        stopper = _Stopper(cfg, start, ctx)
        stop = stopper.check(loop.step, timed=False)  # at least one step per call unless max_steps is met
        with stopper.signals():
            self._loop(interval, stopper, bar, start, stop)
        bar.close()
        loop.interval_sums = interval.tolist()
        final = self._save_step_checkpoint()
        self.log.close()
        best = self.out_dir / "best"
        if cfg.latent_prior:
            self._fit_latent_priors(best)
        return TrainResult(
            out_dir=self.out_dir,
            steps=loop.step,
            epochs_completed=loop.epoch,
            final_checkpoint=final,
            best_checkpoint=best if best.is_dir() else None,
            best_val_loss=None if math.isinf(loop.best_val_loss) else loop.best_val_loss,
            last_val=self.last_val,
            last_train_loss=self.last_train_loss,
            skipped=tuple(
                SkippedBatch(s["step"], s["epoch"], tuple(s["ids"]), s["reason"]) for s in loop.skipped
            ),
            seconds=time.perf_counter() - start,
            stopped_by=stopper.reason or "max_epochs",
            resumed_from_step=self.resumed_from_step,
            model=self.model,
        )

    def _fit_latent_priors(self, best: Path) -> None:
        """Rank 0: the latent prior of ``best/`` and of the model in memory, on the training crystals
        (one encoder pass when the last step is the best one: the same weights)."""
        if self.ctx.is_main:
            prior = None
            if best.is_dir():
                model = load_checkpoint(best, map_location=self.ctx.device)
                model.latent_prior = prior = fit_latent_prior(model, _data.crystal_batches(self.train_data))
                _state.save_model_only(best, model, read_checkpoint_info(best).get("extra", {}))
            if prior is None or self.loop.best_step != self.loop.step:
                prior = fit_latent_prior(self.model, _data.crystal_batches(self.train_data))
            self.model.latent_prior = prior
        distributed.barrier(self.ctx)

    def _loop(self, interval: torch.Tensor, stopper: _Stopper, bar, start: float, stop: bool) -> None:
        cfg, loop = self.cfg, self.loop
        while loop.epoch < cfg.max_epochs and not stop:
            batches = self._epoch_batches(loop.epoch)
            teacher_forcing = loop.epoch <= cfg.teacher_forcing_max_epoch
            # One loader per epoch over the remaining steps' micro-batches (workers prefetch across steps).
            first = loop.batch_in_epoch
            step_micro = [_data.micro_batches(b, cfg.accumulate) for b in batches[first:]]
            loaded = _data.iterate_micro_batches(
                self.train_data, [m for ms in step_micro for m in ms], dtype=self.dtype,
                num_workers=cfg.num_workers,
            )  # fmt: skip
            while loop.batch_in_epoch < len(batches) and not stop:
                micro = [next(loaded) for _ in step_micro[loop.batch_in_epoch - first]]
                stats = self._step(micro, teacher_forcing)
                loop.step += 1
                loop.batch_in_epoch += 1
                if not stats.reason:  # skipped batches are counted, never averaged in
                    interval += stats.sums
                    self.last_train_loss = float(stats.sums[0] / stats.sums[4])
                if loop.step % cfg.log_every_steps == 0:
                    self._log_train(interval, stats.grad_norm, start)
                    interval.zero_()
                bar.update(1)
                if self.last_train_loss is not None:
                    bar.set_postfix(loss=f"{self.last_train_loss:.4g}", epoch=loop.epoch, refresh=False)
                stop = stopper.check(loop.step)
                if loop.step % cfg.checkpoint_every_steps == 0 and not stop:
                    loop.interval_sums = interval.tolist()
                    self._save_step_checkpoint()
            if loop.batch_in_epoch < len(batches):
                break  # stopped mid-epoch (max_steps, max_minutes or a signal)
            self._end_epoch(start)
            stop = stop or stopper.check(loop.step)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        cfg = self.cfg
        order = _data.epoch_order(
            len(self.train_data), seed=cfg.seed, epoch=epoch, rank=self.ctx.rank,
            world_size=self.ctx.world_size, shuffle=True,
        )  # fmt: skip
        batches = _data.step_batches(order, batch_size=cfg.batch_size, drop_last=cfg.drop_last)
        if not batches:
            raise ValueError(
                f"{len(self.train_data)} training crystals over {self.ctx.world_size} process(es) give "
                f"no full batch of {cfg.batch_size} with drop_last = true"
            )
        return batches

    def _step(self, micro: list, teacher_forcing: bool):
        cfg, loop = self.cfg, self.loop
        self.optimizer.zero_grad(set_to_none=True)
        stats = train_step(
            net=self.net, params=self.params, micro=micro, seed=cfg.seed, step=loop.step, ctx=self.ctx,
            teacher_forcing=teacher_forcing, autocast=self.autocast, grad_clip=cfg.grad_clip,
            grad_clip_mode=cfg.grad_clip_mode, coord_loss_trains_lattice=cfg.coord_loss_trains_lattice,
        )  # fmt: skip
        if not stats.reason:
            self.optimizer.step()
            return stats
        ids = tuple(i for ids in distributed.all_gather_objects(list(stats.bad_ids), self.ctx) for i in ids)
        message = (
            f"{stats.reason} at step {loop.step} (epoch {loop.epoch}); crystals: {list(ids)}"
            " (on_nonfinite = 'skip' skips such batches instead of stopping)"
        )
        if cfg.on_nonfinite == "raise":
            raise NonFiniteLossError(message, step=loop.step, epoch=loop.epoch, ids=ids)
        self.optimizer.zero_grad(set_to_none=True)
        loop.num_skipped += 1
        loop.skipped.append(
            {"step": loop.step, "epoch": loop.epoch, "ids": list(ids), "reason": stats.reason}
        )
        warnings.warn(f"skipped batch: {message}", stacklevel=2)
        if loop.num_skipped > cfg.max_nonfinite_skips:
            raise NonFiniteLossError(
                f"more than max_nonfinite_skips = {cfg.max_nonfinite_skips} batches skipped; last: {message}",
                step=loop.step, epoch=loop.epoch, ids=ids,
            )  # fmt: skip
        return stats

    def _end_epoch(self, start: float) -> None:
        cfg, loop = self.cfg, self.loop
        epoch = loop.epoch
        if self.val_data is not None and (
            (epoch + 1) % cfg.val_every_epochs == 0 or epoch + 1 == cfg.max_epochs
        ):
            val = self._validate()
            self.scheduler.step(val.loss)
            self.log.write(val.as_row(lr=self._lr(), seconds=time.perf_counter() - start))
            if val.loss < loop.best_val_loss:
                loop.best_val_loss, loop.best_step = val.loss, loop.step
                if self.ctx.is_main:
                    extra = {"step": loop.step, "epoch": epoch, "val_loss": val.loss}
                    _state.save_model_only(self.out_dir / "best", self.model, extra)
                distributed.barrier(self.ctx)
        loop.epoch += 1
        loop.batch_in_epoch = 0

    def _validate(self) -> ValMetrics:
        cfg, ctx = self.cfg, self.ctx
        shards = _data.validation_shards(
            len(self.val_data), rank=ctx.rank, world_size=ctx.world_size,
            batch_size=cfg.val_batch_size or cfg.batch_size,
        )  # fmt: skip
        loaded = _data.iterate_micro_batches(
            self.val_data, [b for _, b in shards], dtype=self.dtype, num_workers=cfg.num_workers
        )
        batches = zip((i for i, _ in shards), loaded, strict=True)
        sums, bad = validate(model=self.model, batches=batches, seed=cfg.seed, ctx=ctx)
        bad_all = [ids for part in distributed.all_gather_objects(bad, ctx) for ids in part]
        if bad_all:
            message = f"non-finite validation loss at step {self.loop.step}; crystals: {bad_all}"
            if cfg.on_nonfinite == "raise":
                raise NonFiniteLossError(message, step=self.loop.step, epoch=self.loop.epoch, ids=bad_all[0])
            warnings.warn(message + " (left out of the validation metrics)", stacklevel=2)
        n = float(sums[6])
        if n == 0:
            raise NonFiniteLossError("every validation batch was non-finite", step=self.loop.step,
                                     epoch=self.loop.epoch, ids=())  # fmt: skip
        v = (sums / n).tolist()
        self.last_val = ValMetrics(self.loop.step, self.loop.epoch, *v[:6], num_crystals=int(n))
        return self.last_val

    # ------------------------------------------------------------------ output
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _log_train(self, interval: torch.Tensor, grad_norm: float, start: float) -> None:
        n = float(interval[4])
        parts = (interval[:4] / n).tolist() if n > 0 else [math.nan] * 4
        row = dict(zip(("loss", "lattice", "coord", "kl"), parts, strict=True))
        row.update(
            split="train", step=self.loop.step, epoch=self.loop.epoch, lr=self._lr(), grad_norm=grad_norm,
            num_crystals=int(n), skipped=self.loop.num_skipped, seconds=time.perf_counter() - start,
        )  # fmt: skip
        self.log.write(row)

    def _save_step_checkpoint(self) -> Path:
        path = self.ckpt_dir / f"step_{self.loop.step:08d}"
        self.loop.csv_rows = self.log.rows
        if self.ctx.is_main:
            _state.save_training_checkpoint(
                path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, loop=self.loop,
                train_config_dict=self.cfg.to_dict(),
            )  # fmt: skip
            _state.prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)
        distributed.barrier(self.ctx)
        return path


def _load_weights_exact(directory: Path, *, rebase: CondCDVAEConfig | None = None) -> CondCDVAE:
    """The checkpoint's model with every buffer in its saved dtype.

    ``cond_vae.checkpoint.load_checkpoint`` casts the model to the parameters' dtype, which turns the
    float64 ``sigmas`` buffer of a float32 model into float32 (the scalers keep float64); a resumed
    run must hold exactly what an uninterrupted one holds (the resume test compares every tensor).

    ``rebase``: build this config instead, which may differ from the saved one only in where its scalar
    conditions' Gaussian bases lie (``basis``, ``start``, ``stop``, ``width``; same names and sizes):
    the weights load as saved, the basis centres come from ``rebase``. Any other difference raises.
    """
    from safetensors.torch import load_file

    info = read_checkpoint_info(directory)
    saved = CondCDVAEConfig.from_dict(info["config"])
    config = saved if rebase is None else rebase
    if config != saved and not _only_bases_differ(saved, config):
        raise ValueError(
            f"model config differs from the checkpoint's in {directory} in more than the conditions' "
            "Gaussian bases; pass None to take it from there"
        )
    model = CondCDVAE(config)
    state = load_file(str(directory / WEIGHTS))
    for spec in config.scalar_conditions:  # derived from the config, not learned
        key = f"conditions.bases.{spec.name}.centers"
        state[key] = model.state_dict()[key]
    first = next(name for name, _ in model.named_parameters())
    if state[first].dtype == torch.float64:
        model = model.to(torch.float64)
    model.load_state_dict(state, strict=True)
    return model


class _Stopper:
    """When to stop early: ``max_steps``, ``max_minutes`` of this loop, or SIGINT/SIGTERM.

    A signal only sets a flag; the loop finishes its step, writes a step checkpoint and returns, so an
    interrupted run resumes exactly (``--resume auto``). Under several processes the decision is
    all-reduced every step so that every rank stops at the same step.
    """

    def __init__(self, cfg: TrainConfig, start: float, ctx) -> None:
        self.cfg, self.start, self.ctx = cfg, start, ctx
        self.reason: str | None = None
        self._signal: str | None = None

    def check(self, step: int, *, timed: bool = True) -> bool:
        cfg = self.cfg
        elapsed = time.perf_counter() - self.start
        if cfg.max_steps is not None and step >= cfg.max_steps:
            self.reason = "max_steps"
        elif timed and cfg.max_minutes is not None and elapsed >= 60.0 * cfg.max_minutes:
            self.reason = "max_minutes"
        elif self._signal is not None:
            self.reason = self._signal
        if self.ctx.distributed:  # every rank stops together (a signal may reach one rank first)
            flag = torch.tensor([self.reason is not None], dtype=torch.int32, device=self.ctx.device)
            flag = distributed.all_reduce_sum(flag, self.ctx)
            if bool(flag.item()) and self.reason is None:
                self.reason = "another rank stopped"
        return self.reason is not None

    @contextlib.contextmanager
    def signals(self):
        """Turn SIGINT/SIGTERM into a stop after the current step (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, _frame):
            if self._signal is not None:  # a second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._signal = signal.Signals(signum).name
            if self.ctx.is_main:
                print(
                    f"\n{self._signal}: finishing this step and writing a checkpoint (again to abort "
                    "without one)",
                    file=sys.stderr, flush=True,
                )  # fmt: skip

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def _progress(*, total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


def _only_bases_differ(saved: CondCDVAEConfig, new: CondCDVAEConfig) -> bool:
    """``new`` equals ``saved`` but for its scalar conditions' basis placement (names and sizes kept)."""
    if dataclasses.replace(new, scalar_conditions=saved.scalar_conditions) != saved:
        return False
    pairs = list(zip(saved.scalar_conditions, new.scalar_conditions, strict=False))
    return len(saved.scalar_conditions) == len(new.scalar_conditions) and all(
        a.name == b.name and a.n_basis == b.n_basis and a.min_scale == b.min_scale for a, b in pairs
    )
