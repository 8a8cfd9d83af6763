"""Run independent tasks serially, over a local process pool, or on a Dask cluster.

Results always come back in task order, whatever order the workers finish in. Work functions must be
module-level (picklable); each task carries everything it needs (structures are pickled to the workers).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, TextIO

__all__ = ["Backend", "Parallel", "Progress", "run_tasks"]

Backend = Literal["serial", "process", "dask"]


class Progress:
    """A minimal text progress bar on stderr (``done/total``, rate and ETA), redrawn at most 5 times a second.

    Disabled output still counts, so callers need no branches.
    """

    def __init__(self, total: int, *, desc: str = "", enabled: bool = True, stream: TextIO | None = None):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.stream = stream or sys.stderr
        self.done, self._t0, self._last = 0, time.perf_counter(), 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            elapsed = now - self._t0
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.desc} [{bar}] {self.done}/{self.total} {rate:.1f}/s eta {eta:.0f}s")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class Parallel:
    """How to execute a metric's tasks.

    Attributes:
        backend: ``"serial"`` (in this process), ``"process"`` (a local process pool) or ``"dask"``
            (``dask.distributed``; pass ``client`` or let the default client be used).
        n_jobs: worker processes for ``"process"``; None means ``os.cpu_count()``.
        progress: draw a progress bar on stderr.
        client: a ``distributed.Client`` for the dask backend.
        mp_context: multiprocessing start method for ``"process"`` (None: the platform default).
    """

    backend: Backend = "serial"
    n_jobs: int | None = None
    progress: bool = False
    client: Any = None
    mp_context: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("serial", "process", "dask"):
            raise ValueError(f"unknown backend {self.backend!r}; use 'serial', 'process' or 'dask'")
        if self.n_jobs is not None and self.n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {self.n_jobs}")

    @classmethod
    def from_jobs(cls, n_jobs: int = 1, *, progress: bool = False) -> Parallel:
        """``n_jobs == 1``: serial; more: a process pool of that size."""
        return cls(backend="serial" if n_jobs == 1 else "process", n_jobs=n_jobs, progress=progress)


def run_tasks(
    fn: Callable[[Any], Any], tasks: Sequence[Any], parallel: Parallel | None = None, *, desc: str = ""
) -> list[Any]:
    """``[fn(t) for t in tasks]`` on the chosen backend, in task order."""
    parallel = parallel or Parallel()
    bar = Progress(len(tasks), desc=desc, enabled=parallel.progress)
    if not tasks:
        return []
    if parallel.backend == "serial" or (parallel.backend == "process" and parallel.n_jobs == 1):
        out = []
        for task in tasks:
            out.append(fn(task))
            bar.update()
        return out
    if parallel.backend == "process":
        return _run_pool(fn, tasks, parallel, bar)
    return _run_dask(fn, tasks, parallel, bar)


def _run_pool(fn, tasks, parallel: Parallel, bar: Progress) -> list[Any]:
    import multiprocessing

    n_jobs = min(parallel.n_jobs or os.cpu_count() or 1, len(tasks))
    ctx = multiprocessing.get_context(parallel.mp_context) if parallel.mp_context else None
    results: list[Any] = [None] * len(tasks)
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
        pending = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                results[pending.pop(fut)] = fut.result()
                bar.update()
    return results


def _run_dask(fn, tasks, parallel: Parallel, bar: Progress) -> list[Any]:
    try:
        from distributed import as_completed, default_client
    except ImportError as exc:
        raise ImportError("the dask backend needs the 'dask' extra: pip install 'xtal-eval[dask]'") from exc
    client = parallel.client or default_client()
    futures = client.map(fn, tasks, pure=False)
    index = {fut.key: i for i, fut in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    for fut in as_completed(futures):
        results[index[fut.key]] = fut.result()
        bar.update()
    return results
