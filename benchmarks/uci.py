"""HopfieldClassifier against sklearn's classifiers on 50 small UCI datasets.

Protocol: the 4 train/test splits of each dataset's ``conxuntos_kfold.dat``,
features as given (already standardised), every model with its defaults,
all models in the same run, one thread each (torch and every BLAS/OpenMP
pool). Prints per-dataset accuracy (mean over the 4 splits), mean accuracy,
mean rank (1 = best, ties averaged), total fit+predict wall time per model
and its ratio to MLPClassifier's, and writes the table to
``benchmarks/results/uci.md``.

    python benchmarks/uci.py                      # all 50 datasets, all models
    python benchmarks/uci.py --datasets wine zoo  # a few (no table written)
    python benchmarks/uci.py --cached             # reuse the peers' cached results
    python benchmarks/uci.py --hopfield '{"beta": 2.0}' --cached --half 0

``--cached`` reads (and updates) the peers' results in
``benchmarks/results/.cache/`` so that HopfieldClassifier settings can be
compared without re-running the peers; their times then come from an
earlier run, so only a full uncached run gives a time ratio to quote.
``--half 0`` / ``--half 1`` picks every other dataset (a development half).
"""

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _uci import dataset_names, load_uci  # noqa: E402

from skhop import HopfieldClassifier  # noqa: E402

RESULTS = HERE / "results" / "uci.md"
CACHE = HERE / "results" / ".cache" / "uci_peers.json"
HOPFIELD = "HopfieldClassifier"


def make_model(name, hopfield_params):
    if name == HOPFIELD:
        return HopfieldClassifier(random_state=0, **hopfield_params)
    return {
        "LogisticRegression": lambda: LogisticRegression(),
        "SVC": lambda: SVC(random_state=0),
        "KNeighbors": lambda: KNeighborsClassifier(),
        "RandomForest": lambda: RandomForestClassifier(random_state=0),
        "HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=0),
        "MLPClassifier": lambda: MLPClassifier(random_state=0),
    }[name]()


MODELS = [
    HOPFIELD,
    "LogisticRegression",
    "SVC",
    "KNeighbors",
    "RandomForest",
    "HistGradientBoosting",
    "MLPClassifier",
]


def evaluate(name, hopfield_params, X, y, folds):
    """Mean test accuracy over the splits, and the total fit+predict seconds."""
    accs, seconds = [], 0.0
    for train_idx, test_idx in folds:
        model = make_model(name, hopfield_params)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[train_idx], y[train_idx])
        pred = model.predict(X[test_idx])
        seconds += time.perf_counter() - t0
        accs.append(float(np.mean(pred == y[test_idx])))
    return float(np.mean(accs)), seconds


def run_dataset(dataset, names, hopfield_params):
    """Results of every model in ``names`` on one dataset, one thread everywhere."""
    torch.set_num_threads(1)
    X, y, folds = load_uci(dataset)
    out = {}
    with threadpool_limits(1):
        for m in names:
            out[m] = evaluate(m, hopfield_params, X, y, folds)
    return dataset, out


def table(names, acc, secs):
    """Markdown summary and per-dataset tables."""
    model_names = list(acc)
    A = np.array([[acc[m][d] for m in model_names] for d in names])  # (datasets, models)
    ranks = np.array([rankdata(-row) for row in A])
    mean_acc, mean_rank = A.mean(axis=0), ranks.mean(axis=0)
    total = np.array([sum(secs[m][d] for d in names) for m in model_names])
    ref = total[model_names.index("MLPClassifier")] if "MLPClassifier" in model_names else None
    order = np.argsort(mean_rank, kind="stable")
    lines = [
        f"{len(names)} UCI datasets, 4 splits each, accuracy on the test splits; "
        "rank 1 is best (ties averaged); wins count ties.",
        "",
        "| model | mean accuracy | mean rank | wins | total seconds |"
        + (" time vs MLP |" if ref else ""),
        "|---|---|---|---|---|" + ("---|" if ref else ""),
    ]
    for j in order:
        wins = int(np.sum(ranks[:, j] == ranks.min(axis=1)))
        row = (
            f"| {model_names[j]} | {mean_acc[j]:.4f} | {mean_rank[j]:.2f} | {wins} | "
            f"{total[j]:.1f} |"
        )
        if ref:
            row += f" {total[j] / ref:.2f} |"
        lines.append(row)
    short = [
        m.replace("Classifier", "")
        .replace("HistGradientBoosting", "HGB")
        .replace("LogisticRegression", "LogReg")
        for m in model_names
    ]
    lines += ["", "| dataset | " + " | ".join(short) + " |", "|---|" + "---|" * len(model_names)]
    for i, d in enumerate(names):
        best = A[i].max()
        cells = [f"**{a:.3f}**" if a == best else f"{a:.3f}" for a in A[i]]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", help="subset of dataset names (default: all)")
    p.add_argument(
        "--half",
        type=int,
        choices=(0, 1),
        help="every other dataset, starting at this index (development half)",
    )
    p.add_argument("--models", nargs="*", choices=MODELS, help="subset of models")
    p.add_argument(
        "--hopfield",
        default="{}",
        help="JSON dict of HopfieldClassifier parameters (default: its defaults)",
    )
    p.add_argument(
        "--cached", action="store_true", help="reuse cached peer results, run only the missing ones"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="datasets run in parallel processes (times then less comparable)",
    )
    p.add_argument("--json", help="also write the raw per-dataset results to this file")
    p.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    names = args.datasets or dataset_names()
    if args.half is not None:
        names = names[args.half :: 2]
    chosen = args.models or MODELS
    hopfield_params = json.loads(args.hopfield)
    cache = {}
    if args.cached and CACHE.exists():
        cache = json.loads(CACHE.read_text())
    acc = {m: {} for m in chosen}
    secs = {m: {} for m in chosen}
    todo = {}
    for d in names:
        need = []
        for m in chosen:
            if m != HOPFIELD and args.cached and d in cache.get(m, {}):
                acc[m][d], secs[m][d] = cache[m][d]
            else:
                need.append(m)
        todo[d] = need
    # warm up torch once so the first dataset does not pay for its start-up
    with threadpool_limits(1):
        HopfieldClassifier(max_iter=2, random_state=0).fit(np.eye(4), [0, 1, 0, 1])

    def record(d, out):
        cells = []
        for m in chosen:
            if m in out:
                acc[m][d], secs[m][d] = out[m]
                if m != HOPFIELD:
                    cache.setdefault(m, {})[d] = list(out[m])
            cells.append(f"{m[:6]} {acc[m][d]:.3f} ({secs[m][d]:.2f}s)")
        print(f"{d:32s} " + "  ".join(cells), flush=True)

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_dataset, d, todo[d], hopfield_params) for d in names]
            for f in futures:
                record(*f.result())
    else:
        for d in names:
            record(*run_dataset(d, todo[d], hopfield_params))
    if any(m != HOPFIELD for m in chosen):
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        (CACHE.parent / ".gitignore").write_text("*\n")
        CACHE.write_text(json.dumps(cache, indent=0))
    out = table(names, acc, secs)
    print()
    print(out)
    if args.json:
        Path(args.json).write_text(json.dumps({"acc": acc, "secs": secs}))
    full = not (args.datasets or args.half is not None or args.models or args.hopfield != "{}")
    if full and not args.no_write and not args.cached and args.jobs == 1:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(
            "# HopfieldClassifier on 50 UCI datasets\n\n"
            "Written by `python benchmarks/uci.py` (all models in one run, "
            "one thread each).\n\n" + out + "\n"
        )
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
