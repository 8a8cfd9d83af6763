"""Command-line options, each declared once for every command.

Single options are ``Annotated`` aliases (``OutOption``, ``CheckpointOption``, ...). The option blocks of
a shared table, ``[sampler]`` (:class:`cond_vae.SamplerConfig`) and ``[relax]``
(:class:`xtal_tools.relaxation.RelaxConfig`), are added to a command by a decorator::

    @app.command()
    @with_tables(SAMPLER, RELAX)
    def csp(..., config: ConfigOption = None, tables: dict | None = None) -> None:
        ...  # tables == {"sampler": {"method": "pc", "levels": None, ...}, "relax": {...}}

Every flag defaults to None ("not given"), so that ``--config FILE.toml`` can fill it and a flag
overrides the file (:func:`xtal_tools.config.resolve`); what neither gives comes from the dataclass
defaults, never restated here.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "RELAX",
    "SAMPLER",
    "ConfigOption",
    "CheckpointOption",
    "DataOption",
    "Device",
    "DeviceOption",
    "OptionTable",
    "OutOption",
    "OverwriteOption",
    "ProgressOption",
    "SeedOption",
    "json_object",
    "option_table",
    "with_tables",
]


class Device(str, Enum):
    """Where to run: ``auto`` picks CUDA when torch sees a GPU, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


_RUN = "Run"
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML file of settings: this command's table plus \\[sampler] / \\[relax] where it has them "
        "(a previous run.toml works); flags override it.",
        exists=True,
        dir_okay=False,
        readable=True,
        rich_help_panel=_RUN,
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Output directory (created; run.toml is written there).", rich_help_panel=_RUN
    ),
]
CheckpointOption = Annotated[
    str | None,
    typer.Option(
        "--checkpoint",
        "-k",
        help="Checkpoint directory (default: the shipped default model).",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
DeviceOption = Annotated[
    Device | None, typer.Option("--device", help="auto, cpu or cuda  \\[default: auto]", rich_help_panel=_RUN)
]
SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Random seed  \\[default: 0]", rich_help_panel=_RUN)
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Allow a non-empty output directory.", rich_help_panel=_RUN)
]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars  \\[default: when stderr is a terminal]",
        rich_help_panel=_RUN,
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        "-d",
        help="xtal-data store: a local path or any fsspec URL (s3://, gs://, https://).",
        rich_help_panel="Data",
    ),
]


def json_object(text: str | None, flag: str) -> dict | None:
    """A JSON object given on the command line (None when not given).

    Raises:
        ValueError: not JSON, or not an object (the message names ``flag``).
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag}: not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag}: expected a JSON object, got {type(value).__name__}")
    return value


# ------------------------------------------------------------------ shared tables
@dataclass(frozen=True)
class OptionTable:
    """The flags of one shared table: ``params`` (parameters added to a command's signature) and how
    each parameter maps to a field of the table (``fields``; default: the same name); ``convert`` turns
    a flag's value into the field's (e.g. JSON text into a dict)."""

    name: str
    params: tuple[inspect.Parameter, ...]
    fields: dict[str, str]
    convert: dict[str, Callable[[Any], Any]]

    def gather(self, values: dict[str, Any]) -> dict[str, Any]:
        """The table's flags as ``{field: value}`` (None: not given), taken out of ``values``."""
        out = {}
        for p in self.params:
            value = values.pop(p.name)
            if value is not None and p.name in self.convert:
                value = self.convert[p.name](value)
            out[self.fields.get(p.name, p.name)] = value
        return out


def option_table(
    name: str, options: dict[str, Any], *, convert: dict[str, Callable[[Any], Any]] | None = None
) -> OptionTable:
    """A shared block of flags from ``Annotated`` aliases, ``{parameter: alias}``, each defaulting to None
    (for :func:`with_tables`; the command reads them as ``tables.gather()[name]``)."""
    return OptionTable(name, tuple(_param(n, a) for n, a in options.items()), {}, dict(convert or {}))


def _param(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


def _option(*names: str, help: str, panel: str, **kw) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=panel, **kw)


def _sampler_table() -> OptionTable:
    from cond_vae.sampling import SamplerConfig

    d = SamplerConfig()
    p = "Sampler  \\[sampler]"

    def shown(value: Any) -> str:
        return f"  \\[default: {'none' if value is None else str(value).lower()}]"

    params = (
        _param(
            "sampler_method",
            Annotated[
                str | None,
                _option(
                    "--sampler",
                    panel=p,
                    help="ode (probability flow), pc (predictor-corrector) or langevin (the "
                    "reference's annealed Langevin)." + shown(d.method),
                ),
            ],
        ),
        _param(
            "levels",
            Annotated[
                int | None,
                _option(
                    "--levels",
                    panel=p,
                    min=0,
                    help="Noise levels visited (0: the model's; more: a finer "
                    "schedule)." + shown("all" if d.levels is None else d.levels),
                ),
            ],
        ),
        _param(
            "steps_per_level",
            Annotated[
                int | None,
                _option(
                    "--steps-per-level",
                    panel=p,
                    min=1,
                    help="langevin: steps on each level (reference: 100)." + shown(d.steps_per_level),
                ),
            ],
        ),
        _param(
            "step_lr",
            Annotated[
                float | None,
                _option(
                    "--step-lr",
                    panel=p,
                    help="langevin: step-size constant (reference: 1e-4)." + shown(d.step_lr),
                ),
            ],
        ),
        _param(
            "corrector_steps",
            Annotated[
                int | None,
                _option(
                    "--corrector-steps",
                    panel=p,
                    min=0,
                    help="pc: Langevin corrector steps on each level." + shown(d.corrector_steps),
                ),
            ],
        ),
        _param(
            "snr",
            Annotated[
                float | None,
                _option("--snr", panel=p, help="pc: corrector signal-to-noise ratio." + shown(d.snr)),
            ],
        ),
        _param(
            "final_denoise",
            Annotated[
                bool | None,
                _option(
                    "--final-denoise/--no-final-denoise",
                    panel=p,
                    help="One last noise-free step to sigma = 0." + shown(d.final_denoise),
                ),
            ],
        ),
        _param(
            "skin",
            Annotated[
                float | None,
                _option(
                    "--skin",
                    panel=p,
                    min=0,
                    help="Neighbour-list skin in Å (Verlet reuse, same structures); none: "
                    "a fresh graph every call." + shown(d.skin),
                ),
            ],
        ),
        _param(
            "batch_size",
            Annotated[
                int | None,
                _option(
                    "--batch-size", panel=p, min=1, help="Structures per decoder call." + shown(d.batch_size)
                ),
            ],
        ),
        _param(
            "reproducible",
            Annotated[
                bool | None,
                _option(
                    "--reproducible/--batched",
                    panel=p,
                    help="Sample every structure on its own: the same bits at "
                    "any batch size and number of processes (about 2x slower on a CPU)."
                    + shown(d.reproducible),
                ),
            ],
        ),
        _param(
            "cell_volume",
            Annotated[
                str | None,
                _option(
                    "--cell-volume",
                    panel=p,
                    help="Size of the proposed cells: model (the lattice head's, as the paper), prior "
                    "(the lattice head's shape scaled to the volume of the model's composition-and-pressure "
                    "prior) or auto (prior when the model has one)." + shown(d.cell_volume),
                ),
            ],
        ),
        _param(
            "latent",
            Annotated[
                str | None,
                _option(
                    "--latent",
                    panel=p,
                    help="Where each structure's latent is drawn: standard (N(0, I), as the paper), fitted "
                    "(near the code of a random training crystal of the same cell size), analogue (the code "
                    "and cell shape of the training crystals of that size most alike to the request, the "
                    "k-th nearest for sample k) or auto (analogue when the model keeps its training "
                    "crystals, else fitted when it has a latent prior)." + shown(d.latent),
                ),
            ],
        ),
        _param(
            "latent_scale",
            Annotated[
                float | None,
                _option(
                    "--latent-scale",
                    panel=p,
                    help="With the fitted latent prior: the spread around the chosen training code "
                    "(1: its posterior; 0: its mean; default 1 for fitted, 0 for analogue).",
                ),
            ],
        ),
        _param(
            "reassign_species",
            Annotated[
                bool | None,
                _option(
                    "--reassign-species/--no-reassign-species",
                    panel=p,
                    help="After sampling, put each structure's elements on the sites the model scores best "
                    "(every distinct assignment, up to 120, rated by its denoising loss; costly)."
                    + shown(d.reassign_species),
                ),
            ],
        ),
        _param(
            "compile",
            Annotated[
                bool | None,
                _option(
                    "--compile/--no-compile",
                    panel=p,
                    help="torch.compile the model first (about a minute; then faster decoder calls, on a "
                    "CPU too: docs/benchmarks/compile.md)." + shown(d.compile),
                ),
            ],
        ),
    )

    def levels(value: int) -> int | None:
        return None if value == 0 else value

    return OptionTable("sampler", params, {"sampler_method": "method"}, {"levels": levels})


def _relax_table() -> OptionTable:
    from xtal_tools.relaxation import RelaxConfig

    d = RelaxConfig()
    p = "Relaxation  \\[relax]"

    def shown(value: Any) -> str:
        return f"  \\[default: {value}]"

    params = (
        _param(
            "relax",
            Annotated[
                bool | None,
                _option(
                    "--relax/--no-relax",
                    panel=p,
                    help="Relax each structure at its pressure  \\[default: csp: on; "
                    "benchmarks: when --calculator is given]",
                ),
            ],
        ),
        _param(
            "calculator",
            Annotated[
                str | None,
                _option(
                    "--calculator",
                    panel=p,
                    help="ASE calculator: chgnet, emt or an import path module:factory."
                    + shown(d.calculator),
                ),
            ],
        ),
        _param(
            "calculator_args",
            Annotated[
                str | None,
                _option(
                    "--calculator-args", panel=p, help="JSON object of keyword arguments for the calculator."
                ),
            ],
        ),
        _param(
            "fmax",
            Annotated[
                float | None,
                _option("--fmax", panel=p, help="Force convergence criterion (eV/Å)." + shown(d.fmax)),
            ],
        ),
        _param(
            "max_steps",
            Annotated[
                int | None,
                _option(
                    "--max-steps",
                    panel=p,
                    min=0,
                    help="Optimizer steps at most per structure." + shown(d.max_steps),
                ),
            ],
        ),
        _param(
            "optimizer",
            Annotated[str | None, _option("--optimizer", panel=p, help="fire or bfgs." + shown(d.optimizer))],
        ),
        _param(
            "cell_filter",
            Annotated[
                str | None,
                _option(
                    "--cell-filter", panel=p, help="frechet, exp or none (fixed cell)." + shown(d.cell_filter)
                ),
            ],
        ),
    )
    convert = {"calculator_args": lambda text: json_object(text, "--calculator-args")}
    return OptionTable("relax", params, {"relax": "enabled"}, convert)


SAMPLER = _sampler_table()
RELAX = _relax_table()


def with_tables(*tables: OptionTable) -> Callable:
    """Add the flags of shared ``tables`` to a command; it receives them as ``tables={name: {field:
    value}}`` (None: not given). A flag's JSON is parsed here, so a bad value fails before any work:
    the command must call it inside its error handling, which :func:`gather` allows."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "tables"]
        added = [p for t in tables for p in t.params]

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            deferred = _Deferred(tables, values)  # takes the tables' flags out of ``values``
            return command(**values, tables=deferred)

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        return wrapper

    return decorate


class _Deferred:
    """The shared tables' flags, gathered when the command asks (inside its own error handling)."""

    def __init__(self, tables: tuple[OptionTable, ...], values: dict[str, Any]) -> None:
        self._tables = tables
        self._values = {p.name: values.pop(p.name) for t in tables for p in t.params}

    def gather(self) -> dict[str, dict[str, Any]]:
        """``{table: {field: value}}``; raises ValueError for a bad value (e.g. invalid JSON)."""
        values = dict(self._values)
        return {t.name: t.gather(values) for t in self._tables}


def unused_sampler_notes(method: str, given: dict[str, Any]) -> list[str]:
    """``--flag is ignored by --sampler <method>`` for each flag given that ``method`` does not read."""
    return [f"{flag} is ignored by --sampler {method}" for flag in unused_sampler_flags(method, given)]


def unused_sampler_flags(method: str, given: dict[str, Any]) -> list[str]:
    """Sampler flags given that ``method`` does not read (e.g. ``--steps-per-level`` with ode)."""
    by_method = {"steps_per_level": "langevin", "step_lr": "langevin", "corrector_steps": "pc", "snr": "pc"}
    return [
        "--" + name.replace("_", "-")
        for name, value in given.items()
        if value is not None and by_method.get(name, method) != method
    ]
