"""Dask scale-out on this machine: 1 worker against 2, and sharded retrieval.

1. GridSearchCV of HopfieldClassifier on sklearn's digits (1797 x 64, 10 classes)
   through ``joblib.parallel_backend("dask")`` on a LocalCluster with 1 and
   with 2 single-threaded worker processes; wall time and speed-up.
2. One softmax retrieval step against M=1e6 stored patterns (d=64, B=1000
   queries) sharded across 2 workers, against one process holding the whole
   memory; the results agree to float tolerance.

Run: ``python benchmarks/dask_scaling.py [--quick]``; writes ``results/dask_scaling.md``.
"""

import argparse
import time
from pathlib import Path

import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster, wait
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skhop import HopfieldClassifier  # noqa: E402
from skhop.distributed import sharded_retrieve  # noqa: E402
from skhop.nn.functional import hopfield_retrieve  # noqa: E402


def cluster(n_workers):
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )


def _warm_up():
    # import torch and skhop in every worker before timing (seconds per process)
    import skhop._classifier  # noqa: F401


def grid_search(n_workers, X, y, grid):
    with cluster(n_workers) as c, Client(c) as client:
        client.run(_warm_up)
        t0 = time.perf_counter()
        with joblib.parallel_backend("dask"):
            search = GridSearchCV(HopfieldClassifier(random_state=0), grid, cv=3, n_jobs=-1)
            search.fit(X, y)
        return time.perf_counter() - t0, search.best_score_


def sharded(n_workers, q, x):
    with cluster(n_workers) as c, Client(c) as client:
        shards = client.scatter(np.array_split(x, n_workers))
        wait(shards)
        sharded_retrieve(q[:10], shards, beta=8.0)  # warm-up
        t0 = time.perf_counter()
        out = sharded_retrieve(q, shards, beta=8.0)
        return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lines = []
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    name = "digits"
    grid = {"beta": [0.5, 1.0, 2.0], "learning_rate": [3e-3, 1e-2]}
    if args.quick:
        grid = {"beta": [0.5, 1.0]}
    t1, s1 = grid_search(1, X, y, grid)
    t2, s2 = grid_search(2, X, y, grid)
    n_fits = 3 * int(np.prod([len(v) for v in grid.values()]))
    lines += [
        f"GridSearchCV(HopfieldClassifier) on {name} ({X.shape[0]}x{X.shape[1]}), "
        f"{n_fits} fits, joblib Dask backend, LocalCluster of 1-thread worker processes",
        "",
        "| workers | wall time | speed-up | best CV score |",
        "|---|---|---|---|",
        f"| 1 | {t1:.1f} s | 1.00 | {s1:.4f} |",
        f"| 2 | {t2:.1f} s | {t1 / t2:.2f} | {s2:.4f} |",
        "",
    ]
    print("\n".join(lines), flush=True)

    M = 200_000 if args.quick else 1_000_000
    d, B = 64, 1000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(M, d, generator=g)
    x /= x.norm(dim=1, keepdim=True)
    q = (x[:B] + 0.1 * torch.randn(B, d, generator=g)).numpy()
    x = x.numpy()
    t0 = time.perf_counter()
    ref = hopfield_retrieve(torch.from_numpy(q), torch.from_numpy(x), beta=8.0).numpy()
    t_single = time.perf_counter() - t0
    t_one, _ = sharded(1, q, x)
    t_shard, out = sharded(2, q, x)
    err = float(np.abs(out - ref).max())
    table = [
        f"One retrieval step, M={M:.0e} stored patterns, d={d}, B={B} queries, beta=8",
        "",
        "| setting | wall time | speed-up | max abs difference |",
        "|---|---|---|---|",
        f"| one process, whole memory | {t_single:.2f} s | 1.00 | - |",
        f"| 1 Dask worker, the whole memory as one shard | {t_one:.2f} s "
        f"| {t_single / t_one:.2f} | - |",
        f"| 2 Dask workers, one shard each | {t_shard:.2f} s | {t_single / t_shard:.2f} "
        f"| {err:.1e} |",
    ]
    print("\n".join(table), flush=True)
    lines += table
    out_path = Path(__file__).parent / "results" / "dask_scaling.md"
    out_path.write_text("\n".join(lines) + "\n\nReproduce: `python benchmarks/dask_scaling.py`\n")


if __name__ == "__main__":
    main()
