"""Input validation at public entry points: ValueErrors that name the field and the crystal."""

from __future__ import annotations

import torch
from torch import Tensor

# |det L| / (|a| |b| |c|) below this is treated as a degenerate (zero-volume) cell
_MIN_RELATIVE_VOLUME = 1e-10


def check_flat_batch(
    frac_coords: Tensor, lattice: Tensor, num_atoms: Tensor, ids: tuple | None = None
) -> Tensor:
    """Validate a flat batch and return ``batch (N,)``, the crystal index of every atom."""
    for name, value in (("frac_coords", frac_coords), ("lattice", lattice), ("num_atoms", num_atoms)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if frac_coords.ndim != 2 or frac_coords.shape[1] != 3:
        raise ValueError(f"frac_coords: expected shape (N, 3), got {tuple(frac_coords.shape)}")
    if lattice.ndim != 3 or lattice.shape[1:] != (3, 3):
        raise ValueError(f"lattice: expected shape (C, 3, 3), got {tuple(lattice.shape)}")
    if num_atoms.ndim != 1 or num_atoms.shape[0] != lattice.shape[0]:
        raise ValueError(
            f"num_atoms: expected shape (C,) = ({lattice.shape[0]},) to match lattice, "
            f"got {tuple(num_atoms.shape)}"
        )
    if num_atoms.is_floating_point() or num_atoms.dtype == torch.bool:
        raise ValueError(f"num_atoms: expected an integer tensor, got {num_atoms.dtype}")
    if not frac_coords.is_floating_point() or not lattice.is_floating_point():
        raise ValueError("frac_coords and lattice must be floating-point tensors")
    num_atoms = num_atoms.long()
    # every value check in one device-to-host read (a GPU waits for each); details only on failure
    finite_atoms = torch.isfinite(frac_coords).all(dim=1)  # (N,)
    finite_cells, flat_cells = _lattice_flags(lattice)  # (C,) each
    summary = torch.stack([
        (num_atoms < 0).any().long(), num_atoms.sum(), (~finite_atoms).any().long(),
        (~finite_cells).any().long(), flat_cells.any().long(),
    ]).tolist()  # fmt: skip
    negative, total, bad_atoms, bad_cells, flat = summary
    if negative:
        bad = int((num_atoms < 0).nonzero()[0, 0])
        raise ValueError(f"num_atoms: {_name(bad, ids)} has a negative atom count {int(num_atoms[bad])}")
    if total != frac_coords.shape[0]:
        raise ValueError(f"num_atoms: sums to {total} but frac_coords has {frac_coords.shape[0]} rows")
    batch = torch.repeat_interleave(
        torch.arange(lattice.shape[0], device=lattice.device), num_atoms, output_size=total
    )
    if bad_atoms:
        atom = int((~finite_atoms).nonzero()[0, 0])
        raise ValueError(
            f"frac_coords: {_name(int(batch[atom]), ids)} has a non-finite coordinate "
            f"(atom {atom}: {frac_coords[atom].tolist()})"
        )
    if bad_cells or flat:
        check_lattices(lattice, ids)  # raises, naming the crystal
    return batch


def _lattice_flags(lattice: Tensor) -> tuple[Tensor, Tensor]:
    """``(finite (C,), degenerate (C,))`` of ``(C, 3, 3)`` lattices, without reading them to the host."""
    finite = torch.isfinite(lattice).flatten(1).all(dim=1)
    lat64 = lattice.detach().double()
    rel = torch.linalg.det(lat64).abs() / lat64.norm(dim=-1).prod(dim=-1)  # (C,)
    return finite, finite & ~(rel > _MIN_RELATIVE_VOLUME)


def check_lattices(lattice: Tensor, ids: tuple | None = None) -> None:
    """Raise if any ``(C, 3, 3)`` lattice is non-finite or has (numerically) zero volume."""
    finite, degenerate = _lattice_flags(lattice)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"lattice: {_name(bad, ids)} has non-finite entries {lattice[bad].tolist()}")
    if bool(degenerate.any()):
        bad = int(degenerate.nonzero()[0, 0])
        vol = float(torch.linalg.det(lattice[bad].detach().double()).abs())
        raise ValueError(
            f"lattice: {_name(bad, ids)} has non-positive volume ({vol:.3g} A^3, lattice vectors "
            f"linearly dependent): {lattice[bad].tolist()}"
        )


def _name(index: int, ids: tuple | None) -> str:
    if ids is not None and ids[index] is not None:
        return f"crystal {index} (id {ids[index]!r})"
    return f"crystal {index}"
