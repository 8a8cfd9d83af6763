"""A 2-D map of generated structures coloured by the requested pressure (the paper's Fig. 4).

For each composition and requested pressure the model generates ``num_per_target`` structures; beside
each one a PyXtal random structure with symmetry is made with the same composition and cell volume (the
paper used CALYPSO). Every structure becomes one descriptor vector and all are embedded together in two
dimensions; generated points are coloured by pressure, random ones grey, optional landmarks (e.g. the
known silica phases) drawn as labelled stars::

    settings = StructureMapSettings(pressures=(0.0, 10.0, 25.0, 50.0), num_per_target=25)
    result = run_structure_map(ModelSampler(model), ["Si4O8"], settings, landmarks=known_phase_targets(
        ["SiO2-quartz", "SiO2-stishovite"]))
    result.write("out")     # structure_map.png, structure_map.csv, summary.json

Descriptor (``descriptor``): ``"soap"`` (default; the paper's SOAP from DScribe, averaged over atoms,
``r_cut, n_max, l_max, sigma = 6 Å, 5, 4, 1 Å``; optional dependency ``dscribe``) or ``"rdf"`` (no extra
dependency: a species-blind radial distribution of neighbour distances up to ``r_cut``, Gaussian-smeared,
per atom). Embedding (``embedding``): ``"umap"`` (``umap-learn``; optional) or ``"tsne"`` (scikit-learn's
t-SNE, perplexity 10 as in the paper's SHEAP map). Descriptors are standardised per column before the
embedding. Both embeddings are seeded with ``seed``, so the same inputs give the same coordinates.

Two numbers summarise the map in descriptor space (not in the embedding, whose distances are not
faithful): ``spread`` (median pairwise descriptor distance within a composition, per source; the paper
reads its map as "generated structures closely grouped, random ones scattered") and
``pressure_neighbour_agreement`` (fraction of the ``k`` nearest generated neighbours of a generated
structure, same composition, that were asked for the same pressure, against the fraction expected by
chance: above chance means the structures carry the pressure they were asked for).

Seeds: group ``(i, k)`` (composition ``i``, pressure ``k``) is one sampler row with
``derived_seed(seed, 0, i, k)``; random twin ``j`` has ``derived_seed(seed, 1, i, k, j)``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xtal_tools.evaluation.outputs import finite
from xtal_tools.evaluation.samplers import derived_seed

__all__ = [
    "StructureMapResult",
    "StructureMapSettings",
    "describe",
    "embed",
    "map_stats",
    "run_structure_map",
]

_HINT = "pip install 'xtal-tools[structure-map]'  (or: pip install {pkg})"


@dataclass(frozen=True)
class StructureMapSettings:
    """``pressures`` (GPa) requested per composition; ``num_per_target`` generated structures (and as
    many PyXtal twins) per composition and pressure; descriptor and embedding choices and their
    parameters (``r_cut``, ``sigma`` in Å); ``neighbours``: ``k`` of the pressure-agreement number."""

    pressures: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0)
    num_per_target: int = 25
    seed: int = 0
    descriptor: str = "soap"
    embedding: str = "umap"
    r_cut: float = 6.0
    n_max: int = 5
    l_max: int = 4
    sigma: float = 1.0
    umap_neighbours: int = 10
    umap_min_dist: float = 0.1
    perplexity: float = 10.0
    neighbours: int = 5
    min_distance_scale: float = 0.5
    random_twins: bool = True

    def __post_init__(self) -> None:
        if not self.pressures:
            raise ValueError("no pressures given")
        if any(not (math.isfinite(p) and p >= 0) for p in self.pressures):
            raise ValueError(f"pressures must be finite and >= 0 GPa, got {self.pressures}")
        if self.num_per_target < 1:
            raise ValueError(f"num_per_target must be >= 1, got {self.num_per_target}")
        if self.descriptor not in ("soap", "rdf"):
            raise ValueError(f"unknown descriptor {self.descriptor!r}: choose soap or rdf")
        if self.embedding not in ("umap", "tsne"):
            raise ValueError(f"unknown embedding {self.embedding!r}: choose umap or tsne")


# ------------------------------------------------------------------ descriptors and embedding
def _soap(structures: Sequence, species: Sequence[str], s: StructureMapSettings) -> np.ndarray:
    try:
        from dscribe.descriptors import SOAP
    except ImportError:
        raise ImportError(f"the SOAP descriptor needs DScribe: {_HINT.format(pkg='dscribe')}") from None
    from pymatgen.io.ase import AseAtomsAdaptor

    soap = SOAP(
        species=sorted(set(species)),
        periodic=True,
        r_cut=s.r_cut,
        n_max=s.n_max,
        l_max=s.l_max,
        sigma=s.sigma,
        average="inner",
    )
    return np.stack([soap.create(AseAtomsAdaptor.get_atoms(x)) for x in structures])  # (C, D)


def _rdf(structures: Sequence, s: StructureMapSettings, bins: int = 60) -> np.ndarray:
    centres = np.linspace(0.5, s.r_cut, bins)
    width = max(0.5 * s.sigma, 0.1)
    out = np.zeros((len(structures), bins))
    for c, x in enumerate(structures):
        _, _, _, d = x.get_neighbor_list(s.r_cut)
        if len(d):
            out[c] = np.exp(-0.5 * ((d[:, None] - centres[None, :]) / width) ** 2).sum(0) / len(x)
    return out  # (C, bins)


def describe(structures: Sequence, settings: StructureMapSettings) -> np.ndarray:
    """(C, D) descriptor of each pymatgen structure (``settings.descriptor``; see the module docstring).

    Raises:
        ImportError: ``soap`` without DScribe installed (with the install line).
    """
    if not structures:
        raise ValueError("no structures to describe")
    if settings.descriptor == "rdf":
        return _rdf(structures, settings)
    species = [el.symbol for x in structures for el in x.composition.elements]
    return _soap(structures, species, settings)


def embed(x: np.ndarray, settings: StructureMapSettings) -> np.ndarray:
    """(C, 2) seeded embedding of the standardised rows of ``x`` (UMAP or t-SNE).

    Raises:
        ImportError: ``umap`` without umap-learn, or either without scikit-learn (with the install line).
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise ValueError(f"need at least 3 structures to embed, got {n}")
    std = x.std(0)
    z = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    if settings.embedding == "umap":
        try:
            import umap
        except ImportError:
            raise ImportError(
                f"the UMAP embedding needs umap-learn: {_HINT.format(pkg='umap-learn')}"
            ) from None
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(settings.umap_neighbours, n - 1),
            min_dist=settings.umap_min_dist,
            random_state=settings.seed,
            n_jobs=1,
        )
        return np.asarray(reducer.fit_transform(z), dtype=np.float64)
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ImportError(
            f"the t-SNE embedding needs scikit-learn: {_HINT.format(pkg='scikit-learn')}"
        ) from None
    perplexity = min(settings.perplexity, max((n - 1) / 3.0, 1.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=settings.seed)
    return np.asarray(tsne.fit_transform(z), dtype=np.float64)


# ------------------------------------------------------------------ run
@dataclass(frozen=True)
class StructureMapResult:
    """``rows``: one dict per structure (id, source ``generated`` / ``pyxtal`` / ``landmark``, formula,
    requested pressure in GPa, sample, seed, volume per atom in Å^3, status, reason, ``x``, ``y``:
    embedding coordinates, NaN when the structure was not made); ``stats``: the descriptor-space numbers
    of the module docstring; ``seconds``: wall time per part."""

    rows: list[dict]
    stats: dict
    settings: StructureMapSettings
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready counts per source, the statistics, the settings and the seconds."""
        counts: dict[str, dict[str, int]] = {}
        for r in self.rows:
            c = counts.setdefault(r["source"], {"n": 0, "n_made": 0})
            c["n"] += 1
            c["n_made"] += r["status"] == "made"
        return {
            "settings": {**asdict(self.settings), "pressures": list(self.settings.pressures)},
            "counts": counts,
            "stats": self.stats,
            "seconds": dict(self.seconds),
        }

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(self.rows[0]))
            w.writeheader()
            w.writerows(self.rows)
        return path

    def plot(self, path: str | Path) -> Path:
        """The map as a PNG: random structures grey, generated ones coloured by requested pressure,
        landmarks as labelled stars; one marker shape per composition."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from xtal_tools.evaluation.outputs import write_png

        made = [r for r in self.rows if r["status"] == "made"]
        formulas = list(dict.fromkeys(r["formula"] for r in made if r["source"] != "landmark"))
        markers = dict(zip(formulas, "osD^vP<>Xh" * 3, strict=False))
        fig, ax = plt.subplots(figsize=(7.5, 6), constrained_layout=True)
        ps = [float(p) for p in self.settings.pressures]
        sc = None
        for f in formulas:
            rnd = [r for r in made if r["source"] == "pyxtal" and r["formula"] == f]
            gen = [r for r in made if r["source"] == "generated" and r["formula"] == f]
            ax.scatter(
                [r["x"] for r in rnd],
                [r["y"] for r in rnd],
                c="0.7",
                s=18,
                marker=markers[f],
                label=f"{f} random (PyXtal)",
            )
            sc = ax.scatter(
                [r["x"] for r in gen],
                [r["y"] for r in gen],
                c=[r["pressure_GPa"] for r in gen],
                cmap="viridis",
                vmin=min(ps),
                vmax=max(ps) if max(ps) > min(ps) else min(ps) + 1,
                s=22,
                marker=markers[f],
                edgecolors="k",
                linewidths=0.3,
                label=f"{f} generated",
            )
        for n, r in enumerate(r for r in made if r["source"] == "landmark"):
            ax.scatter([r["x"]], [r["y"]], marker="*", s=260, c="red", edgecolors="k", zorder=5)
            ax.annotate(
                f"{r['id']} ({r['pressure_GPa']:g} GPa)",
                (r["x"], r["y"]),
                fontsize=8,
                xytext=(6, 6 - 12 * n),
                textcoords="offset points",
            )
        if sc is not None:
            fig.colorbar(sc, ax=ax, label="requested pressure (GPa)")
        s = self.settings
        ax.set(
            xlabel=f"{s.embedding} 1",
            ylabel=f"{s.embedding} 2",
            title=f"{s.descriptor.upper()} + {s.embedding}: generated (colour) vs random (grey)",
        )
        ax.legend(fontsize=7, loc="best")
        path = Path(path)
        write_png(fig, path)
        plt.close(fig)
        return path

    def write(self, out_dir: str | Path, *, meta: dict | None = None) -> dict:
        """Write ``structure_map.png``, ``structure_map.csv`` and ``summary.json`` (with ``meta``)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.write_csv(out / "structure_map.csv")
        self.plot(out / "structure_map.png")
        summary = {**self.summary(), **(meta or {})}
        (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
        return summary


def _pairwise(x: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))  # (C, C)


def map_stats(rows: Sequence[dict], x: np.ndarray, k: int) -> dict:
    """``spread`` and ``pressure_neighbour_agreement`` (module docstring) for the made ``rows`` whose
    standardised descriptors are the rows of ``x`` (same order)."""
    std = x.std(0)
    z = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    spread: dict[str, dict[str, float | None]] = {}
    agree, chance = [], []
    for f in dict.fromkeys(r["formula"] for r in rows if r["source"] != "landmark"):
        for source in ("generated", "pyxtal"):
            idx = [i for i, r in enumerate(rows) if r["formula"] == f and r["source"] == source]
            if len(idx) >= 2:
                d = _pairwise(z[idx])
                spread.setdefault(source, {})[f] = finite(float(np.median(d[np.triu_indices(len(idx), 1)])))
        gen = [i for i, r in enumerate(rows) if r["formula"] == f and r["source"] == "generated"]
        if len(gen) > k:
            d = _pairwise(z[gen])
            np.fill_diagonal(d, np.inf)
            p = np.array([rows[i]["pressure_GPa"] for i in gen])
            nn = np.argsort(d, axis=1, kind="stable")[:, :k]  # (G, k)
            agree.append(float((p[nn] == p[:, None]).mean()))
            same = np.array([(p == q).sum() - 1 for q in p])
            chance.append(float((same / (len(p) - 1)).mean()))
    return {
        "spread": spread,
        "spread_mean": {
            s: finite(float(np.mean([v for v in d.values() if v is not None]))) for s, d in spread.items()
        },
        "pressure_neighbour_agreement": finite(float(np.mean(agree))) if agree else None,
        "pressure_neighbour_chance": finite(float(np.mean(chance))) if chance else None,
        "neighbours": k,
    }


def run_structure_map(
    sampler,
    formulas: Sequence[str],
    settings: StructureMapSettings,
    *,
    landmarks: Sequence[Any] = (),
    volumes: dict[tuple[str, float], float] | None = None,
) -> StructureMapResult:
    """Generate, make PyXtal twins, describe and embed (module docstring).

    ``sampler(formulas, pressures, num=k, seed=s)`` returns ``k`` pymatgen structures (None: invalid
    cell) per row. ``landmarks``: :class:`xtal_tools.evaluation.targets.BenchTarget` s embedded with the rest
    (drawn as stars). ``volumes[(formula, pressure)]`` (Å^3): the twin's volume when the model's cell is
    invalid (else that twin is not made).

    Raises:
        ValueError: a bad formula before any work; fewer than 3 structures made.
        ImportError: a missing optional dependency (with the install line), before any sampling.
    """
    from xtal_eval.baselines import parse_cell_formula

    from xtal_tools.evaluation.localopt import random_twin

    for f in formulas:
        parse_cell_formula(f)
    check_dependencies(settings)
    t0 = time.perf_counter()
    rows: list[dict] = []
    structures: list[Any] = []
    for i, f in enumerate(formulas):
        n_atoms = sum(n for _, n in parse_cell_formula(f))
        for k, p in enumerate(settings.pressures):
            (group,) = sampler(
                [f], [p], num=settings.num_per_target, seed=derived_seed(settings.seed, 0, i, k)
            )
            for j, gen in enumerate(group):
                volume = gen.volume if gen is not None else (volumes or {}).get((f, float(p)))
                todo = [("generated", gen, "invalid cell from the model", settings.seed)]
                if settings.random_twins:
                    seed = derived_seed(settings.seed, 1, i, k, j)
                    twin, why = (
                        (None, "no volume")
                        if volume is None
                        else random_twin("pyxtal", f, volume, seed, settings.min_distance_scale)
                    )
                    todo.append(("pyxtal", twin, why, seed))
                for source, s, why, seed in todo:
                    rows.append(
                        {
                            "id": f"{source}/{f}/{p:g}/{j}",
                            "source": source,
                            "formula": f,
                            "pressure_GPa": float(p),
                            "sample": j,
                            "seed": seed,
                            "volume_per_atom_A3": s.volume / n_atoms if s is not None else math.nan,
                            "status": "made" if s is not None else "not_made",
                            "reason": "" if s is not None else why,
                        }
                    )
                    structures.append(s)
    for t in landmarks:
        rows.append(
            {
                "id": t.id,
                "source": "landmark",
                "formula": t.formula,
                "pressure_GPa": float(t.pressure),
                "sample": 0,
                "seed": 0,
                "volume_per_atom_A3": t.structure.volume / len(t.structure),
                "status": "made",
                "reason": "",
            }
        )
        structures.append(t.structure)
    seconds = {"make": time.perf_counter() - t0}
    made = [i for i, s in enumerate(structures) if s is not None]
    if len(made) < 3:
        raise ValueError(f"only {len(made)} structures were made; need at least 3 for a map")
    t1 = time.perf_counter()
    x = describe([structures[i] for i in made], settings)
    seconds["describe"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    xy = embed(x, settings)
    seconds["embed"] = time.perf_counter() - t1
    for r in rows:
        r.update(x=math.nan, y=math.nan)
    for i, (a, b) in zip(made, xy, strict=True):
        rows[i].update(x=float(a), y=float(b))
    stats = map_stats([rows[i] for i in made], x, settings.neighbours)
    stats["descriptor_dim"] = int(x.shape[1])
    return StructureMapResult(rows, stats, settings, seconds)


def check_dependencies(settings: StructureMapSettings) -> None:
    import importlib.util

    need = {"soap": ("dscribe", "dscribe")}.get(settings.descriptor)
    emb = {"umap": ("umap", "umap-learn"), "tsne": ("sklearn", "scikit-learn")}[settings.embedding]
    for mod, pkg in [x for x in (need, emb) if x]:
        if importlib.util.find_spec(mod) is None:
            raise ImportError(
                f"{settings.descriptor}/{settings.embedding} needs {pkg}: {_HINT.format(pkg=pkg)}"
            )


def run_structure_map_benchmark(bench, config, out_dir, *, tables: dict) -> dict:
    """The benchmark of a :class:`~xtal_tools.evaluation.configs.StructureMapConfig` on an opened
    :class:`~xtal_tools.evaluation.configs.Benchmark`: runs :func:`run_structure_map` and writes the PNG,
    the embedding coordinates and ``summary.json``; returns the summary."""
    import time

    from xtal_tools.evaluation.phase_library import known_phase_targets
    from xtal_tools.evaluation.samplers import ModelSampler
    from xtal_tools.records import installed_versions, machine_info, package_versions

    settings = StructureMapSettings(
        pressures=config.pressures,
        num_per_target=config.num,
        seed=config.seed,
        descriptor=config.descriptor,
        embedding=config.embedding,
    )
    ids = [p for p in config.landmarks.split(",") if p.strip()] if config.landmarks != "none" else []
    landmarks = known_phase_targets(ids) if ids else []
    sampler = ModelSampler(bench.model, sampler=config.sampler)
    result = run_structure_map(sampler, list(config.formulas), settings, landmarks=landmarks)
    meta = {
        "wall_s": time.perf_counter() - bench.t0,
        "settings": tables,
        "machine": machine_info(bench.device),
        "versions": {
            **package_versions(),
            **installed_versions(("pymatgen", "pyxtal", "dscribe", "umap-learn")),
        },
    }
    return result.write(out_dir, meta=meta)
