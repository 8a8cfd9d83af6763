"""Symmetry transforms of a :class:`~xtal_graph.CrystalBatch` that leave the crystals physically
unchanged (up to a rigid rotation/reflection), each returning what relates output to input."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..batch import CrystalBatch
from ..lattice import wrap_frac

__all__ = [
    "Transformed",
    "change_basis",
    "make_supercell",
    "permute_atoms",
    "random_permutation",
    "random_rotation",
    "random_unimodular",
    "rotate",
    "shift_images",
    "standard_transforms",
    "translate",
]


@dataclass(frozen=True)
class Transformed:
    """A transformed batch and its relation to the original.

    Attributes:
        batch: the transformed batch (``N'`` atoms, ``C'`` crystals).
        atom_map: ``(N',)`` long, the original atom of every new atom.
        crystal_map: ``(C',)`` long, the original crystal of every new crystal.
        rotation: ``(C', 3, 3)``; Cartesian vectors transform as ``v_new = v_old @ rotation[c].T``.
        name: short description for error reports.
    """

    batch: CrystalBatch
    atom_map: Tensor
    crystal_map: Tensor
    rotation: Tensor
    name: str


def _identity(batch: CrystalBatch, name: str, new: CrystalBatch | None = None) -> Transformed:
    eye = torch.eye(3, dtype=batch.lattice.dtype, device=batch.lattice.device)
    c, n = batch.num_crystals, batch.atom_types.shape[0]
    return Transformed(
        batch=new if new is not None else batch,
        atom_map=torch.arange(n, device=batch.batch.device),
        crystal_map=torch.arange(c, device=batch.batch.device),
        rotation=eye.expand(c, 3, 3).clone(),
        name=name,
    )


def _per_crystal(matrix: Tensor, batch: CrystalBatch) -> Tensor:
    matrix = torch.as_tensor(matrix, device=batch.lattice.device)
    return matrix.expand(batch.num_crystals, 3, 3) if matrix.ndim == 2 else matrix


def random_rotation(seed: int, *, reflect: bool = False, dtype: torch.dtype = torch.float64) -> Tensor:
    """Haar-uniform rotation ``(3, 3)`` (det +1), or a rotation times -1 (det -1) if ``reflect``."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return (-q if reflect else q).to(dtype)


def random_unimodular(seed: int, *, max_coefficient: int = 2, steps: int = 4) -> Tensor:
    """Random integer ``(3, 3)`` matrix with determinant +-1: elementary shears, a permutation and
    sign flips."""
    gen = torch.Generator().manual_seed(seed)
    matrix = torch.eye(3, dtype=torch.long)
    for _ in range(steps):
        i, j = torch.randperm(3, generator=gen)[:2].tolist()
        coef = int(torch.randint(-max_coefficient, max_coefficient + 1, (1,), generator=gen))
        shear = torch.eye(3, dtype=torch.long)
        shear[i, j] = coef
        matrix = shear @ matrix
    signs = torch.randint(0, 2, (3,), generator=gen) * 2 - 1
    return (signs[:, None] * matrix)[torch.randperm(3, generator=gen)]


def random_permutation(batch: CrystalBatch, seed: int) -> Tensor:
    """``(N,)`` permutation that shuffles atoms within each crystal (new atom -> old atom)."""
    gen = torch.Generator().manual_seed(seed)
    keys = batch.batch.cpu().double() + torch.rand(batch.batch.shape[0], generator=gen, dtype=torch.float64)
    return torch.argsort(keys).to(batch.batch.device)


def rotate(batch: CrystalBatch, rotation: Tensor) -> Transformed:
    """Rotate/reflect every crystal: ``lattice -> lattice @ R^T`` (fractional coordinates unchanged).

    ``rotation`` is ``(3, 3)`` or one per crystal ``(C, 3, 3)``."""
    rot = _per_crystal(rotation, batch).to(batch.lattice.dtype)
    new = batch.replace(lattice=batch.lattice @ rot.transpose(1, 2))
    return Transformed(
        batch=new,
        atom_map=torch.arange(batch.atom_types.shape[0], device=batch.batch.device),
        crystal_map=torch.arange(batch.num_crystals, device=batch.batch.device),
        rotation=rot.clone(),
        name="rotation" if bool((torch.linalg.det(rot) > 0).all()) else "rotation+reflection",
    )


def translate(batch: CrystalBatch, shift: Tensor) -> Transformed:
    """Add a fractional ``shift (C, 3)`` (or ``(3,)``) to every atom of each crystal, then wrap."""
    shift = torch.as_tensor(shift, dtype=batch.frac_coords.dtype, device=batch.frac_coords.device)
    shift = shift.expand(batch.num_crystals, 3)
    return _identity(
        batch, "translation", batch.replace(frac_coords=wrap_frac(batch.frac_coords + shift[batch.batch]))
    )


def shift_images(batch: CrystalBatch, shifts: Tensor) -> Transformed:
    """Move every atom by an integer lattice vector ``shifts (N, 3)`` (no wrapping): same crystal."""
    shifts = torch.as_tensor(shifts, device=batch.frac_coords.device).to(batch.frac_coords.dtype)
    return _identity(batch, "image shift", batch.replace(frac_coords=batch.frac_coords + shifts))


def permute_atoms(batch: CrystalBatch, perm: Tensor) -> Transformed:
    """Reorder atoms within crystals; ``perm (N,)`` gives the old index of every new atom."""
    perm = torch.as_tensor(perm, device=batch.batch.device).long()
    if not bool((batch.batch[perm] == batch.batch).all()):
        raise ValueError("perm: must keep every atom inside its own crystal")
    new = batch.replace(atom_types=batch.atom_types[perm], frac_coords=batch.frac_coords[perm])
    out = _identity(batch, "permutation", new)
    return Transformed(out.batch, perm, out.crystal_map, out.rotation, out.name)


def change_basis(batch: CrystalBatch, matrix: Tensor) -> Transformed:
    """Unimodular change of basis ``U`` (integer, det +-1), ``(3, 3)`` or ``(C, 3, 3)``:
    ``lattice -> U @ lattice``, ``frac -> wrap(frac @ U^-1)``. The crystal is unchanged."""
    u = _per_crystal(torch.as_tensor(matrix), batch)
    det = torch.linalg.det(u.double())
    if not bool((det.abs() - 1).abs().max() < 1e-9) or not bool((u.double().round() == u.double()).all()):
        raise ValueError("matrix: a change of basis must be an integer matrix with determinant +-1")
    u = u.to(batch.lattice.dtype)
    u_inv = torch.linalg.inv(u.double()).round().to(batch.lattice.dtype)
    frac = torch.bmm(batch.frac_coords.unsqueeze(1), u_inv[batch.batch]).squeeze(1)
    return _identity(
        batch, "basis change", batch.replace(lattice=u @ batch.lattice, frac_coords=wrap_frac(frac))
    )


def make_supercell(batch: CrystalBatch, scaling: Sequence[int]) -> Transformed:
    """Diagonal supercell ``scaling = (s_a, s_b, s_c)`` of every crystal; new atoms are ordered
    crystal by crystal, image by image (``itertools.product`` order), atom by atom."""
    scale = [int(s) for s in scaling]
    if len(scale) != 3 or min(scale) < 1:
        raise ValueError(f"scaling: expected three positive integers, got {scaling}")
    dtype, device = batch.frac_coords.dtype, batch.frac_coords.device
    images = torch.tensor(list(itertools.product(*(range(s) for s in scale))), dtype=dtype, device=device)
    factor = torch.tensor(scale, dtype=dtype, device=device)
    atom_maps, fracs = [], []
    starts = (torch.cumsum(batch.num_atoms, 0) - batch.num_atoms).tolist()
    for start, n in zip(starts, batch.num_atoms.tolist(), strict=True):
        idx = torch.arange(start, start + n, device=device)
        frac = (batch.frac_coords[idx][None, :, :] + images[:, None, :]) / factor  # (S, n, 3)
        fracs.append(frac.reshape(-1, 3))
        atom_maps.append(idx.repeat(images.shape[0]))
    atom_map = torch.cat(atom_maps)
    num_atoms = batch.num_atoms * images.shape[0]
    new = CrystalBatch(
        atom_types=batch.atom_types[atom_map],
        frac_coords=torch.cat(fracs),
        lattice=factor[None, :, None] * batch.lattice,
        num_atoms=num_atoms,
        batch=torch.repeat_interleave(torch.arange(batch.num_crystals, device=device), num_atoms),
        properties=batch.properties,
        ids=batch.ids,
    )
    out = _identity(batch, f"supercell {tuple(scale)}", new)
    return Transformed(new, atom_map, out.crystal_map, out.rotation, out.name)


def standard_transforms(
    seed: int = 0, *, supercell: Sequence[int] = (2, 1, 2)
) -> dict[str, Callable[[CrystalBatch], Transformed]]:
    """The transforms every symmetry test should cover, seeded, by name: ``rotation``,
    ``reflection``, ``translation``, ``permutation``, ``image_shift``, ``basis_change``,
    ``supercell``. Each maps a batch to a :class:`Transformed`."""

    def gen(offset: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed * 1000 + offset)

    def translation(b: CrystalBatch) -> Transformed:
        return translate(b, torch.rand(b.num_crystals, 3, generator=gen(3), dtype=torch.float64))

    def image_shift(b: CrystalBatch) -> Transformed:
        return shift_images(b, torch.randint(-2, 3, (b.atom_types.shape[0], 3), generator=gen(4)))

    def basis_change(b: CrystalBatch) -> Transformed:
        mats = [random_unimodular(seed * 1000 + 5 + c) for c in range(b.num_crystals)]
        return change_basis(b, torch.stack(mats))

    return {
        "rotation": lambda b: rotate(b, random_rotation(seed * 1000 + 1)),
        "reflection": lambda b: rotate(b, random_rotation(seed * 1000 + 2, reflect=True)),
        "translation": translation,
        "permutation": lambda b: permute_atoms(b, random_permutation(b, seed * 1000 + 6)),
        "image_shift": image_shift,
        "basis_change": basis_change,
        "supercell": lambda b: make_supercell(b, supercell),
    }
