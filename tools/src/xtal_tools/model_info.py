"""``xtal model-info [CHECKPOINT]``: what a checkpoint is and what it supports, without sampling.

Shows the architecture and parameter count, the conditions and the range each was trained on, the
elements seen in training (and, with ``--formula``, whether a request is inside them), the largest cell,
the noise levels and the default sampler's cost, the versions it was written with, and its model card
when there is one. Reads only ``config.json`` and the weights' header: no code runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from xtal_tools._cli import EXPECTED_ERRORS, fail

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__.split("\n\n")[0])


@app.command()
def model_info(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="Checkpoint directory (default: the shipped default model).")
    ] = None,
    formula: Annotated[
        str | None, typer.Option("--formula", "-f", help="Also check a cell formula, e.g. Si4O8.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")] = False,
) -> None:
    """Describe a checkpoint: architecture, conditions and trained ranges, elements, largest cell."""
    try:
        info = describe(checkpoint, formula=formula)
    except EXPECTED_ERRORS as err:
        fail(err)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    for line in _lines(info):
        typer.echo(line)


def describe(checkpoint: Path | None, *, formula: str | None = None) -> dict:
    """The facts :func:`model_info` prints, as a dict (no torch model is built)."""
    from cond_vae import CondCDVAEConfig, parse_formula
    from cond_vae.checkpoint import read_checkpoint_info
    from cond_vae.sampling import SamplerConfig
    from safetensors import safe_open

    from xtal_tools.csp import DEFAULT_CHECKPOINT

    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if path is None or not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} is not a directory")
    raw = read_checkpoint_info(path)
    config = CondCDVAEConfig.from_dict(raw["config"])
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"checkpoint: no model.safetensors in {path}")
    with safe_open(str(weights), framework="pt") as fh:
        names = list(fh.keys())
        sizes = [fh.get_slice(n).get_shape() for n in names]
    numel = sum(math.prod(s) for s in sizes)
    trained = raw.get("trained_on") or {}
    enc, dec = config.encoder, config.decoder
    out = {
        "checkpoint": str(path),
        "tensors": len(names),
        "numbers_in_weights": numel,
        "latent_dim": config.latent_dim,
        "encoder": {"hidden_channels": enc.hidden_channels, "num_blocks": enc.num_blocks,
                    "cutoff_A": enc.cutoff, "max_neighbors": enc.max_neighbors},
        "decoder": {"emb_size_atom": dec.emb_size_atom, "num_blocks": dec.num_blocks,
                    "cutoff_A": dec.cutoff, "max_neighbors": dec.max_neighbors},
        "max_atoms": config.max_atoms,
        "conditions": list(config.condition_names),
        "noise_levels": [config.num_noise_levels, config.sigma_begin, config.sigma_end],
        "default_sampler": {**SamplerConfig().to_dict(), "decoder_calls": SamplerConfig().decoder_calls()},
        "trained_on": trained or None,
        "versions": raw.get("versions", {}),
        "extra": raw.get("extra", {}),
        "model_card": str(path / "MODEL_CARD.md") if (path / "MODEL_CARD.md").is_file() else None,
    }  # fmt: skip
    if formula is not None:
        parsed = parse_formula(formula, max_atoms=config.max_atoms, num_elements=config.num_elements)
        seen = set(trained.get("elements", []))
        unseen = sorted({int(z) for z in parsed.atom_types} - seen) if seen else []
        out["formula"] = {
            "formula": parsed.formula,
            "atoms": len(parsed.atom_types),
            "unseen_elements": unseen,
        }
    return out


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
        ranges = ", ".join(f"{k} {lo:g}-{hi:g}" + (" GPa" if k == "pressure" else "") for k, (lo, hi) in
                           t["conditions"].items())  # fmt: skip
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
    if "formula" in info:
        f = info["formula"]
        unseen = " ".join(Element.from_Z(z).symbol for z in f["unseen_elements"])
        verdict = f"elements never seen in training: {unseen}" if unseen else "every element seen in training"
        lines.append(f"formula      {f['formula']} ({f['atoms']} atoms): {verdict}")
    if info["model_card"]:
        lines.append(f"model card   {info['model_card']}")
    return lines


def main() -> None:
    from xtal_tools._cli import tidy_warnings

    tidy_warnings()
    app()


if __name__ == "__main__":
    main()
