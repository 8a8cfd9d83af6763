"""Where this process sits under a launcher, and the process group for training.

torchrun (and SLURM through torchrun) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. Read them once
with :func:`process_env` (no process group, no CUDA; cheap enough for light commands that only need to
know whether they are rank 0)::

    env = process_env()            # ProcessEnv(rank=0, world_size=1, local_rank=0) outside a launcher
    if env.is_main: ...

Training calls :func:`setup`, which resolves the device and, with ``WORLD_SIZE > 1``, joins the process
group (NCCL on CUDA, gloo on CPU; ``MASTER_ADDR``/``MASTER_PORT`` must be set). One process needs no
process group, and the collectives here are no-ops in a single process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessEnv:
    """This process's place in a launch: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def process_env(environ: Mapping[str, str] | None = None) -> ProcessEnv:
    """``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from ``environ`` (default ``os.environ``).

    Unset or empty variables take the single-process defaults (0, 1, 0). Joins no process group and
    touches no CUDA. Raises ``ValueError`` naming the variable when one is not an integer.
    """
    env = os.environ if environ is None else environ
    return ProcessEnv(
        rank=_env_int(env, "RANK", 0),
        world_size=_env_int(env, "WORLD_SIZE", 1),
        local_rank=_env_int(env, "LOCAL_RANK", 0),
    )


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from err


@dataclass(frozen=True)
class DistContext:
    """A training process: ``rank`` of ``world_size``, and the torch device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # True when ``setup`` created the process group (and ``teardown`` destroys it)

    @property
    def env(self) -> ProcessEnv:
        """The launch position without the device."""
        return ProcessEnv(self.rank, self.world_size, self.local_rank)

    @property
    def is_main(self) -> bool:
        return self.env.is_main

    @property
    def distributed(self) -> bool:
        return self.env.distributed


def setup(device: str, env: ProcessEnv | None = None) -> DistContext:
    """Resolve ``device`` ("auto", "cpu", "cuda") and, with ``world_size > 1``, join the process group.

    ``env`` defaults to :func:`process_env`. Under CUDA the device is ``cuda:local_rank``.
    """
    env = process_env() if env is None else env
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA device")
        torch_device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    owns = False
    if env.distributed and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise ValueError(f"WORLD_SIZE={env.world_size} but {name} is not set (launch with torchrun)")
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": torch_device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size, **kwargs)
        owns = True
    return DistContext(env.rank, env.world_size, env.local_rank, torch_device, owns)


def single_process(device: str | torch.device = "cpu") -> DistContext:
    """The context of one process on ``device`` (no process group): for tests and benchmarks."""
    return DistContext(0, 1, 0, torch.device(device), owns_group=False)


def teardown(ctx: DistContext, *, synchronize: bool = True) -> None:
    """Destroy the process group if ``setup`` created it; with ``synchronize`` (every process got here
    normally) only once all are here.

    gloo's worker threads free a finished collective's tensors after ``wait()`` has returned, and need
    the GIL to do so; the process group's destructor joins those threads while holding the GIL. Run
    straight after a collective, the two deadlock (seen: a hung DDP test). So: a barrier, a pause that
    lets the workers finish (``sleep`` releases the GIL), then the destruction. After an error
    (``synchronize=False``) the other processes may never arrive: no barrier.
    """
    if ctx.owns_group and dist.is_initialized():
        if synchronize:
            dist.barrier()
        time.sleep(0.05)
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over processes in place (and return it)."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every process's ``obj`` (JSON-like values), in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in one process)."""
    if ctx.distributed:
        dist.barrier()
