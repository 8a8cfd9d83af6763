"""``xtal model-info [CHECKPOINT]``: what a checkpoint is and what it supports, without sampling.

Shows the architecture and parameter count, the conditions and the range each was trained on, the
elements seen in training (and, with ``--formula``, whether a request is inside them), the largest cell,
the noise levels and the default sampler's cost, the versions it was written with, and its model card
when there is one. Reads only ``config.json`` and the weights' header: no code runs
(:func:`xtal_tools.checkpoints.describe`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

import typer

from xtal_tools.cli._common import checked, run_app
from xtal_tools.cli._options import ConfigOption

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__.split("\n\n")[0])


@dataclass(frozen=True)
class ModelInfoConfig:
    """The ``[model_info]`` table: which ``checkpoint`` ("" for the shipped default model), and a cell
    ``formula`` to check against it."""

    checkpoint: str = ""
    formula: str = ""


@app.command()
def model_info(
    checkpoint: Annotated[
        str | None, typer.Argument(help="Checkpoint directory (default: the shipped default model).")
    ] = None,
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Also check a cell formula, e.g. Si4O8.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")] = False,
    config: ConfigOption = None,
) -> None:
    """Describe a checkpoint: architecture, conditions and trained ranges, elements, largest cell."""
    from xtal_tools.checkpoints import describe
    from xtal_tools.config import resolve

    with checked():
        settings = resolve(
            ModelInfoConfig,
            table="model_info",
            path=config,
            flags={"checkpoint": checkpoint, "formula": formula},
        )
        info = describe(settings.checkpoint, formula=settings.formula or None)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    for line in _lines(info):
        typer.echo(line)


def _lines(info: dict) -> list[str]:
    from pymatgen.core import Element

    enc, dec, t = info["encoder"], info["decoder"], info["trained_on"]
    lines = [
        f"checkpoint   {info['checkpoint']}",
        f"weights      {info['numbers_in_weights']:,} numbers in {info['tensors']} tensors",
        f"encoder      DimeNet++ {enc['hidden_channels']} wide, {enc['num_blocks']} blocks, "
        f"{enc['max_neighbors']} neighbours within {enc['cutoff_A']} Å",
        f"decoder      GemNet-T {dec['emb_size_atom']} wide, {dec['num_blocks']} blocks, "
        f"{dec['max_neighbors']} neighbours within {dec['cutoff_A']} Å",
        f"latent       {info['latent_dim']}",
        f"largest cell {info['max_atoms']} atoms",
        f"conditions   composition, {', '.join(info['conditions'])}",
    ]
    if t:
        ranges = ", ".join(
            f"{k} {lo:g}-{hi:g}" + (" GPa" if k == "pressure" else "")
            for k, (lo, hi) in t["conditions"].items()
        )
        symbols = " ".join(Element.from_Z(z).symbol for z in t["elements"])
        lines += [
            f"trained on   {t['num_crystals']:,} crystals of up to {t['max_atoms']} atoms; {ranges}",
            f"elements     {len(t['elements'])}: {symbols}",
        ]
    else:
        lines.append("trained on   not recorded in this checkpoint (older than this toolkit's 'trained_on')")
    s, (n, hi, lo) = info["default_sampler"], info["noise_levels"]
    lines.append(f"noise        {n} levels, {hi:g} to {lo:g} Å")
    lines.append(f"sampler      default {s['method']}, {s['decoder_calls']} decoder calls per structure")
    lines.append(_cells_line(info.get("volume_prior")))
    lines.append(_latent_line(info.get("latent_prior")))
    if "formula" in info:
        f = info["formula"]
        unseen = " ".join(Element.from_Z(z).symbol for z in f["unseen_elements"])
        verdict = f"elements never seen in training: {unseen}" if unseen else "every element seen in training"
        lines.append(f"formula      {f['formula']} ({f['atoms']} atoms): {verdict}")
        if "prior_volume_per_atom_0GPa" in f:
            lines.append(
                f"volume       {f['prior_volume_per_atom_0GPa']:g} Å^3 per atom at 0 GPa (volume prior)"
            )
    if info["model_card"]:
        lines.append(f"model card   {info['model_card']}")
    return lines


def _cells_line(vp: dict | None) -> str:
    """How the checkpoint's proposed cells are sized under the default sampler."""
    if not vp:
        return "cells        the lattice head's (no volume prior in this checkpoint)"
    term = (
        f", {vp['condition_coef']:+.3f} ln(1 + P / {vp['condition_scale']:g} GPa)" if vp["condition"] else ""
    )
    return (
        f"cells        sized by its volume prior (cell_volume auto): ln(V/N) from composition{term}, "
        f"residual sd {vp['residual_sd']:.3f}"
    )


def _latent_line(lp: dict | None) -> str:
    """Where the default sampler draws the checkpoint's latents."""
    if not lp:
        return "latents      N(0, I) (no fitted latent prior in this checkpoint)"
    seen = f"{lp.get('crystals', 0):,}"
    if lp.get("analogues"):
        kept = f"{lp.get('components', 0):,}"
        return (
            f"latents      analogues: code and cell shape of the most alike training crystals of the same "
            f"size ({kept} kept of {seen}; latent auto)"
        )
    return f"latents      codes of training crystals of the same size (of {seen}; latent auto)"


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
