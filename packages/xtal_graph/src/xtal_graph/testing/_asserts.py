"""Invariance / equivariance assertions that report the largest error per transform and output."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from ..batch import CrystalBatch
from ..radius import PeriodicGraph
from ._transforms import Transformed

__all__ = ["assert_edges_equivalent", "assert_equivariant", "assert_invariant", "equivariance_errors"]

Action = Literal["invariant", "per_atom", "cart_vector", "crystal_cart_vector"]
Transforms = (
    Mapping[str, Callable[[CrystalBatch], Transformed]] | Sequence[Callable[[CrystalBatch], Transformed]]
)


def _outputs(value) -> tuple[Tensor, ...]:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _expected(out: Tensor, action: str, t: Transformed) -> Tensor:
    if action == "invariant":
        return out if out.ndim == 0 else out[t.crystal_map]
    if action == "per_atom":
        return out[t.atom_map]
    if action == "cart_vector":
        rot = t.rotation.to(out.dtype)[t.batch.batch]  # (N', 3, 3)
        return torch.bmm(out[t.atom_map].unsqueeze(1), rot.transpose(1, 2)).squeeze(1)
    if action == "crystal_cart_vector":
        rot = t.rotation.to(out.dtype)  # (C', 3, 3)
        return torch.bmm(out[t.crystal_map].unsqueeze(1), rot.transpose(1, 2)).squeeze(1)
    raise ValueError(f"actions: unknown action {action!r} (use {Action.__args__})")


def equivariance_errors(
    fn: Callable[[CrystalBatch], Tensor | Sequence[Tensor]],
    batch: CrystalBatch,
    *,
    transforms: Transforms,
    actions: str | Sequence[str],
) -> dict[tuple[str, int], float]:
    """Largest absolute error of ``fn(g . batch)`` against ``g . fn(batch)`` for every transform g
    and every output. ``actions`` says how each output transforms: ``"invariant"`` (per crystal or
    a scalar: unchanged), ``"per_atom"`` (permuted/tiled with the atoms), ``"cart_vector"`` (per-atom
    Cartesian vectors: also rotated), ``"crystal_cart_vector"`` (one Cartesian vector per crystal)."""
    items = transforms.items() if isinstance(transforms, Mapping) else ((None, t) for t in transforms)
    reference = _outputs(fn(batch))
    actions = (actions,) * len(reference) if isinstance(actions, str) else tuple(actions)
    if len(actions) != len(reference):
        raise ValueError(f"actions: {len(actions)} given for {len(reference)} outputs of fn")
    errors: dict[tuple[str, int], float] = {}
    for key, transform in items:
        t = transform(batch)
        name = key or t.name
        got = _outputs(fn(t.batch))
        for k, (out, new, action) in enumerate(zip(reference, got, actions, strict=True)):
            want = _expected(out, action, t)
            if want.shape != new.shape:
                errors[(name, k)] = float("inf")
                continue
            diff = (new.double() - want.double()).abs()
            errors[(name, k)] = float(diff.max()) if diff.numel() else 0.0
    return errors


def _report(errors: dict[tuple[str, int], float], atol: float, what: str) -> None:
    failed = {k: v for k, v in errors.items() if not v <= atol}
    if failed:
        lines = [f"  {name:<22s} output {k}: max |error| = {err:.3e}" for (name, k), err in errors.items()]
        raise AssertionError(f"not {what} within atol={atol:g}:\n" + "\n".join(lines))


def assert_equivariant(
    fn: Callable[[CrystalBatch], Tensor | Sequence[Tensor]],
    batch: CrystalBatch,
    *,
    transforms: Transforms,
    actions: str | Sequence[str],
    atol: float = 1e-8,
) -> dict[tuple[str, int], float]:
    """Assert ``fn(g . batch) == g . fn(batch)`` (see :func:`equivariance_errors`); returns the
    errors, and on failure raises AssertionError listing the largest error of every case."""
    __tracebackhide__ = True
    errors = equivariance_errors(fn, batch, transforms=transforms, actions=actions)
    _report(errors, atol, "equivariant")
    return errors


def assert_invariant(
    fn: Callable[[CrystalBatch], Tensor | Sequence[Tensor]],
    batch: CrystalBatch,
    *,
    transforms: Transforms,
    per_atom: bool = False,
    atol: float = 1e-8,
) -> dict[tuple[str, int], float]:
    """Assert every output of ``fn`` is unchanged by the transforms: per crystal (or a scalar), or,
    with ``per_atom=True``, per atom (following the atoms through permutations and supercells)."""
    __tracebackhide__ = True
    errors = equivariance_errors(
        fn, batch, transforms=transforms, actions="per_atom" if per_atom else "invariant"
    )
    _report(errors, atol, "invariant")
    return errors


def _edges_by_target(
    graph: PeriodicGraph, t: Transformed | None, original: CrystalBatch
) -> tuple[dict[int, list[tuple[int, ...]]], dict[int, list[float]], float]:
    """Every edge as (original source, original offset) grouped by its target atom (in the graph's
    own numbering), sorted; plus distances in the same order and the largest rounding residual."""
    src, dst = graph.edge_index
    vec = graph.vectors.detach().double()
    src_orig, dst_orig = src, dst
    if t is not None:
        rot = t.rotation.double()[t.batch.batch[dst]]  # (E, 3, 3)
        vec = torch.bmm(vec.unsqueeze(1), rot).squeeze(1)  # back to the original frame
        src_orig, dst_orig = t.atom_map[src], t.atom_map[dst]
    lattice = original.lattice.double()[original.batch[dst_orig]]  # (E, 3, 3)
    frac = torch.linalg.solve(lattice.transpose(1, 2), vec.unsqueeze(2)).squeeze(2)
    frac = frac - (original.frac_coords.double()[src_orig] - original.frac_coords.double()[dst_orig])
    offsets = frac.round()
    residual = float((frac - offsets).abs().max()) if frac.numel() else 0.0
    rows: dict[int, list[tuple[tuple[int, ...], float]]] = {}
    for target, source, off, dist in zip(
        dst.tolist(), src_orig.tolist(), offsets.long().tolist(), graph.distances.tolist(), strict=True
    ):
        rows.setdefault(target, []).append(((source, *off), dist))
    keys, dists = {}, {}
    for target, items in rows.items():
        items.sort()
        keys[target] = [k for k, _ in items]
        dists[target] = [d for _, d in items]
    return keys, dists, residual


def assert_edges_equivalent(
    graph: PeriodicGraph,
    transformed_graph: PeriodicGraph,
    batch: CrystalBatch,
    transformed: Transformed,
    *,
    atol: float = 1e-8,
) -> float:
    """Assert two graphs of the same crystals (before and after a transform) have the same edges.

    Every edge of ``transformed_graph`` is mapped back to (source, integer offset) in the original
    batch through its Cartesian vector. Each new atom's edges must then equal, as a set, those of
    the original atom it came from (so permutations and supercells are covered), and distances must
    agree within ``atol``. Returns the largest distance error."""
    __tracebackhide__ = True
    keys0, dists0, _ = _edges_by_target(graph, None, batch)
    keys1, dists1, residual = _edges_by_target(transformed_graph, transformed, batch)
    name = transformed.name
    if residual > 1e-6:
        raise AssertionError(f"{name}: an edge vector is not a lattice translate (residual {residual:.2e})")
    worst = 0.0
    for atom in range(transformed.batch.atom_types.shape[0]):
        old = int(transformed.atom_map[atom])
        got, want = keys1.get(atom, []), keys0.get(old, [])
        if got != want:
            extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
            raise AssertionError(
                f"{name}: atom {atom} (originally {old}) has {len(got)} edges, expected {len(want)}; "
                f"extra (source, offset) {extra[:5]}, missing {missing[:5]}"
            )
        if got:
            err = max(abs(a - b) for a, b in zip(dists1[atom], dists0[old], strict=True))
            worst = max(worst, err)
    if worst > atol:
        raise AssertionError(f"{name}: distances differ by up to {worst:.3e} (atol {atol:g})")
    return worst
