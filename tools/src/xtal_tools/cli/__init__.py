"""The command line: one module per command, each a thin layer (parse -> one frozen config -> one
library call -> report) over the workflow library :mod:`xtal_tools`.

``xtal`` is the umbrella command (``xtal train``, ``sample``, ``csp``, ``evaluate``, ``benchmark``,
``model-info``); the same commands run from a checkout as ``tools/train``, ``tools/sample``,
``tools/evaluate``, ``tools/csp`` and ``tools/benchmark``. This module only registers them and adds
``--version``. Shared pieces: :mod:`._options` (every option declared once) and :mod:`._common` (error
exit, output folder, warnings as values). No command module imports another.
"""

from __future__ import annotations

from typing import Annotated

import typer

from xtal_tools.cli import benchmark, csp, evaluate, model_info, sample, train

app = typer.Typer(
    name="xtal",
    add_completion=True,  # xtal --install-completion / --show-completion
    no_args_is_help=True,
    help="Cond-CDVAE tools: train, sample, csp, evaluate, benchmark, model-info.",
)
app.command("train", help=train.train.__doc__)(train.train)
app.command("sample", help=sample.sample.__doc__)(sample.sample)
app.command("csp", help=csp.csp.__doc__)(csp.csp)
app.command("evaluate", help=evaluate.evaluate.__doc__)(evaluate.evaluate)
app.command("model-info", help=model_info.model_info.__doc__)(model_info.model_info)
app.add_typer(benchmark.app, name="benchmark")


def _version(value: bool) -> None:
    if value:
        from xtal_tools.records import package_versions

        for name, version in package_versions().items():
            typer.echo(f"{name} {version}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print all versions.")
    ] = False,
) -> None:
    """Cond-CDVAE tools."""


def main() -> None:
    """The ``xtal`` command."""
    app(prog_name="xtal")
