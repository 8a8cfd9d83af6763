"""Shared helpers for the score_decoder tests: inputs from xtal_graph, symmetry transforms, strategies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from score_decoder import GemNetScore
from xtal_graph import radius_graph_pbc, triplets


@dataclass(frozen=True)
class Structures:
    """A flat batch of crystals (torch, one dtype)."""

    atom_types: torch.Tensor  # (N,)
    frac_coords: torch.Tensor  # (N, 3)
    lattice: torch.Tensor  # (C, 3, 3)
    num_atoms: torch.Tensor  # (C,)

    @property
    def batch(self) -> torch.Tensor:
        index = torch.arange(len(self.num_atoms), device=self.num_atoms.device)  # (C,) on their device
        return torch.repeat_interleave(index, self.num_atoms)

    def to(self, device=None, dtype=None) -> Structures:
        return Structures(
            self.atom_types.to(device),
            self.frac_coords.to(device=device, dtype=dtype),
            self.lattice.to(device=device, dtype=dtype),
            self.num_atoms.to(device),
        )


def model_inputs(s: Structures, *, cutoff: float, max_neighbors: int | None, cond: torch.Tensor) -> dict:
    """Keyword arguments for ``GemNetScore.forward``: the graph and triplets built by xtal_graph."""
    graph = radius_graph_pbc(s.frac_coords, s.lattice, s.num_atoms, cutoff, max_neighbors)
    n = s.atom_types.shape[0]
    batch = s.batch.to(s.atom_types.device)
    trips = triplets(graph, n)
    return dict(atom_types=s.atom_types, batch=batch, graph=graph, triplets=trips, cond=cond)


def score_of(model: GemNetScore, s: Structures, cond: torch.Tensor) -> torch.Tensor:
    c = model.config
    return model(**model_inputs(s, cutoff=c.cutoff, max_neighbors=c.max_neighbors, cond=cond))


# ----------------------------------------------------------------------------- transforms


def random_orthogonal(rng: np.random.Generator, *, reflect: bool) -> torch.Tensor:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return torch.tensor(q, dtype=torch.float64)


def rotate(s: Structures, rot: torch.Tensor) -> Structures:
    """Rotate the crystal: Cartesian ``x -> x @ rot.T``, so ``L -> L @ rot.T``."""
    return Structures(s.atom_types, s.frac_coords, s.lattice @ rot.T.to(s.lattice), s.num_atoms)


def translate(s: Structures, shift: torch.Tensor) -> Structures:
    """Add a fractional shift ``(C, 3)`` per crystal and wrap into [0, 1)."""
    frac = torch.remainder(s.frac_coords + shift[s.batch], 1.0)
    return Structures(s.atom_types, torch.where(frac >= 1.0, frac - 1.0, frac), s.lattice, s.num_atoms)


def shift_images(s: Structures, images: torch.Tensor) -> Structures:
    """Move atoms by whole lattice vectors, ``images (N, 3)`` integers: the same crystal."""
    return Structures(s.atom_types, s.frac_coords + images.to(s.frac_coords), s.lattice, s.num_atoms)


def change_basis(s: Structures, unimodular: torch.Tensor) -> Structures:
    """``L -> U L`` and ``frac -> frac U^-1`` (wrapped): the same crystal in another cell."""
    u = unimodular.to(s.lattice)
    frac = torch.remainder(s.frac_coords @ torch.linalg.inv(u), 1.0)
    return Structures(s.atom_types, frac, u @ s.lattice, s.num_atoms)


def permute(s: Structures, perm: torch.Tensor) -> Structures:
    """Reorder atoms by ``perm (N,)`` (must keep every atom in its crystal)."""
    return Structures(s.atom_types[perm], s.frac_coords[perm], s.lattice, s.num_atoms)


def supercell(s: Structures, reps: tuple[int, int, int]) -> tuple[Structures, torch.Tensor]:
    """Diagonal supercell of a batch; returns it and the original atom of every new atom."""
    diag = torch.tensor(reps, dtype=s.lattice.dtype)
    cells = torch.tensor(
        [[a, b, c] for a in range(reps[0]) for b in range(reps[1]) for c in range(reps[2])],
        dtype=s.lattice.dtype,
    )  # (M, 3)
    types, frac, origin, start = [], [], [], 0
    for n in s.num_atoms.tolist():
        f = s.frac_coords[start : start + n]
        frac.append(((f[None] + cells[:, None]) / diag).reshape(-1, 3))
        types.append(s.atom_types[start : start + n].repeat(len(cells)))
        origin.append(torch.arange(start, start + n).repeat(len(cells)))
        start += n
    big = Structures(
        torch.cat(types), torch.cat(frac), s.lattice * diag[None, :, None], s.num_atoms * len(cells)
    )
    return big, torch.cat(origin)


# ----------------------------------------------------------------------------- strategies


@st.composite
def unimodular(draw) -> torch.Tensor:
    """Products of elementary integer shears (det = 1) and optionally a swap (det = -1)."""
    u = np.eye(3, dtype=np.int64)
    for _ in range(draw(st.integers(1, 3))):
        i, j = draw(st.sampled_from([(a, b) for a in range(3) for b in range(3) if a != b]))
        e = np.eye(3, dtype=np.int64)
        e[i, j] = draw(st.sampled_from([-1, 1]))
        u = e @ u
    if draw(st.booleans()):
        u = u[[1, 0, 2]]
    return torch.tensor(u, dtype=torch.float64)


def min_image_distance(frac: np.ndarray, lattice: np.ndarray) -> float:
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    diff = frac[:, None, None, :] - frac[None, :, None, :] + shifts[None, None]
    d = np.linalg.norm(diff @ lattice, axis=-1)
    n = len(frac)
    d[np.arange(n), np.arange(n), 13] = np.inf
    return float(d.min())


@st.composite
def crystal_batches(draw, *, max_crystals: int = 2, min_atoms: int = 2, max_atoms: int = 4) -> Structures:
    """Small random crystals (lengths 3-5 Å, angles 65-115°, atoms at least 0.9 Å apart), float64.

    At least two atoms per crystal by default: a one-atom crystal is centrosymmetric, so its score
    is zero by symmetry and would make an equivariance test vacuous.
    """
    types, frac, lattices, counts = [], [], [], []
    for _ in range(draw(st.integers(1, max_crystals))):
        n = draw(st.integers(min_atoms, max_atoms))
        lengths = [draw(st.floats(3.0, 5.0)) for _ in range(3)]
        alpha, beta, gamma = (np.radians(draw(st.floats(65.0, 115.0))) for _ in range(3))
        cx = np.cos(beta)
        cy = (np.cos(alpha) - np.cos(beta) * np.cos(gamma)) / np.sin(gamma)
        cz2 = 1.0 - cx**2 - cy**2
        assume(cz2 > 0.1)
        lat = (
            np.array([[1.0, 0.0, 0.0], [np.cos(gamma), np.sin(gamma), 0.0], [cx, cy, np.sqrt(cz2)]])
            * np.array(lengths)[:, None]
        )
        f = np.array([[draw(st.floats(0.0, 0.999)) for _ in range(3)] for _ in range(n)])
        assume(min_image_distance(f, lat) > 0.9)
        types += [draw(st.integers(1, 94)) for _ in range(n)]
        frac.append(f)
        lattices.append(lat)
        counts.append(n)
    return Structures(
        torch.tensor(types),
        torch.tensor(np.concatenate(frac)),
        torch.tensor(np.stack(lattices)),
        torch.tensor(counts),
    )


def random_crystals(
    rng: np.random.Generator, *, num_crystals: int, atoms: tuple[int, int], volume_per_atom: float = 16.0
) -> Structures:
    """Real-sized random crystals (MP-20-like density): random cells, atoms >= 1.5 Å apart."""
    types, frac, lattices, counts = [], [], [], []
    while len(counts) < num_crystals:
        n = int(rng.integers(atoms[0], atoms[1] + 1))
        m = np.eye(3) + 0.25 * rng.standard_normal((3, 3))
        if np.linalg.det(m) <= 0.2:
            continue
        lat = m * (n * volume_per_atom / np.linalg.det(m)) ** (1 / 3)
        f = rng.random((1, 3))
        for _ in range(200 * n):  # random sequential addition
            if len(f) == n:
                break
            trial = np.concatenate([f, rng.random((1, 3))])
            if min_image_distance(trial, lat) >= 1.5:
                f = trial
        if len(f) < n:
            continue
        types.append(rng.integers(1, 84, n))
        frac.append(f)
        lattices.append(lat)
        counts.append(n)
    return Structures(
        torch.tensor(np.concatenate(types)),
        torch.tensor(np.concatenate(frac)),
        torch.tensor(np.stack(lattices)),
        torch.tensor(counts),
    )


def cond_for(num_crystals: int, width: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """A deterministic, crystal-dependent condition vector ``(C, width)``."""
    return torch.sin(torch.arange(num_crystals * width, dtype=dtype, device=device) * 0.7).view(
        num_crystals, width
    )


def fixed_crystals(dtype=torch.float64) -> Structures:
    """Two small hand-made crystals (3 and 2 atoms) in general position."""
    lattice = torch.tensor(
        [
            [[3.9, 0.1, 0.0], [0.4, 4.2, 0.0], [0.3, -0.2, 4.4]],
            [[3.3, 0.0, 0.0], [0.0, 3.6, 0.0], [0.8, 0.5, 3.9]],
        ],
        dtype=dtype,
    )
    frac = torch.tensor(
        [[0.1, 0.2, 0.3], [0.55, 0.45, 0.7], [0.8, 0.9, 0.05], [0.0, 0.1, 0.2], [0.45, 0.6, 0.55]],
        dtype=dtype,
    )
    return Structures(torch.tensor([8, 26, 3, 6, 14]), frac, lattice, torch.tensor([3, 2]))
