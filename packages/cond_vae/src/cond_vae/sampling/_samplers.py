"""The samplers' update rules, as a plan of steps over the model's noise levels.

Notation: ``sigma`` the current level (Å), ``sigma'`` the next visited one, ``g = score(x, sigma)`` in
1/Å (for Cond-CDVAE the decoder output over ``sigma``), ``xi ~ N(0, I)``; every update moves the
Cartesian coordinates ``x`` of the atoms and wraps them back into the cell (the lattice stays fixed):

* ``langevin`` (the reference): ``x <- x + eta g + sqrt(2 eta) xi``, ``eta = step_lr (sigma / sigma_min)^2``.
* ``corrector`` (Langevin with a step from a signal-to-noise ratio ``r``, per crystal):
  ``eps = 2 (r |xi| / |g|)^2``, ``x <- x + eps g + sqrt(2 eps) xi`` (norms over the crystal's atoms).
* ``ancestral`` (reverse diffusion for the variance-exploding schedule, the exact Gaussian posterior step
  from ``sigma`` to ``sigma'``), with ``v = sigma^2 - sigma'^2``:
  ``x <- x + v g + sqrt(sigma'^2 v / sigma^2) xi``.
* ``ode`` (probability flow, Euler): ``x <- x + (sigma^2 - sigma'^2) g / 2``.
* ``denoise`` (Tweedie, to sigma = 0, noise-free): ``x <- x + sigma^2 g``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._config import SamplerConfig


@dataclass(frozen=True)
class Step:
    """One decoder call: ``kind``, at level ``sigma`` (Å), towards ``sigma_next`` (Å; predictor kinds),
    with ``eta`` (langevin, Å^2) or ``snr`` (corrector)."""

    kind: str
    sigma: float
    sigma_next: float = 0.0
    eta: float = 0.0
    snr: float = 0.0

    @property
    def noisy(self) -> bool:
        return self.kind in ("langevin", "corrector", "ancestral")


def visited_levels(num_available: int, levels: int | None) -> list[int]:
    """Indices of the visited levels: evenly spaced, first and last included."""
    k = num_available if levels is None else min(levels, num_available)
    if k == 1:
        return [num_available - 1]
    return sorted({round(i * (num_available - 1) / (k - 1)) for i in range(k)})


def visited_sigmas(sigmas: Tensor, levels: int | None) -> list[float]:
    """The noise levels (Å) a sampler visits: a subset of the model's (``levels`` <= L), or, for more
    levels than the model has, a geometric schedule between its largest and smallest level (the
    score takes any sigma; the model's own schedule is geometric)."""
    values = [float(s) for s in sigmas.tolist()]
    if levels is None or levels <= len(values):
        return [values[i] for i in visited_levels(len(values), levels)]
    ratio = (values[-1] / values[0]) ** (1.0 / (levels - 1))
    return [values[0] * ratio**i for i in range(levels - 1)] + [values[-1]]


def plan(config: SamplerConfig, sigmas: Tensor) -> list[Step]:
    """The decoder calls of one structure, in order (``len(plan) == config.decoder_calls(L)``)."""
    levels = visited_sigmas(sigmas, config.levels)
    sigma_min = float(sigmas[-1])
    steps: list[Step] = []
    if config.method == "langevin":
        for s in levels:
            eta = config.step_lr * (s / sigma_min) ** 2
            steps += [Step("langevin", s, eta=eta)] * config.steps_per_level
    else:
        kind = "ancestral" if config.method == "pc" else "ode"
        for j, s in enumerate(levels):
            if config.method == "pc":
                steps += [Step("corrector", s, snr=config.snr)] * config.corrector_steps
            if j + 1 < len(levels):
                steps.append(Step(kind, s, sigma_next=levels[j + 1]))
    if config.final_denoise:
        steps.append(Step("denoise", levels[-1]))
    return steps


def displacement(step: Step, g: Tensor, xi: Tensor | None, batch: Tensor, num_crystals: int) -> Tensor:
    """Cartesian move ``(N, 3)`` Å of one step from the score ``g (N, 3)`` and noise ``xi (N, 3)``."""
    s, s2 = step.sigma, step.sigma_next
    if step.kind == "langevin":
        return step.eta * g + math.sqrt(2.0 * step.eta) * xi
    if step.kind == "corrector":
        g_norm = _crystal_norm(g, batch, num_crystals)  # (C,)
        xi_norm = _crystal_norm(xi, batch, num_crystals)
        eps = 2.0 * (step.snr * xi_norm / g_norm.clamp_min(1e-12)) ** 2  # (C,) Å^2
        eps = eps[batch].unsqueeze(-1)  # (N, 1)
        return eps * g + torch.sqrt(2.0 * eps) * xi
    if step.kind == "ancestral":
        var = s * s - s2 * s2
        return var * g + math.sqrt(s2 * s2 * var / (s * s)) * xi
    if step.kind == "ode":
        return 0.5 * (s * s - s2 * s2) * g
    if step.kind == "denoise":
        return (s * s) * g
    raise ValueError(f"unknown step kind {step.kind!r}")


def _crystal_norm(v: Tensor, batch: Tensor, num_crystals: int) -> Tensor:
    sq = torch.zeros(num_crystals, dtype=v.dtype, device=v.device)
    sq.index_add_(0, batch, (v * v).sum(-1))
    return torch.sqrt(sq)
