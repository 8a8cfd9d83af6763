"""xtal-data benchmarks on MP-20 val (9,047 structures): ingestion rate, store size against the CSV/feather,
full-epoch read through the torch adapter against re-parsing CIF text, random-access read rate, and the
chunking/compression grid behind StoreConfig's defaults.

Usage:  python benchmarks/xtal_data/bench_store.py [--data ../shared/data] [--workers 2] [--out /tmp/xd-bench]
Prints markdown tables (copied into docs/benchmarks/xtal_data.md). Short by design: one run per figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_ingest(data: Path, out: Path, workers: int) -> Path:
    from xtal_data import ingest

    url = out / "mp20.zarr"
    shutil.rmtree(url, ignore_errors=True)
    report = ingest(str(data / "mp_20" / "val.feather"), str(url), workers=workers, progress=False)
    assert report.written == 9047 and not report.skipped, report.summary()
    print(f"| ingestion, workers={workers} | {report.written} structures in {report.seconds:.1f} s | "
          f"{report.written / report.seconds:.0f} structures/s |")  # fmt: skip
    return url


def bench_sizes(data: Path, store: Path) -> None:
    import pandas as pd

    feather = data / "mp_20" / "val.feather"
    df = pd.read_feather(feather)
    csv_path = store.parent / "mp20_val.csv"
    df.to_csv(csv_path)
    print(f"| store size | {du(store) / 2**20:.2f} MiB | feather {feather.stat().st_size / 2**20:.2f} MiB, "
          f"CSV {csv_path.stat().st_size / 2**20:.2f} MiB |")  # fmt: skip


def bench_epoch(data: Path, store: Path) -> None:
    import pandas as pd
    import torch
    from pymatgen.core import Structure
    from xtal_data.torch_dataset import CrystalDataset, crystal_loader
    from xtal_graph import Crystal, collate

    torch.set_num_threads(1)

    def adapter_epoch():
        ds = CrystalDataset(str(store))
        return sum(b.num_crystals for b in crystal_loader(ds, batch_size=128, shuffle=True, seed=0))

    def cif_epoch():
        df = pd.read_feather(data / "mp_20" / "val.feather")
        n = 0
        for start in range(0, len(df), 128):
            rows = df.iloc[start : start + 128]
            crystals = [
                Crystal.from_pymatgen(Structure.from_str(c, fmt="cif"), id=i, pressure=float(p))
                for c, i, p in zip(rows.cif, rows.material_id, rows.pressure, strict=True)
            ]
            n += collate(crystals).num_crystals
        return n

    n_a, t_a = timed(adapter_epoch)
    n_c, t_c = timed(cif_epoch)
    assert n_a == n_c == 9047
    print(f"| full epoch, batch 128, store + torch adapter (open, read, batches) | {t_a:.2f} s | |")
    print(f"| full epoch, batch 128, re-parsing CIF text (pandas + pymatgen + collate) | {t_c:.2f} s | "
          f"adapter {t_c / t_a:.0f}x faster |")  # fmt: skip


def bench_random_access(store: Path, n: int = 300) -> None:
    from xtal_data import CrystalStore

    rng = np.random.default_rng(0)
    s = CrystalStore.open(str(store))
    idx = rng.integers(0, len(s), n)
    _, t_first = timed(lambda: s[int(idx[0])])
    _, t = timed(lambda: [s[int(i)] for i in idx[1:]])
    print(
        f"| random access, one structure per read from the local store | {(n - 1) / t:.0f} reads/s | "
        f"{t / (n - 1) * 1e3:.2f} ms each; first read {t_first * 1e3:.0f} ms (loads per-structure columns) |"
    )
    batches = [rng.integers(0, len(s), 128) for _ in range(20)]
    _, t = timed(lambda: [s.read(b) for b in batches])
    print(f"| random access, 128 random structures per read | {20 / t:.1f} batches/s | "
          f"{20 * 128 / t:.0f} structures/s |")  # fmt: skip
    table = s.read()
    _, t = timed(lambda: [table.record(int(i)) for i in idx])
    print(f"| random access in memory after store.read() | {n / t:.0f} records/s | |")


def bench_grid(store: Path, out: Path) -> None:
    from xtal_data import CrystalStore, StoreConfig

    table = CrystalStore.open(str(store)).read()
    idx = np.random.default_rng(1).integers(0, len(table), 301)
    print("| chunk structures / atoms | codec | size MiB | write s | full read s | first random read ms | "
          "next random reads ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    codecs = [("zstd", 5, "shuffle"), ("zstd", 5, "noshuffle"), ("lz4", 5, "shuffle")]
    shapes = [(4096, 32768), (16384, 32768), (16384, 131072), (65536, 524288)]
    for (cs, ca), (cname, clevel, shuffle) in [(sh, c) for sh in shapes for c in codecs]:
        url = out / f"grid-{cs}-{ca}-{cname}-{shuffle}.zarr"
        shutil.rmtree(url, ignore_errors=True)
        config = StoreConfig(chunk_structures=cs, chunk_atoms=ca, cname=cname, clevel=clevel, shuffle=shuffle)
        _, t_write = timed(lambda: CrystalStore.create(str(url), config=config).append(table))  # noqa: B023
        _, t_read = timed(CrystalStore.open(str(url)).read)
        fresh = CrystalStore.open(str(url))
        _, t_first = timed(lambda: fresh[int(idx[0])])  # noqa: B023
        _, t_rand = timed(lambda: [fresh[int(i)] for i in idx[1:]])  # noqa: B023
        print(f"| {cs} / {ca} | blosc {cname} {clevel} {shuffle} | {du(url) / 2**20:.2f} | {t_write:.2f} | "
              f"{t_read:.3f} | {t_first * 1e3:.0f} | {t_rand / (len(idx) - 1) * 1e3:.2f} |")  # fmt: skip
        shutil.rmtree(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/xd-bench"))
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--store", type=Path, default=None, help="reuse this MP-20 store (skips ingestion)")
    parser.add_argument("--skip-epoch", action="store_true", help="skip the (slow) CIF re-parsing epoch")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print("| measurement | result | note |\n|---|---|---|")
    store = args.store or bench_ingest(args.data, args.out, args.workers)
    bench_sizes(args.data, store)
    if not args.skip_epoch:
        bench_epoch(args.data, store)
    bench_random_access(store)
    if not args.skip_grid:
        print()
        bench_grid(store, args.out)


if __name__ == "__main__":
    main()
