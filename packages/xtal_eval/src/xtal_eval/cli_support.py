"""The one error exit of the project's command-line apps (``xtal-eval``, ``xtal-data``, the tools' commands).

An expected error (bad input, a missing file, an unusable output, a missing optional package) is one
``error: <message>`` line on stderr and exit status 1, never a traceback::

    with checked():                       # ValueError, KeyError, ... -> fail(err)
        run(...)
    fail(f"cannot write {path}")          # directly

A ``KeyError``'s message is printed unquoted (``error: no split 'x'``, not ``error: "no split 'x'"``).
Torch-free (typer only), so every package may import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

__all__ = ["EXPECTED_ERRORS", "checked", "fail"]

# Expected failures: reported as "error: ..." with exit status 1, no traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError, FloatingPointError,
)  # fmt: skip


def fail(err: BaseException | str) -> NoReturn:
    """Print ``error: <message>`` to stderr and exit with status 1."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1) from None


@contextmanager
def checked(errors: tuple[type[BaseException], ...] = EXPECTED_ERRORS) -> Iterator[None]:
    """Turn an error of ``errors`` (default :data:`EXPECTED_ERRORS`) raised inside into :func:`fail`."""
    try:
        yield
    except errors as err:
        fail(err)
