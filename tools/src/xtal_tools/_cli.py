"""Small helpers shared by the command modules: expected-error reporting, device choice, warnings."""

from __future__ import annotations

from contextlib import contextmanager

import typer

# Expected failures: reported as "error: ..." with exit status 1, no traceback.
EXPECTED_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, ImportError, FloatingPointError)


def fail(err: BaseException | str) -> None:
    """Print ``error: <message>`` to stderr and exit with status 1."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def resolve_device(device: str | None) -> str:
    """``auto``/None -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device on this machine")
    return device


def tidy_warnings() -> None:
    """Show each distinct warning once, as one ``warning: <message>`` line on stderr (not Python's
    ``file:line: UserWarning`` form with a source line). Installed by the command entry points only."""
    import sys
    import warnings

    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in shown:
            shown.add(text)
            print(f"warning: {text}", file=file or sys.stderr, flush=True)

    warnings.showwarning = show


@contextmanager
def recorded(record):
    """Mark ``record`` (a ``RunRecord``) failed on any exception; expected errors exit via :func:`fail`."""
    try:
        yield
    except EXPECTED_ERRORS as err:
        record.fail(err)
        fail(err)
    except BaseException as err:
        record.fail(err)
        raise


def pressure_notes(model, pressures: list[float]) -> list[str]:
    """Say so when a pressure lies outside what the model was trained on (sampling then extrapolates;
    the relaxation still applies the requested pressure)."""
    import re
    import warnings

    import torch

    if "pressure" not in model.config.condition_names:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = model.conditions.check_query("pressure", torch.tensor(pressures, dtype=torch.float64))
    for message in found:  # said once here: the sampler's own warning of it would repeat it
        warnings.filterwarnings("ignore", message=re.escape(message), category=UserWarning)
    return list(found)


def quiet_known_warnings() -> None:
    """Hide warnings from third-party internals that a user cannot act on (CHGNet, torch.jit)."""
    import warnings

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
    warnings.filterwarnings(
        "ignore", message=r"`torch.jit.script` is deprecated", category=DeprecationWarning
    )
