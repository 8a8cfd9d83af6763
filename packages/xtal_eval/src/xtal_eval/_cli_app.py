"""The typer application behind ``xtal-eval``: match, recon, csp, gen, rmsd.

Every command prints a short summary, writes a JSON summary (``--json``) and a per-item CSV (``--csv``),
and optionally PNG plots (``--plot``, needs the ``plot`` extra). Bad input exits with status 1 and a
message naming the item; output files are only written once everything has been computed, their folders
are checked for writability before anything is computed, and if writing still fails the summary is
printed to stdout (exit status 1) so that no computed metric is lost. Errors exit through
:func:`xtal_eval.cli_support.fail` (``error: <message>`` on stderr, status 1). Warnings raised while a command
runs are reported once each, with their count, at its end (never filtered process-wide).
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from xtal_eval.cli_support import EXPECTED_ERRORS, fail
from xtal_eval.io import StructureSet, load_structures, pair_sets
from xtal_eval.parallel import Parallel
from xtal_eval.report import plot_histogram, plot_success_curves, to_jsonable, write_csv, write_json

app = typer.Typer(
    name="xtal-eval",
    help="Torch-free structure matching and generation metrics (presets: cdvae, paper, strict).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Preset = Annotated[str, typer.Option("--preset", "-p", help="Comma-separated presets: cdvae, paper, strict.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes (1 = serial).")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the JSON summary here.")]
CsvOut = Annotated[Path | None, typer.Option("--csv", help="Write per-item results here.")]
PlotOut = Annotated[Path | None, typer.Option("--plot", help="Write a PNG plot here (needs matplotlib).")]
Pairing = Annotated[str, typer.Option("--pair-by", help="auto (id when both carry ids), order or id.")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")]


def _version(value: bool) -> None:
    if value:
        from xtal_eval import __version__

        typer.echo(f"xtal-eval {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Torch-free structure matching and generation metrics (presets: cdvae, paper, strict)."""


def _warnings_once(fn):
    """Run a command recording its warnings; report each distinct one once, with its count, on stderr.
    (CIF parsing warns per file about rounded coordinates: thousands of lines on a large set.)"""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return fn(*args, **kwargs)
            finally:
                counts = Counter(
                    f"{w.category.__name__}: {(str(w.message).splitlines() or [''])[0][:200]}" for w in caught
                )
                for text, n in counts.items():
                    typer.echo(f"warning ({n}x): {text}", err=True)

    return wrapper


def _check_outputs(*paths: Path | None) -> None:
    """Refuse, before any work, output paths that cannot be written (a folder, or no write access)."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            fail(f"cannot write {path}: it is a folder; give a file name")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            fail(f"cannot write {path}: {folder} is not a folder")
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            fail(f"cannot write {path}: {folder} is not writable ({exc.strerror or exc})")


def _load(path: Path) -> StructureSet:
    return load_structures(path)


def _emit(summary: dict, json_out: Path | None, rows: list[dict] | None, csv_out: Path | None) -> None:
    try:
        if csv_out is not None and rows:
            write_csv(csv_out, rows)
        if json_out is not None:
            write_json(json_out, summary)
    except OSError as exc:  # the metrics are computed: print them rather than lose them
        typer.echo(json.dumps(to_jsonable(summary), indent=2))
        where = exc.filename or json_out or csv_out
        reason = exc.strerror or exc
        fail(f"cannot write {where} ({reason}); the summary is printed above")
    for key, value in summary.items():
        if not isinstance(value, (dict, list)):
            typer.echo(f"{key}: {value}")


@app.command()
@_warnings_once
def match(
    first: Annotated[Path, typer.Argument(help="Structures (struct1 of pymatgen's matcher).")],
    second: Annotated[Path, typer.Argument(help="Structures (struct2).")],
    preset: Preset = "cdvae,paper,strict",
    criterion: Annotated[str, typer.Option(help="rms (get_rms_dist not None) or fit.")] = "rms",
    pair_by: Pairing = "auto",
    jobs: Jobs = 1,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    progress: Progress = False,
) -> None:
    """Match item i of FIRST against item i of SECOND under each preset."""
    _check_outputs(json_out, csv_out)
    from xtal_eval.pairs import match_pairs

    try:
        a, b, labels, mode = pair_sets(_load(first), _load(second), by=pair_by)
        table = match_pairs(
            a, b, presets=preset, criterion=criterion, parallel=Parallel.from_jobs(jobs, progress=progress)
        )
    except EXPECTED_ERRORS as exc:
        fail(exc)
    summary: dict = {"command": "match", "n": len(a), "pairing": mode, "criterion": criterion, "presets": {}}
    rows = [{"id": label} for label in labels]
    for p in table.presets:
        matched, rms = table.matched(p), table.rms(p)
        summary["presets"][p.name] = {
            "match_rate": float(matched.mean()),
            "mean_rmsd": float(rms[matched].mean()) if matched.any() else None,
            "n_errors": len(table.errors(p)),
            "prefiltered": table.skipped(p),
        }
        for row, m, r in zip(rows, matched, rms, strict=True):
            row[f"{p.name}_matched"], row[f"{p.name}_rms"] = bool(m), r
    _emit(summary, json_out, rows, csv_out)
    for name, s in summary["presets"].items():
        typer.echo(f"{name}: match_rate {s['match_rate']:.4f}, mean_rmsd {s['mean_rmsd']}")


@app.command()
@_warnings_once
def recon(
    pred: Annotated[Path, typer.Argument(help="Predicted (reconstructed) structures.")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth structures.")],
    preset: Preset = "cdvae",
    gates: Annotated[
        bool, typer.Option("--gates/--no-gates", help="Also report SMACT validity gates.")
    ] = True,
    spacegroup: Annotated[bool, typer.Option(help="Space-group agreement of matched pairs.")] = False,
    pair_by: Pairing = "auto",
    jobs: Jobs = 1,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    plot: PlotOut = None,
    progress: Progress = False,
) -> None:
    """Reconstruction match rate (a fraction) and mean normalised RMSD, pairing PRED and GT."""
    _check_outputs(json_out, csv_out, plot)
    from xtal_eval.recon import reconstruction

    try:
        a, b, labels, mode = pair_sets(_load(pred), _load(gt), by=pair_by)
        report = reconstruction(
            a,
            b,
            presets=preset,
            gates=gates,
            spacegroup=spacegroup,
            parallel=Parallel.from_jobs(jobs, progress=progress),
        )
        if plot is not None:
            plot_histogram(
                plot,
                {p.name: report.table.rms(p) for p in report.table.presets},
                xlabel="normalised RMSD",
                title="recon",
            )
    except EXPECTED_ERRORS as exc:
        fail(exc)
    head = report.metrics[0]
    summary = {
        "command": "recon",
        "n": len(a),
        "pairing": mode,
        "headline": f"preset {head.preset}, gate {head.gate}",
        "match_rate": head.match_rate,
        "mean_rmsd": head.mean_rmsd,
        "metrics": [m.__dict__ for m in report.metrics],
        "n_errors": {p.name: len(report.table.errors(p)) for p in report.table.presets},
    }
    rows = []
    for i, label in enumerate(labels):
        row: dict = {"id": label}
        if report.pred_valid is not None:
            row["pred_valid"], row["gt_valid"] = bool(report.pred_valid[i]), bool(report.gt_valid[i])
        for p in report.table.presets:
            row[f"{p.name}_matched"] = bool(report.table.matched(p)[i])
            row[f"{p.name}_rms"] = report.table.rms(p)[i]
        rows.append(row)
    _emit(summary, json_out, rows, csv_out)
    for m in report.metrics:
        typer.echo(f"{m.preset:>7} gate={m.gate:<12} match_rate {m.match_rate:.4f}  mean_rmsd {m.mean_rmsd}")


def _load_samples(path: Path, target_ids: list[str], group_column: str) -> list[list]:
    """Samples per target: a folder with one sub-folder per target id, or a table with a target-id column."""
    if path.is_dir():
        out = []
        for tid in target_ids:
            sub = path / tid
            if not sub.is_dir():
                raise ValueError(f"{path}: no sample folder for target {tid!r}")
            out.append(list(load_structures(sub).structures))
        return out
    samples = load_structures(path, id_column=None)
    from xtal_eval.io import _read_table_rows

    rows = _read_table_rows(path)
    if group_column not in rows[0]:
        raise ValueError(f"{path}: no {group_column!r} column to group samples by target")
    groups: dict[str, list] = {tid: [] for tid in target_ids}
    for i, (row, s) in enumerate(zip(rows, samples.structures, strict=True)):
        key = str(row[group_column])
        if key not in groups:
            raise ValueError(f"{path} row {i}: target id {key!r} is not among the targets")
        groups[key].append(s)
    return [groups[tid] for tid in target_ids]


@app.command("csp")
@_warnings_once
def csp_cmd(
    targets: Annotated[Path, typer.Argument(help="Target structures with ids (table or folder).")],
    samples: Annotated[Path, typer.Argument(help="Folder with one sub-folder per target id, or a table.")],
    preset: Preset = "cdvae,paper,strict",
    ks: Annotated[str, typer.Option(help="Comma-separated k for match@k.")] = "1,20",
    curve_criterion: Annotated[str, typer.Option(help="fit (statgen) or rms.")] = "fit",
    gate: Annotated[str, typer.Option(help="Validity gate for match@k: none, pred, pred_and_gt.")] = "none",
    group_column: Annotated[str, typer.Option(help="Target-id column of a samples table.")] = "target_id",
    size_cut: Annotated[int, typer.Option(help="Curve also for targets with fewer atoms than this.")] = 20,
    spacegroup: Annotated[
        bool, typer.Option(help="Space-group agreement of each target's best match.")
    ] = False,
    jobs: Jobs = 1,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    plot: PlotOut = None,
    progress: Progress = False,
) -> None:
    """CSP match rate at k samples with RMSE, and the success-rate curve (early exit per target)."""
    _check_outputs(json_out, csv_out, plot)
    from xtal_eval.csp import csp

    try:
        tset = _load(targets)
        labels = tset.labels()
        groups = _load_samples(samples, labels, group_column)
        k_list = [int(k) for k in ks.split(",")]
        report = csp(
            list(tset.structures),
            groups,
            presets=preset,
            ks=k_list,
            curve_criterion=curve_criterion,
            gate=gate,
            size_cut=size_cut,
            spacegroup=spacegroup,
            parallel=Parallel.from_jobs(jobs, progress=progress),
        )
        if plot is not None:
            curves = {
                f"{r.preset} {g}": c for r in report.results for g, c in report.curves(r.preset).items()
            }
            plot_success_curves(plot, curves, title="CSP success rate")
    except EXPECTED_ERRORS as exc:
        fail(exc)
    summary: dict = {
        "command": "csp",
        "n_targets": len(labels),
        "gate": gate,
        "curve_criterion": curve_criterion,
    }
    summary["presets"] = {
        r.preset: {
            **{f"match_rate@{k}": r.match_rate(k) for k in report.results[0].ks},
            **{f"rmse@{k}": r.rmse(k) for k in report.results[0].ks},
            **({f"spacegroup_agreement@{k}": r.spacegroup_agreement(k) for k in r.ks} if spacegroup else {}),
            "success_curve": report.curves(r.preset),
            "n_errors": r.n_errors,
        }
        for r in report.results
    }
    rows = []
    for i, label in enumerate(labels):
        row: dict = {"id": label, "n_atoms": int(report.n_atoms[i]), "n_samples": int(report.n_samples[i])}
        for r in report.results:
            for j, k in enumerate(r.ks):
                row[f"{r.preset}_rms@{k}"] = r.best_rms[i, j]
            row[f"{r.preset}_first_match"] = int(r.first_match[i])
        rows.append(row)
    _emit(summary, json_out, rows, csv_out)
    for name, s in summary["presets"].items():
        typer.echo(
            f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in s.items() if k.startswith("match_rate"))
        )


@app.command()
@_warnings_once
def gen(
    generated: Annotated[Path, typer.Argument(help="Generated structures.")],
    reference: Annotated[Path, typer.Argument(help="Reference (test) structures for distribution metrics.")],
    train: Annotated[Path | None, typer.Option(help="Training structures for novelty.")] = None,
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Matcher preset for uniqueness/novelty.")
    ] = "paper",
    valid_only: Annotated[bool, typer.Option(help="Distribution metrics over valid structures only.")] = True,
    composition: Annotated[bool, typer.Option(help="SMACT compositional validity (smact extra).")] = True,
    cov: Annotated[
        str | None, typer.Option(help="COV-R/P cutoffs: mp20, carbon, perovskite (matminer).")
    ] = None,
    jobs: Jobs = 1,
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    progress: Progress = False,
) -> None:
    """Generation metrics: validity, Wasserstein distances, uniqueness, novelty, optional coverage."""
    _check_outputs(json_out, csv_out)
    from xtal_eval import generation as g
    from xtal_eval.validity import validity

    parallel = Parallel.from_jobs(jobs, progress=progress)
    try:
        gset, rset = _load(generated), _load(reference)
        gens, refs = list(gset.structures), list(rset.structures)
        valid = validity(gens, composition=composition)
        used = [s for s, v in zip(gens, valid.valid, strict=True) if v] if valid_only else gens
        if not used:
            raise ValueError(f"{generated}: no valid generated structure to compare distributions with")
        summary: dict = {
            "command": "gen",
            "n_generated": len(gens),
            "n_reference": len(refs),
            **valid.summary(),
        }
        summary["n_used_for_distributions"] = len(used)
        summary["wdist_density"] = g.density_wasserstein(used, refs)
        summary["wdist_num_elems"] = g.num_elements_wasserstein(used, refs)
        groups = g.unique_groups(gens, preset=preset, parallel=parallel)
        summary["uniqueness"] = len(groups) / len(gens)
        novel = None
        if train is not None:
            novel = g.novelty(gens, list(_load(train).structures), preset=preset, parallel=parallel)
            summary["novelty"] = float(novel.mean())
        if cov is not None:
            fps_g, fps_r = g.fingerprints(gens), g.fingerprints(refs)
            summary["coverage"] = g.coverage(*fps_g, *fps_r, cutoffs=cov).__dict__
    except EXPECTED_ERRORS as exc:
        fail(exc)
    group_of = {i: k for k, grp in enumerate(groups) for i in grp}
    rows = []
    for i, label in enumerate(gset.labels()):
        row: dict = {"id": label, "struct_valid": bool(valid.struct_valid[i])}
        if valid.comp_valid is not None:
            row["comp_valid"] = bool(valid.comp_valid[i])
        row["group"] = group_of[i]
        if novel is not None:
            row["novel"] = bool(novel[i])
        rows.append(row)
    _emit(summary, json_out, rows, csv_out)


@app.command()
@_warnings_once
def rmsd(
    unrelaxed: Annotated[Path, typer.Argument(help="Structures before relaxation.")],
    relaxed: Annotated[Path, typer.Argument(help="The same structures after relaxation (same atom order).")],
    pair_by: Pairing = "auto",
    json_out: JsonOut = None,
    csv_out: CsvOut = None,
    plot: PlotOut = None,
) -> None:
    """Relaxation RMSD in Å (minimum image, unrelaxed lattice, not normalised)."""
    _check_outputs(json_out, csv_out, plot)
    from xtal_eval.rmsd import relaxation_rmsds

    try:
        a, b, labels, mode = pair_sets(_load(unrelaxed), _load(relaxed), by=pair_by)
        result = relaxation_rmsds(a, b, ids=labels)
        if plot is not None:
            plot_histogram(plot, {"rmsd": result.rmsd}, xlabel="RMSD (Å)", title="relaxation RMSD")
    except EXPECTED_ERRORS as exc:
        fail(exc)
    summary = {
        "command": "rmsd",
        "n": len(a),
        "pairing": mode,
        "mean_rmsd": result.mean,
        "median_rmsd": result.median,
    }
    rows = [{"id": label, "rmsd": v} for label, v in zip(labels, result.rmsd, strict=True)]
    _emit(summary, json_out, rows, csv_out)


def main() -> None:  # pragma: no cover - for ``python -m xtal_eval``
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
