"""``SamplerConfig``: which sampler, how many decoder calls, in what batches.

One frozen dataclass that the library, every CLI (flags and the ``[sampler]`` TOML table) and every run
record share under the same names. ``decoder_calls()`` is the cost of one structure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

METHODS = ("langevin", "pc", "ode")
CELL_VOLUMES = ("auto", "model", "prior")
LATENTS = ("auto", "standard", "fitted", "analogue")


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample coordinates in a fixed cell (update rules in :mod:`cond_vae.sampling._samplers`).

    ``method``:
      * ``"langevin"``: the reference's annealed Langevin dynamics, ``steps_per_level`` steps on each
        visited level with ``eta = step_lr (sigma / sigma_min)^2`` (the reference: 100 steps on all 50
        levels, ``step_lr = 1e-4``, 5,000 decoder calls).
      * ``"pc"``: a reverse-diffusion (ancestral) predictor from each visited level to the next, after
        ``corrector_steps`` Langevin corrector steps whose size is set by ``snr`` per crystal.
      * ``"ode"``: the probability-flow ODE (Euler between visited levels): deterministic given the
        latent and the starting coordinates.

    ``levels``: how many noise levels are visited: ``None`` all of the model's; fewer: a subset evenly
    spaced in index, the first and the last always included; more: a finer geometric schedule between
    the model's largest and smallest level. ``final_denoise``: one last noise-free step from the
    smallest level to sigma = 0 (Tweedie's formula). ``skin`` (Å): Verlet-list reuse, same results.
    ``batch_size``: structures per decoder call; the random numbers of a structure are a function of
    (seed, row, sample index) alone, so results depend on it only through the float rounding of batched
    matrix products (which a noisy sampler can amplify). ``reproducible=True`` decodes every crystal on
    its own: then the structures are the same bits for any batch size, chunking or number of processes.
    """

    # default: the probability-flow ODE on the model's 50 levels (50 decoder calls, 100x fewer than the
    # reference); chosen from the measured curve in docs/benchmarks/sampler.md
    method: str = "ode"
    levels: int | None = None
    steps_per_level: int = 1  # langevin: steps on each level
    step_lr: float = 1e-4  # langevin: the reference's step-size constant
    corrector_steps: int = 1  # pc: Langevin corrector steps on each level
    snr: float = 0.1  # pc: corrector signal-to-noise ratio
    final_denoise: bool = True
    skin: float | None = None
    batch_size: int = 512
    # decode every crystal on its own (the coordinates of each structure are then the same bits whatever
    # the batch size); costs the batching of the decoder calls (measured in docs/benchmarks/sampler.md)
    reproducible: bool = False
    # torch.compile the model's networks before the first decoder call (cond_vae.compile_networks, in
    # place): about a minute of compilation, then fewer, fused kernels (measured: docs/benchmarks/compile.md)
    compile: bool = False
    # "auto": size the lattice head's cells with the model's volume prior when it has one (measured:
    # docs/benchmarks/volume_prior.md); "model": as predicted; "prior": always the prior
    cell_volume: str = "auto"
    # where the latent of each structure is drawn: "auto": the model's fitted latent prior when it has one,
    # analogues when it keeps its training crystals; "standard": N(0, I), as the paper; "fitted": the
    # training crystals' codes of the same cell size, one at random (docs/benchmarks/cell_proposals.md);
    # "analogue": the code and the cell shape of the training crystals of the same size most alike in
    # the model's condition space, the k-th nearest for sample k (docs/benchmarks/analogues.md)
    latent: str = "auto"
    # z = mu_j + latent_scale * std_j * eps around the chosen training code; None: 1 for "fitted" (its
    # posterior), 0 for "analogue" (its mean)
    latent_scale: float | None = None
    # after sampling, put each structure's elements on the sites its model scores best: every distinct
    # assignment (up to 120) rated by the denoising loss (docs/benchmarks/analogues.md, section 4);
    # about 40 decoder evaluations per assignment; no gain measured on Perov-5 or MP-20
    # (docs/benchmarks/perov5_orderings.md)
    reassign_species: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"SamplerConfig: {message}")

        need(self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}")
        need(self.levels is None or self.levels >= 1, f"levels must be >= 1, got {self.levels}")
        need(self.steps_per_level >= 1, f"steps_per_level must be >= 1, got {self.steps_per_level}")
        need(self.step_lr > 0, f"step_lr must be > 0, got {self.step_lr}")
        need(self.corrector_steps >= 0, f"corrector_steps must be >= 0, got {self.corrector_steps}")
        need(self.snr > 0, f"snr must be > 0, got {self.snr}")
        need(self.skin is None or self.skin >= 0, f"skin must be >= 0 Å, got {self.skin}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(
            self.cell_volume in CELL_VOLUMES,
            f"cell_volume must be one of {CELL_VOLUMES}, got {self.cell_volume!r}",
        )
        need(self.latent in LATENTS, f"latent must be one of {LATENTS}, got {self.latent!r}")
        need(
            self.latent_scale is None or self.latent_scale >= 0,
            f"latent_scale must be >= 0 or None, got {self.latent_scale}",
        )

    @classmethod
    def reference(cls, **changes: Any) -> SamplerConfig:
        """The reference's setting: annealed Langevin, 100 steps on each of the 50 levels, latents from
        N(0, I), the lattice head's cells as predicted."""
        return cls(
            method="langevin", steps_per_level=100, step_lr=1e-4, final_denoise=False, cell_volume="model",
            latent="standard",
        ).replace(**changes)  # fmt: skip

    def replace(self, **changes: Any) -> SamplerConfig:
        return dataclasses.replace(self, **changes)

    def num_levels(self, available: int) -> int:
        return available if self.levels is None else self.levels

    def decoder_calls(self, available_levels: int = 50) -> int:
        """Decoder calls per structure with a model of ``available_levels`` noise levels."""
        k = self.num_levels(available_levels)
        final = int(self.final_denoise)
        if self.method == "langevin":
            return k * self.steps_per_level + final
        if self.method == "pc":
            return k * self.corrector_steps + (k - 1) + final
        return (k - 1) + final

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in [sampler]; known keys: {sorted(known)}")
        return cls(**data)


DEFAULT_SAMPLER = SamplerConfig()  # what every tool uses unless told otherwise
