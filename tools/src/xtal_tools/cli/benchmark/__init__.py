"""``tools/benchmark``: the paper's evaluations as reproducible benchmarks, small on a CPU or full on GPUs.

    tools/benchmark recon       -k CKPT --data STORE --limit 50 -o OUT            # Table II
    tools/benchmark success     -k CKPT --data STORE --limit 20 --num 20 -o OUT   # Fig. 3
    tools/benchmark success     -k CKPT --targets targets.csv --num 800 --calculator chgnet -o OUT
    tools/benchmark known-phase -k CKPT --targets targets.csv --runs 5 --budget 1000 -o OUT  # Table IV
    tools/benchmark localopt    -k CKPT --data STORE --limit 20 -o OUT            # Table III, Fig. 2
    tools/benchmark pressure-response --data data/pressure/chgnet_mp20_small_6p.zarr -o OUT
    tools/benchmark structure-map --formulas Si4O8 --pressures 0,10,25,50 -o OUT   # Fig. 4

Targets are a store split part (``--data``, ``--split``, ``--part``, ``--limit``) or a CSV with columns
``cif`` (path, relative to the CSV) and ``pressure`` (GPa), optionally ``id``. Settings can also come
from ``--config FILE.toml`` (the benchmark's table, ``[recon]``, ``[success]``, ``[known_phase]``,
``[localopt]``, ``[pressure_response]`` or ``[structure_map]``, plus ``[sampler]`` and ``[relax]``;
:mod:`xtal_tools.evaluation.configs`). Each writes
``summary.json`` (results, wall time, structures per second, settings, versions, machine), ``rows.csv``
(one row per target), PNG plots where there is a curve, and ``run.toml``.
"""

from __future__ import annotations

from xtal_tools.cli._common import run_app
from xtal_tools.cli.benchmark import paper, pressure  # noqa: F401  (they register their subcommands)
from xtal_tools.cli.benchmark._shared import app

__all__ = ["app", "main"]


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
