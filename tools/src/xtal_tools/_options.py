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
