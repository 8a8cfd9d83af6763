"""Progress bars: one look and one rule for every long step of every command.

Every library call that runs long takes ``progress: bool | None``: True draws a tqdm bar on stderr,
False draws none, None (the default) draws one when stderr is a terminal. Commands pass their
``--progress/--no-progress`` option through. Bars go to stderr only: never into stdout or a result file.
Structure matching runs in xtal-eval, whose :class:`xtal_eval.Parallel` draws its own small bar (xtal-eval
does not depend on tqdm); :func:`parallel` turns the same ``progress`` into its flag::

    with bar(len(chunks), "reconstruct", progress) as b:
        for chunk in chunks:
            ...
            b.update(len(chunk))
    reconstruction(preds, gts, parallel=parallel(jobs, progress))
"""

from __future__ import annotations

import sys

__all__ = ["bar", "disable", "enabled", "parallel"]


def enabled(progress: bool | None) -> bool:
    """Whether to draw a bar: ``progress``, or (None) whether stderr is a terminal."""
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty is not None and isatty())
    return bool(progress)


def disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None (auto) lets tqdm hide the bar when stderr is not a terminal."""
    return None if progress is None else not progress


def bar(total: int | None, desc: str, progress: bool | None, *, unit: str = "structure", **kwargs):
    """A tqdm bar on stderr over ``total`` ``unit`` s (a context manager; ``update(n)``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=disable(progress), file=sys.stderr, **kwargs)


def parallel(jobs: int, progress: bool | None):
    """``xtal_eval.Parallel.from_jobs(jobs)`` drawing xtal-eval's matching bar when :func:`enabled`."""
    from xtal_eval import Parallel

    return Parallel.from_jobs(jobs, progress=enabled(progress))
