"""The sampler interface of the benchmarks.

:class:`Sampler`: ``sampler(formulas, pressures, num=k, seed=s)`` returns ``k`` pymatgen structures (``None``
for a rejected cell) per row. :class:`ModelSampler` wraps the sampling engine
(:func:`cond_vae.sampling.sample_requests`: row ``i`` is ``(formulas[i], pressures[i])``, sample ``j`` of it
is keyed by ``(seed, i, j)``, exactly as ``tools/sample --rows`` with the same seed and sampler); tests and
other generators plug in anything with the same call. :class:`SampleWriter` keeps every sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from xtal_tools.evaluation.targets import BenchTarget

__all__ = ["ModelSampler", "RandomSampler", "SampleGroup", "SampleWriter", "Sampler", "derived_seed"]


def derived_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``seed`` and integer keys (distinct keys give independent streams)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


class Sampler(Protocol):
    """Anything that returns ``num`` structures (or ``None``) for each (cell formula, pressure) row."""

    def __call__(
        self, formulas: Sequence[str], pressures: Sequence[float], *, num: int, seed: int
    ) -> list[list[Any]]: ...


class SampleGroup(Sequence):
    """The samples of one row as pymatgen structures (``None`` for a rejected cell), made when read.

    Holds the engine's :class:`cond_vae.SampledStructure` list (``samples``); each item is converted on
    access and not kept, so a benchmark holding every target's samples keeps only numpy arrays alive.
    """

    def __init__(self, samples: Sequence):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        s = self.samples[i]
        return s.to_pymatgen() if s.valid else None


@dataclass(frozen=True)
class ModelSampler:
    """The sampling engine as a :class:`Sampler`: one call samples every row with one seed.

    ``sampler``: a :class:`cond_vae.SamplerConfig` (default ``SamplerConfig()``). Returns one
    :class:`SampleGroup` per row.
    """

    model: Any
    sampler: Any = None

    def __call__(self, formulas, pressures, *, num: int, seed: int) -> list[SampleGroup]:
        import torch
        from cond_vae import SamplerConfig
        from cond_vae.sampling import make_requests, sample_requests

        sampler = SamplerConfig() if self.sampler is None else self.sampler
        requests = make_requests(self.model, list(formulas), list(pressures))
        with torch.inference_mode():
            samples = sample_requests(self.model, requests, num_per_row=num, seed=seed, sampler=sampler)
        groups: list[list] = [[] for _ in requests]
        for s in samples:
            groups[s.row].append(s)
        return [SampleGroup(g) for g in groups]


class SampleWriter:
    """Appends samples to ``<out>/samples_<mode>.extxyz`` (hidden temporary files until :meth:`commit`).

    Each frame's ``info`` holds ``target_id`` and ``index`` (0-based sampling number); a rejected cell
    or failed relaxation has no frame, so a missing index is a sample that cannot match.
    """

    def __init__(self, out_dir: Path):
        self.out_dir, self.paths = Path(out_dir), {}

    def __call__(self, mode: str, targets: Sequence[BenchTarget], groups: Sequence[Sequence]) -> None:
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        frames = []
        for t, group in zip(targets, groups, strict=True):
            for j, s in enumerate(group):
                if s is not None:
                    atoms = AseAtomsAdaptor.get_atoms(s)
                    atoms.info = {"target_id": t.id, "index": j}
                    frames.append(atoms)
        tmp = self.paths.setdefault(mode, self.out_dir / f".samples_{mode}.extxyz.tmp")
        with tmp.open("a") as fh:
            write(fh, frames, format="extxyz")

    def commit(self) -> list[Path]:
        """Rename every temporary file to its final name; returns the final paths."""
        done = []
        for mode, tmp in self.paths.items():
            tmp.touch()
            final = self.out_dir / f"samples_{mode}.extxyz"
            os.replace(tmp, final)
            done.append(final)
        return done

    def discard(self) -> None:
        for tmp in self.paths.values():
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class RandomSampler:
    """PyXtal (``kind="pyxtal"``) or uniform P1 (``"uniform"``) random structures as a
    :class:`xtal_tools.evaluation.samplers.Sampler`; ``volumes[(formula, pressure)]`` gives each row's cell
    volume (Å^3). Sample ``j`` of a call with seed ``s`` has seed ``derived_seed(s, j)``; a structure
    that cannot be made is ``None``."""

    volumes: dict[tuple[str, float], float]
    kind: str = "pyxtal"
    min_distance_scale: float = 0.5

    def __call__(self, formulas, pressures, *, num: int, seed: int) -> list[list[Any]]:
        from xtal_tools.evaluation.localopt import random_twin

        return [
            [
                random_twin(
                    self.kind, f, self.volumes[(f, float(p))], derived_seed(seed, j), self.min_distance_scale
                )[0]
                for j in range(num)
            ]
            for f, p in zip(formulas, pressures, strict=True)
        ]
