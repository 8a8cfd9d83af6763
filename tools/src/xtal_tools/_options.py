"""Shared command-line options (``Annotated`` aliases), so every tool spells them the same way.

Use as ``def command(config: ConfigOption = None, out: OutOption = ..., ...)``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class Device(str, Enum):
    """Where to run: ``auto`` picks CUDA when torch sees a GPU, else the CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file with tables train, model and data (see configs/).",
        exists=True,
        dir_okay=False,
        readable=True,
        rich_help_panel="Run",
    ),
]
OutOption = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Output directory (created; run.toml is written there).", rich_help_panel="Run"
    ),
]
DeviceOption = Annotated[
    Device | None,
    typer.Option(
        "--device", help="auto, cpu or cuda (default: the config's, else auto).", rich_help_panel="Run"
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option("--seed", help="Random seed (default: the config's).", rich_help_panel="Run"),
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


# ------------------------------------------------------------------ sampler
# One option block for every command that samples: each flag is a field of cond_vae.SamplerConfig and
# defaults to None ("not given"), so that `--sampler-config FILE.toml` can fill it and flags override
# the file; what neither gives comes from SamplerConfig() itself (never restated here).
SAMPLER_PANEL = "Sampler"
SAMPLER_FLAGS = (
    "sampler_method", "levels", "steps_per_level", "step_lr", "corrector_steps", "snr", "final_denoise",
    "skin", "batch_size",
)  # fmt: skip


def _sampler_defaults() -> dict:
    """SamplerConfig()'s field defaults, read from cond_vae's source without importing torch (help text)."""
    import dataclasses
    import importlib.util
    import sys

    try:
        spec = importlib.util.find_spec("cond_vae")
        path = Path(spec.origin).parent / "sampling" / "_config.py"
        module_spec = importlib.util.spec_from_file_location("_xtal_tools_sampler_config", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look the module up while building the class
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.modules.pop(module_spec.name, None)
        return {f.name: f.default for f in dataclasses.fields(module.SamplerConfig)}
    except Exception:  # noqa: BLE001  help text only: never fail a command over it
        return {}


_D = _sampler_defaults()


def _show(name: str, none: str = "") -> str | bool:
    if name not in _D:
        return False
    value = _D[name]
    return none if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _sampler_option(*names: str, help: str, show: str | bool, **kw):
    return typer.Option(*names, help=help, show_default=show, rich_help_panel=SAMPLER_PANEL, **kw)


SamplerMethodOption = Annotated[
    str | None,
    _sampler_option(
        "--sampler",
        help="Sampler: pc (predictor-corrector), langevin (the reference's annealed Langevin) or ode.",
        show=_show("method"),
    ),
]
LevelsOption = Annotated[
    int | None,
    _sampler_option(
        "--levels",
        help="Noise levels visited (0: the model's; more: a finer schedule).",
        show=_show("levels", "all"),
        min=0,
    ),
]
StepsPerLevelOption = Annotated[
    int | None,
    _sampler_option("--steps-per-level", help="langevin: steps on each level (reference: 100).",
                    show=_show("steps_per_level"), min=1),
]  # fmt: skip
StepLrOption = Annotated[
    float | None,
    _sampler_option(
        "--step-lr", help="langevin: step-size constant (reference: 1e-4).", show=_show("step_lr")
    ),
]
CorrectorStepsOption = Annotated[
    int | None,
    _sampler_option("--corrector-steps", help="pc: Langevin corrector steps on each level.",
                    show=_show("corrector_steps"), min=0),
]  # fmt: skip
SnrOption = Annotated[
    float | None, _sampler_option("--snr", help="pc: corrector signal-to-noise ratio.", show=_show("snr"))
]
FinalDenoiseOption = Annotated[
    bool | None,
    _sampler_option(
        "--final-denoise/--no-final-denoise",
        help="One last noise-free step to sigma = 0.",
        show=_show("final_denoise"),
    ),
]
SkinOption = Annotated[
    float | None,
    _sampler_option(
        "--skin",
        help="Neighbour-list skin in Å (Verlet reuse, same structures); default: a fresh graph every call.",
        show=_show("skin", "none"),
        min=0,
    ),
]
BatchSizeOption = Annotated[
    int | None,
    _sampler_option("--batch-size", help="Structures per decoder call.", show=_show("batch_size"), min=1),
]
SamplerConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--sampler-config",
        help="TOML file with a \\[sampler] table (SamplerConfig fields; a run.toml works too); "
        "flags override it.",
        exists=True,
        dir_okay=False,
        readable=True,
        rich_help_panel=SAMPLER_PANEL,
    ),
]


def read_sampler_table(path: str | Path) -> dict:
    """The ``[sampler]`` table of a TOML file (or ``[config.sampler]`` of a ``run.toml``).

    Raises:
        ValueError: not valid TOML, or no such table (the message names the file).
    """
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--sampler-config {path}: not valid TOML ({err})") from None
    table = data.get("sampler")
    if table is None and isinstance(data.get("config"), dict):
        table = data["config"].get("sampler")
    if not isinstance(table, dict):
        raise ValueError(f"--sampler-config {path}: no [sampler] table")
    return dict(table)


def resolve_sampler(opts: dict, *, config_file: str | Path | None = None):
    """One ``cond_vae.SamplerConfig`` from a command's options.

    Precedence: the flags in ``opts`` (keys :data:`SAMPLER_FLAGS`; None means "not given"), then the
    ``[sampler]`` table of ``config_file``, then ``SamplerConfig()``'s defaults. ``levels=0``: all levels.

    Raises:
        ValueError: an unknown key in the table or an invalid value (SamplerConfig's message).
    """
    from cond_vae import SamplerConfig

    values: dict = read_sampler_table(config_file) if config_file is not None else {}
    try:
        base = SamplerConfig.from_dict(values)
    except TypeError as err:
        raise ValueError(f"--sampler-config {config_file}: {err}") from None
    flags = {("method" if k == "sampler_method" else k): opts.get(k) for k in SAMPLER_FLAGS}
    changes = {k: v for k, v in flags.items() if v is not None}
    if changes.get("levels") == 0:
        changes["levels"] = None
    config = base.replace(**changes)
    for name in unused_flags(config, changes):
        import warnings

        flag = "--" + name.replace("_", "-")
        warnings.warn(f"{flag} is ignored by --sampler {config.method}", UserWarning, stacklevel=2)
    return config


_METHOD_FIELDS = {"steps_per_level": "langevin", "step_lr": "langevin", "corrector_steps": "pc", "snr": "pc"}


def unused_flags(config, given) -> list[str]:
    """The fields in ``given`` that ``config.method`` does not read (e.g. ``steps_per_level`` with pc)."""
    return [k for k in given if _METHOD_FIELDS.get(k, config.method) != config.method]


def sampler_record(sampler, model=None) -> dict:
    """What every run record holds about the sampler: ``sampler`` (``SamplerConfig.to_dict()``) and the
    decoder calls per structure (with the model's number of noise levels when given)."""
    levels = int(len(model.sigmas)) if model is not None else 50
    return {"sampler": sampler.to_dict(), "decoder_calls_per_structure": sampler.decoder_calls(levels)}
