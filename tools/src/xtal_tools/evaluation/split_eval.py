"""Model evaluations over a test split: reconstruction, CSP and generation, scored by xtal-eval.

Each function takes a loaded model and an xtal-data ``CrystalDataset`` (the test part of a split),
runs the model, writes what it generated next to the metrics (so that ``xtal-eval`` can re-score
it without torch), and returns a JSON-ready summary plus one row per target.

* :func:`evaluate_recon`: encode each test crystal, decode with its atoms and pressure; match rate and
  mean normalised RMSD per preset, with and without the reference's validity gates (Table II).
* :func:`evaluate_csp`: ``num`` samples per test formula and pressure; match@k with RMSE, and the
  success-rate curve against the number of samples (Fig. 3).
* :func:`evaluate_gen`: one sample per test formula and pressure; validity, Wasserstein distances of
  density and number of elements to the test set, uniqueness.

Sampling goes through :mod:`cond_vae.sampling` with ``settings.sampler`` (a :class:`cond_vae.SamplerConfig`):
:func:`sample_targets` asks for every target as one request row (row ``i`` is target ``i``) with one
seed, so its structures are exactly what ``tools/sample --rows`` writes for the targets' cell formulas
and pressures with the same seed and sampler; :func:`evaluate_recon` calls :func:`cond_vae.reconstruct`.

A decoded cell that is not a valid lattice (``cond_vae`` reports a reason) counts as a failed
prediction: unmatched and invalid. It is never replaced by anything.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cond_vae.sampling import SamplerConfig

from xtal_tools.config import DECISION_PRESET, REPORT_PRESETS

__all__ = [
    "EvalSettings",
    "EvalResult",
    "evaluate",
    "open_split",
    "prepare_evaluation",
    "cell_formula",
    "evaluate_recon",
    "evaluate_csp",
    "evaluate_gen",
    "sample_targets",
    "RECON_CHUNK",
]

RECON_CHUNK = 1024  # crystals encoded and reconstructed per cond_vae.reconstruct call


@dataclass(frozen=True)
class EvalSettings:
    """What ``tools/evaluate`` does: the ``[evaluate]`` table and ``[sampler]``.

    The model: ``checkpoint`` ("" for the shipped default) on ``device``. The targets: the first
    ``limit`` crystals of part ``part`` of split ``split`` of the store ``data``. ``seed``; matcher
    ``presets`` reported; ``jobs`` processes for matching; ``num`` samples per target (csp);
    ``use_mean`` decodes the posterior mean (recon); ``sampler``: a :class:`cond_vae.SamplerConfig`.
    """

    checkpoint: str = ""
    data: str = ""
    split: str = "random"
    part: str = "test"
    limit: int | None = None
    seed: int = 0
    device: str = "auto"
    presets: tuple[str, ...] = REPORT_PRESETS
    jobs: int = 1
    num: int = 20
    use_mean: bool = False
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        from xtal_eval import resolve_presets

        if not isinstance(self.sampler, SamplerConfig):
            raise TypeError(f"sampler must be a cond_vae.SamplerConfig, got {type(self.sampler).__name__}")
        resolve_presets(self.presets)  # unknown names fail here, before any sampling
        if self.num < 1 or self.jobs < 1:
            raise ValueError(f"num and jobs must be >= 1, got {self.num} and {self.jobs}")


def open_split(settings: EvalSettings, model):
    """The ``CrystalDataset`` of the settings' store split part (only the crystals used are read).

    Raises:
        ValueError: no store given, or an empty selection.  KeyError: no such split or part.
    """
    from xtal_data.torch_dataset import CrystalDataset

    from xtal_tools.evaluation.targets import part_indices

    if not settings.data:
        raise ValueError("--data STORE is required")
    indices = part_indices(settings.data, settings.split, settings.part)[: settings.limit]
    if len(indices) == 0:
        raise ValueError(f"{settings.data}: split {settings.split!r} part {settings.part!r} is empty")
    return CrystalDataset(settings.data, indices=indices, properties=model.config.condition_names)


def prepare_evaluation(settings: EvalSettings):
    """Open the model and the split part, before anything is written: ``(opened model, dataset,
    warnings)``, where the warnings note pressures outside the model's trained range.

    Raises:
        ValueError, KeyError, FileNotFoundError: a bad store, split, part or checkpoint (named).
    """
    from xtal_tools.checkpoints import condition_warnings, open_model

    opened = open_model(settings.checkpoint, device=settings.device)
    dataset = open_split(settings, opened.model)
    given = dataset.properties.get("pressure")
    pressures = [] if given is None else sorted(set(given.tolist()))
    return opened, dataset, condition_warnings(opened.model, pressures)


def evaluate(
    task: str, model, dataset, settings: EvalSettings, out_dir: Path, *, progress: bool | None = None
) -> EvalResult:
    """Run evaluation ``task`` (``recon``, ``csp`` or ``gen``) and write its structures into ``out_dir``.

    ``progress``: bars on stderr over sampling/reconstruction and matching (None: when stderr is a
    terminal; :mod:`xtal_tools.progress`)."""
    if task == "recon":
        use_mean = settings.use_mean
        return evaluate_recon(model, dataset, settings, out_dir, use_mean=use_mean, progress=progress)
    if task == "csp":
        return evaluate_csp(model, dataset, settings, out_dir, num=settings.num, progress=progress)
    if task == "gen":
        return evaluate_gen(model, dataset, settings, out_dir, progress=progress)
    raise ValueError(f"unknown evaluation {task!r}: choose recon, csp or gen")


@dataclass(frozen=True)
class EvalResult:
    """``summary`` (JSON-ready dict), ``rows`` (one dict per target) and the model's wall time in s."""

    summary: dict
    rows: list[dict]
    model_seconds: float


def cell_formula(atom_types: Sequence[int]) -> str:
    """Full-cell formula in order of first appearance, e.g. ``[14, 8, 8] -> "Si1O2"``."""
    from pymatgen.core import Element

    counts = Counter(int(z) for z in atom_types)
    return "".join(f"{Element.from_Z(z).symbol}{n}" for z, n in counts.items())


def _targets(dataset) -> list:
    return [dataset.crystal(i).to_pymatgen() for i in range(len(dataset))]


def _write_extxyz(structures, ids, path: Path) -> None:
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for s, label in zip(structures, ids, strict=True):
        if s is None:
            continue
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.info = {"id": str(label)}
        frames.append(atoms)
    tmp = path.with_name(f".{path.name}.tmp")
    write(str(tmp), frames, format="extxyz")
    tmp.replace(path)


def evaluate_recon(
    model,
    dataset,
    settings: EvalSettings,
    out_dir: Path,
    *,
    use_mean: bool = False,
    progress: bool | None = None,
) -> EvalResult:
    """Reconstruction of every crystal of ``dataset``; writes ``gt.extxyz`` and ``pred.extxyz`` (by id).

    The dataset is encoded in chunks of :data:`RECON_CHUNK` crystals; :func:`cond_vae.reconstruct`
    keys crystal ``i``'s random numbers by ``(seed, i)`` (its index in the dataset), so the result is
    ``reconstruct(model, whole_dataset, seed=settings.seed)`` whatever the chunking.
    """
    from cond_vae import reconstruct
    from xtal_eval import reconstruction

    from xtal_tools.progress import bar, parallel

    t0 = time.perf_counter()
    preds = []
    with bar(len(dataset), "reconstruct", progress) as shown:
        for start in range(0, len(dataset), RECON_CHUNK):
            idx = np.arange(start, min(start + RECON_CHUNK, len(dataset)))
            batch = dataset.batch(idx).to(dtype=next(model.parameters()).dtype)
            preds += reconstruct(
                model, batch, seed=settings.seed, sampler=settings.sampler, use_mean=use_mean,
                rows=idx.tolist(),
            )  # fmt: skip
            shown.update(len(idx))
    model_s = time.perf_counter() - t0
    gts = _targets(dataset)
    pred_structs = [None if c is None else c.to_pymatgen() for c in preds]
    _write_extxyz(gts, dataset.ids, out_dir / "gt.extxyz")
    _write_extxyz(pred_structs, dataset.ids, out_dir / "pred.extxyz")
    ok = [i for i, s in enumerate(pred_structs) if s is not None]
    n = len(gts)
    metrics, table = [], None
    if ok:
        report = reconstruction(
            [pred_structs[i] for i in ok],
            [gts[i] for i in ok],
            presets=settings.presets,
            parallel=parallel(settings.jobs, progress),
        )
        table = report.table
        for m in report.metrics:  # rates over every target: a failed cell is unmatched
            metrics.append({**m.__dict__, "n": n, "match_rate": m.n_matched / n})
    else:
        metrics = [
            {"preset": p, "gate": "none", "n": n, "n_matched": 0, "match_rate": 0.0, "mean_rmsd": None}
            for p in settings.presets
        ]
    head = metrics[0]
    summary = {
        "command": "recon",
        "n": n,
        "n_invalid_cell": n - len(ok),
        "headline": f"preset {head['preset']}, gate {head['gate']}",
        "match_rate": head["match_rate"],
        "mean_rmsd": head["mean_rmsd"],
        "metrics": metrics,
        "model_seconds": model_s,
    }
    rows = []
    position = {i: k for k, i in enumerate(ok)}
    for i, label in enumerate(dataset.ids):
        row = {"id": label, "n_atoms": len(gts[i]), "valid_cell": i in position}
        for p in table.presets if table is not None else ():
            k = position.get(i)
            row[f"{p.name}_matched"] = bool(table.matched(p)[k]) if k is not None else False
            row[f"{p.name}_rms"] = float(table.rms(p)[k]) if k is not None else float("nan")
        rows.append(row)
    return EvalResult(summary, rows, model_s)


def sample_rows(
    model, formulas, pressures, *, num: int, seed: int, sampler, properties=None, progress: bool | None = None
) -> list:
    """The engine's samples (:class:`cond_vae.SampledStructure`, row then index order) of ``num``
    structures for every (cell formula, pressure) row, in one call with one ``seed``; ``progress``: a
    bar over the structures (None: when stderr is a terminal)."""
    import torch
    from cond_vae.sampling import make_requests, sample_requests

    from xtal_tools.generation import BAR
    from xtal_tools.progress import bar

    requests = make_requests(model, list(formulas), list(pressures), properties=properties)
    with torch.inference_mode(), bar(num * len(requests), "sample", progress, bar_format=BAR) as shown:
        return sample_requests(
            model, requests, num_per_row=num, seed=seed, sampler=sampler, progress=shown.update
        )


def sample_targets(model, dataset, settings: EvalSettings, num: int, *, progress: bool | None = None):
    """``num`` samples for the cell formula and pressure of every crystal of ``dataset`` (row ``i`` is
    crystal ``i``, one seed: ``settings.seed``).

    Returns ``(groups, failed, seconds)``: per crystal a list of ``num`` pymatgen structures (None for a
    cell the sampler rejected), the rejections counted by reason, and the model's wall time in s.
    """
    formulas = [cell_formula(dataset.crystal(i).atom_types) for i in range(len(dataset))]
    properties = {k: v.tolist() for k, v in dataset.properties.items() if k != "pressure"}
    t0 = time.perf_counter()
    samples = sample_rows(
        model, formulas, dataset.properties["pressure"].tolist(), num=num, seed=settings.seed,
        sampler=settings.sampler, properties=properties, progress=progress,
    )  # fmt: skip
    model_s = time.perf_counter() - t0
    groups: list[list] = [[] for _ in formulas]
    for s in samples:
        groups[s.row].append(s.to_pymatgen() if s.valid else None)
    failed = Counter(s.reason.split(":")[0] for s in samples if not s.valid)
    return groups, dict(failed), model_s


def evaluate_csp(
    model,
    dataset,
    settings: EvalSettings,
    out_dir: Path,
    *,
    num: int = 20,
    ks: Sequence[int] = (1, 20),
    progress: bool | None = None,
) -> EvalResult:
    """``num`` samples per target; match@k (k <= num) with RMSE and the success curve per preset."""
    from xtal_eval import csp

    from xtal_tools.progress import parallel

    ks = tuple(k for k in ks if k <= num) or (num,)
    groups, failed, model_s = sample_targets(model, dataset, settings, num, progress=progress)
    targets = _targets(dataset)
    _write_extxyz(targets, dataset.ids, out_dir / "targets.extxyz")
    flat = [(s, f"{tid}/{j}") for tid, g in zip(dataset.ids, groups, strict=True) for j, s in enumerate(g)]
    _write_extxyz([s for s, _ in flat], [label for _, label in flat], out_dir / "samples.extxyz")
    report = csp(targets, groups, presets=settings.presets, ks=ks, parallel=parallel(settings.jobs, progress))
    summary: dict = {
        "command": "csp",
        "n_targets": len(targets),
        "num_samples": num,
        "invalid_cells": failed,
        "model_seconds": model_s,
    }
    summary["presets"] = {
        r.preset: {
            **{f"match_rate@{k}": r.match_rate(k) for k in r.ks},
            **{f"rmse@{k}": r.rmse(k) for k in r.ks},
            "success_curve": {g: c.tolist() for g, c in report.curves(r.preset).items()},
            "n_errors": r.n_errors,
        }
        for r in report.results
    }
    rows = []
    for i, label in enumerate(dataset.ids):
        row = {"id": label, "n_atoms": int(report.n_atoms[i])}
        for r in report.results:
            for j, k in enumerate(r.ks):
                row[f"{r.preset}_rms@{k}"] = float(r.best_rms[i, j])
            row[f"{r.preset}_first_match"] = int(r.first_match[i])
        rows.append(row)
    return EvalResult(summary, rows, model_s)


def evaluate_gen(
    model, dataset, settings: EvalSettings, out_dir: Path, *, progress: bool | None = None
) -> EvalResult:
    """One sample per target composition and pressure; validity and distribution metrics vs the targets."""
    from xtal_eval import density_wasserstein, num_elements_wasserstein, unique_groups, validity

    from xtal_tools.progress import parallel

    groups, failed, model_s = sample_targets(model, dataset, settings, 1, progress=progress)
    made = [g[0] for g in groups]
    targets = _targets(dataset)
    generated = [s for s in made if s is not None]
    _write_extxyz(made, dataset.ids, out_dir / "generated.extxyz")
    summary: dict = {
        "command": "gen",
        "n_requested": len(made),
        "n_generated": len(generated),
        "invalid_cells": failed,
        "model_seconds": model_s,
    }
    rows = [{"id": label, "valid_cell": s is not None} for label, s in zip(dataset.ids, made, strict=True)]
    if generated:
        report = validity(generated)
        # fractions over everything requested: an invalid cell is an invalid structure
        scale = len(generated) / len(made)
        summary.update({k: (None if v is None else v * scale) for k, v in report.summary().items()})
        used = [s for s, v in zip(generated, report.valid, strict=True) if v]
        if used:
            summary["wdist_density"] = density_wasserstein(used, targets)
            summary["wdist_num_elems"] = num_elements_wasserstein(used, targets)
        preset = DECISION_PRESET if DECISION_PRESET in settings.presets else settings.presets[0]
        groups = unique_groups(generated, preset=preset, parallel=parallel(settings.jobs, progress))
        summary["uniqueness"] = len(groups) / len(generated)
        summary["uniqueness_preset"] = preset
        it = iter(report.valid)
        for row in rows:
            row["valid"] = bool(next(it)) if row["valid_cell"] else False
    return EvalResult(summary, rows, model_s)
