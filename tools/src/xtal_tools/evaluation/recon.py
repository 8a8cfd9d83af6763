"""Reconstruction benchmark (the paper's Table II): match rate and N-RMSD on a store's test split.

A thin layer over :func:`xtal_tools.evaluation.split_eval.evaluate_recon`: each test crystal is encoded, a
latent is drawn from the posterior and decoded with the crystal's own atoms and pressure, and the
prediction is matched against the crystal with ``get_rms_dist(pred, gt)`` (CDVAE's ``RecEval``).

* **match rate**: matched crystals over all crystals (an invalid predicted cell is unmatched).
* **N-RMSD**: mean over matched crystals of pymatgen's normalised RMS displacement, i.e. the RMS
  of the atomic displacements divided by ``(V / N) ** (1/3)`` (the free length per atom of the
  volume-averaged cell), as ``StructureMatcher.get_rms_dist`` reports it. Dimensionless.

This module adds the speed numbers: reconstructions per second of the model alone and of the whole
benchmark (model + matching), with the wall time of each.
"""

from __future__ import annotations

import time
from pathlib import Path

from xtal_tools.evaluation.outputs import finite

__all__ = ["reconstruct_split", "run_recon"]


def run_recon(model, config, out_dir: Path, *, progress: bool | None = None) -> tuple[dict, list[dict], int]:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.ReconConfig` (its store split part):
    ``(results for summary.json, rows, number of crystals)``; ``progress``: bars over reconstruction and
    matching (None: when stderr is a terminal)."""
    from xtal_data.torch_dataset import CrystalDataset

    from xtal_tools.evaluation.split_eval import EvalSettings
    from xtal_tools.evaluation.targets import part_indices

    indices = part_indices(config.data, config.split, config.part)[: config.limit]
    if len(indices) == 0:
        raise ValueError(f"{config.data}: split {config.split!r} part {config.part!r} is empty")
    dataset = CrystalDataset(config.data, indices=indices, properties=model.config.condition_names)
    settings = EvalSettings(
        seed=config.seed, sampler=config.sampler, presets=config.presets, jobs=config.jobs
    )
    results, rows = reconstruct_split(
        model, dataset, settings, out_dir, use_mean=config.use_mean, progress=progress
    )
    return results, rows, len(dataset)


def reconstruct_split(
    model, dataset, settings, out_dir: Path, *, use_mean: bool = False, progress: bool | None = None
) -> tuple[dict, list[dict]]:
    """Run :func:`~xtal_tools.evaluation.split_eval.evaluate_recon`; return (results for summary.json, rows).

    ``settings`` is an :class:`xtal_tools.evaluation.split_eval.EvalSettings` (presets, seed, sampler steps).
    Writes ``gt.extxyz`` and ``pred.extxyz`` into ``out_dir`` (structures by id).
    """
    from xtal_tools.evaluation.split_eval import evaluate_recon

    t0 = time.perf_counter()
    result = evaluate_recon(model, dataset, settings, out_dir, use_mean=use_mean, progress=progress)
    wall = time.perf_counter() - t0
    n = result.summary["n"]
    table = {
        f"{m['preset']}/{m['gate']}": {
            "match_rate": m["match_rate"],
            "n_rmsd": finite(m["mean_rmsd"]),
            "n_matched": m["n_matched"],
            "n": m["n"],
        }
        for m in result.summary["metrics"]
    }
    results = {
        "n": n,
        "n_invalid_cell": result.summary["n_invalid_cell"],
        "rmsd_normalisation": "get_rms_dist: RMS displacement / (V/N)^(1/3), mean over matched pairs",
        "metrics": table,
        "seconds": {"model": result.model_seconds, "match": wall - result.model_seconds, "total": wall},
        "reconstructions_per_s_model": n / result.model_seconds if result.model_seconds > 0 else None,
    }
    return results, result.rows
