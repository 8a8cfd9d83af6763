"""The same xtal-eval metric serially, on a local process pool and on a Dask cluster, timed side by side.

Every backend returns identical numbers (xtal-eval's results never depend on how the work is spread);
only the wall time differs. Without ``--scheduler`` a local Dask cluster of ``--workers`` processes is
started; with it, the workers of an existing cluster are used, e.g. one started on several nodes with

    dask scheduler --port 8786                       # on one node
    dask worker tcp://HOST:8786 --nworkers 16 --nthreads 1   # on every node

    python examples/xtal_eval_dask.py [--n 200] [--workers 2] [--scheduler tcp://HOST:8786]

Needs ``pip install 'xtal-eval[dask]'`` and MP-20 validation structures (``../shared/data`` or
``$XTAL_SHARED_DATA``, or ``--data`` with any table that has a ``cif`` column). No torch.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from xtal_eval import Parallel, load_structures, reconstruction
from xtal_eval_recon import noisy  # noisy copies stand in for a model's reconstructions

warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
SHARED = Path(os.environ.get("XTAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main(argv: list[str] | None = None) -> dict[str, tuple[float, list[float]]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "mp_20" / "val.feather")
    ap.add_argument("--n", type=int, default=200, help="structures (pairs) to match")
    ap.add_argument("--workers", type=int, default=2, help="pool size and local Dask workers")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster  # the 'dask' extra

    gt = load_structures(args.data, limit=args.n).structures
    rng = np.random.default_rng(args.seed)
    preds = [noisy(s, rng, sigma=0.1) for s in gt]
    if args.scheduler is None:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
    else:
        cluster = None
    client = Client(cluster if cluster is not None else args.scheduler)
    backends = {
        "serial": Parallel(),
        f"process pool x{args.workers}": Parallel(backend="process", n_jobs=args.workers),
        f"dask ({len(client.scheduler_info()['workers'])} workers)": Parallel(backend="dask", client=client),
    }
    results = {}
    try:
        for name, parallel in backends.items():
            t0 = time.perf_counter()
            report = reconstruction(preds, gt, presets="cdvae,paper,strict", parallel=parallel)
            wall = time.perf_counter() - t0
            rates = [m.match_rate for m in report.metrics]
            results[name] = (wall, rates)
            print(f"{name:22s} {wall:7.2f} s  {3 * len(gt) / wall:7.1f} pair-presets/s  "
                  f"match rates {np.round(rates[:3], 4).tolist()} ...")  # fmt: skip
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    same = len({tuple(r) for _, r in results.values()}) == 1
    print("identical results on every backend:", same)
    return results


if __name__ == "__main__":
    main()
