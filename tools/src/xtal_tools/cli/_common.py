"""What every command does the same way: the error exit, the output folder, warnings, the run record.

* :func:`fail` / :func:`checked` / :data:`EXPECTED_ERRORS` (the project's one error exit,
  :mod:`xtal_eval.cli_support`, re-exported): an expected error (bad input, missing file, unusable
  output) is one ``error: <message>`` line on stderr and exit status 1, never a traceback.
* :func:`prepare_out`: refuse an unusable ``--out`` before any work; create it only once every input
  has been checked, so a bad request leaves nothing behind.
* :class:`Warnings`: warnings are values. Library calls run inside it; every distinct message (from
  the library's own checks or raised by a dependency) is printed once as ``warning: <message>`` and
  recorded in ``run.toml``. Nothing installs a process-wide filter.
* :func:`recorded`: mark the run record failed on any exception.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from xtal_eval.cli_support import EXPECTED_ERRORS, checked, fail

__all__ = ["EXPECTED_ERRORS", "Warnings", "checked", "fail", "prepare_out", "recorded"]

# What a user of a command cannot act on: API deprecations inside dependencies, and these messages.
_QUIET = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_NOISE = ("Converting a tensor with requires_grad",)  # CHGNet's internals


@contextmanager
def recorded(record) -> Iterator[None]:
    """Mark ``record`` (a :class:`xtal_tools.records.RunRecord`) failed on any exception; expected errors
    then exit via :func:`fail`."""
    try:
        yield
    except EXPECTED_ERRORS as err:
        record.fail(err)
        fail(err)
    except BaseException as err:
        record.fail(err)
        raise


class Warnings:
    """Collect warnings as values and report each distinct one once.

    Use as ``with Warnings() as notes: ...``; ``notes.add(messages)`` takes warnings a library call
    returned, and every warning raised inside the block is caught and added too. Each is printed as
    one ``warning: <message>`` line when first seen; :attr:`messages` lists them in order.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._catch: warnings.catch_warnings | None = None
        self._caught: list | None = None

    def add(self, messages: Iterable[str]) -> None:
        for message in messages:
            self._flush()
            text = str(message)
            if text not in self.messages and not any(n in text for n in _NOISE):
                self.messages.append(text)
                typer.echo(f"warning: {text}", err=True)

    def _flush(self) -> None:
        if self._caught:
            caught, self._caught[:] = list(self._caught), []
            self.add(str(w.message) for w in caught if not issubclass(w.category, _QUIET))

    def __enter__(self) -> Warnings:
        self._catch = warnings.catch_warnings(record=True)  # a fresh one: the block may be entered again
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")  # inside this block only: every warning reaches the list
        return self

    def __exit__(self, *exc) -> None:
        self._flush()
        self._catch.__exit__(*exc)
        self._caught = None


def prepare_out(out: Path, *, overwrite: bool, create: bool = True) -> None:
    """Refuse an unusable ``--out`` (a file, a non-empty folder without ``--overwrite``, an unwritable
    place) and, with ``create``, make the folder.

    Raises:
        FileExistsError, ValueError: naming ``--out`` and why.
    """
    from cond_vae.distributed import process_env

    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} exists and is not a directory")
    if out.is_dir() and not overwrite and any(p.name != ".shards" for p in out.iterdir()):
        if process_env().rank == 0:  # the other ranks of a run see rank 0's shard folder
            raise FileExistsError(f"--out {out} is not empty (pass --overwrite to write into it)")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ValueError(f"--out {out}: cannot create it ({existing} is not a writable folder)")
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"--out {out}: cannot create it ({err.strerror})") from None


def run_app(app: typer.Typer) -> None:
    """Entry point of a command script."""
    app(prog_name=Path(sys.argv[0]).name)
