"""The score decoder as an equivariant vector head of your own, checked with ``xtal_graph.testing``.

A ``DisplacementHead`` predicts, for every atom of a rattled crystal, the Cartesian displacement (Å)
back to the relaxed position: a per-atom vector that must rotate with the crystal and ignore the
choice of origin, cell, atom order and periodic image. The example

1. trains the head for a few steps on rattled copies of six prototypes (target: the exact
   minimum-image displacement from ``xtal_graph.minimum_image``);
2. proves its symmetry with ``assert_equivariant`` (float64, 1e-8 Å, seven transforms:
   rotation, reflection, translation, permutation, image shift, basis change, supercell);
3. shows the same check failing on a deliberately broken module (a fixed Cartesian bias).

    python examples/equivariant_head.py [--steps 100]
"""

from __future__ import annotations

import argparse

import torch
from _prototypes import prototypes  # six textbook structures (examples/_prototypes.py)
from score_decoder import GemNetConfig, GemNetScore, fit_scale_factors
from xtal_graph import CrystalBatch, cart_to_frac, minimum_image, radius_graph_pbc, triplets, wrap_frac
from xtal_graph.testing import assert_equivariant, standard_transforms

# No neighbour cap: with one, exactly tied neighbours are chosen by index, which is not a symmetry.
CONFIG = GemNetConfig.tiny(cond_dim=0, max_neighbors=None)


class DisplacementHead(torch.nn.Module):
    """Per-atom displacement toward the relaxed structure, ``(N, 3)`` Å, from GemNet's vector output."""

    def __init__(self, config: GemNetConfig):
        super().__init__()
        self.net = GemNetScore(config)

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.net(**inputs)  # (N, 3)


def head_inputs(batch: CrystalBatch) -> dict:
    """The graph is built outside the module (xtal_graph), as everywhere in the toolkit."""
    graph = radius_graph_pbc(batch.frac_coords, batch.lattice, batch.num_atoms, CONFIG.cutoff)
    trips = triplets(graph, batch.atom_types.shape[0])
    return dict(atom_types=batch.atom_types, batch=batch.batch, graph=graph, triplets=trips, cond=None)


def rattle(relaxed: CrystalBatch, sigma: float, gen: torch.Generator) -> tuple[CrystalBatch, torch.Tensor]:
    """Gaussian-rattled copy (``sigma`` Å) and the target displacement back to ``relaxed``, (N, 3) Å."""
    eps = sigma * torch.randn(relaxed.frac_coords.shape, generator=gen, dtype=relaxed.frac_coords.dtype)
    frac = wrap_frac(relaxed.frac_coords + cart_to_frac(eps, relaxed.lattice, batch=relaxed.batch))
    target = minimum_image(relaxed.frac_coords - frac, relaxed.lattice, batch=relaxed.batch)
    rattled = CrystalBatch(relaxed.atom_types, frac, relaxed.lattice, relaxed.num_atoms, relaxed.batch)
    return rattled, target


class BiasedHead(torch.nn.Module):
    """Deliberately broken: adds a fixed Cartesian vector, which does not rotate with the crystal."""

    def __init__(self, head: DisplacementHead):
        super().__init__()
        self.head = head

    def forward(self, inputs: dict) -> torch.Tensor:
        out = self.head(inputs)
        return out + torch.tensor([0.01, 0.0, 0.0], dtype=out.dtype)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="optimiser steps")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    relaxed = CrystalBatch.from_pymatgen([s for _, s in prototypes()])
    gen = torch.Generator().manual_seed(args.seed)
    head = DisplacementHead(CONFIG)
    with torch.no_grad():
        fit_scale_factors(head.net, [head_inputs(rattle(relaxed, 0.1, gen)[0]) for _ in range(4)])

    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for step in range(args.steps):
        rattled, target = rattle(relaxed, 0.1, gen)
        loss = (head(head_inputs(rattled)) - target).pow(2).sum(-1).mean()  # Å^2 per atom
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  mean squared error {loss.item():.5f} Å^2")
    with torch.no_grad():
        rattled, target = rattle(relaxed, 0.1, torch.Generator().manual_seed(args.seed + 1))
        mse = float((head(head_inputs(rattled)) - target).pow(2).sum(-1).mean())
    baseline = float(target.pow(2).sum(-1).mean())
    print(f"held-out rattle: {mse:.5f} Å^2 (predicting no displacement: {baseline:.5f} Å^2)")

    # Symmetry, in float64 as every symmetry test of the toolkit.
    head64, batch64 = head.double(), rattled.to(dtype=torch.float64)
    transforms = standard_transforms(seed=args.seed)
    with torch.no_grad():
        errors = assert_equivariant(
            lambda b: head64(head_inputs(b)), batch64, transforms=transforms, actions="cart_vector", atol=1e-8
        )
        print("equivariant: largest error per transform (Å)")
        for (name, _), err in errors.items():
            print(f"  {name:12s} {err:.1e}")
        broken = BiasedHead(head64)
        try:
            assert_equivariant(
                lambda b: broken(head_inputs(b)), batch64, transforms=transforms, actions="cart_vector"
            )
            caught = None
        except AssertionError as err:
            caught = str(err)
    print("the broken head fails as it should:\n" + (caught or "NOT CAUGHT"))
    return {"mse": mse, "baseline": baseline, "errors": errors, "broken_message": caught}


if __name__ == "__main__":
    main()
