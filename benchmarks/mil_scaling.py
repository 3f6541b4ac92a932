"""How HopfieldMILClassifier's cost grows with the bag size (synthetic bags).

100 bags of 64 features whose sizes are drawn uniformly around a mean of 10,
100 or 1,000 instances (from half to one and a half times the mean); a bag is
positive when it holds planted witnesses. For each mean size, one stratified
10-fold cross-validation of the defaults with ``max_iter`` epochs (``tol=0``,
so every fit runs all of them) is timed in CPU seconds, and the time per
instance per epoch is printed: flat means the cost is proportional to the
instances, whatever the bag sizes. The same folds are also run through the
pooled (mean, max, min) random forest for reference.

Usage::

    python benchmarks/mil_scaling.py               # means 10, 100, 1000; 5 epochs
    python benchmarks/mil_scaling.py --max-iter 2 --means 10 1000 --no-write
"""

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from skhop import HopfieldMILClassifier

RESULTS = Path(__file__).parent / "results" / "mil_scaling.md"


def make_bags(n_bags, mean, n_features=64, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(max(1, mean // 2), mean + mean // 2 + 1, size=n_bags)
    y = np.arange(n_bags) % 2
    bags = []
    for size, label in zip(sizes, y, strict=True):
        bag = rng.normal(size=(size, n_features)).astype(np.float32)
        if label:
            k = max(1, size // 10)
            bag[:k, :8] += 1.5
        bags.append(bag)
    return bags, y


def pooled(bags):
    return np.stack([np.concatenate([b.mean(0), b.max(0), b.min(0)]) for b in bags])


def run(mean, max_iter, n_bags=100):
    bags, y = make_bags(n_bags, mean)
    n_inst = sum(len(b) for b in bags)
    folds = list(StratifiedKFold(10, shuffle=True, random_state=0).split(np.zeros(n_bags), y))
    out = {"instances": n_inst}
    c0 = time.process_time()
    aucs = []
    for k, (tr, te) in enumerate(folds):
        clf = HopfieldMILClassifier(max_iter=max_iter, tol=0.0, random_state=k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit([bags[i] for i in tr], y[tr])
        aucs.append(roc_auc_score(y[te], clf.decision_function([bags[i] for i in te])))
    cpu = time.process_time() - c0
    # instance-epochs: each fit trains on 90% of the instances for max_iter epochs
    out["hopfield_cpu"] = cpu
    out["us_per_instance_epoch"] = 1e6 * cpu / (0.9 * n_inst * max_iter * len(folds))
    out["hopfield_auc"] = 100 * np.mean(aucs)
    X = pooled(bags)
    c0 = time.process_time()
    aucs = []
    for k, (tr, te) in enumerate(folds):
        rf = RandomForestClassifier(500, n_jobs=1, random_state=k).fit(X[tr], y[tr])
        aucs.append(roc_auc_score(y[te], rf.predict_proba(X[te])[:, 1]))
    out["rf_cpu"] = time.process_time() - c0
    out["rf_auc"] = 100 * np.mean(aucs)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--means", nargs="+", type=int, default=[10, 100, 1000])
    parser.add_argument("--max-iter", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"100 bags of 64 features, stratified 10-fold, HopfieldMILClassifier defaults with "
        f"max_iter={args.max_iter} and tol=0 (every fit runs {args.max_iter} epochs), "
        "1 torch thread; CPU seconds of the process. The defaults train for up to 100 epochs "
        "(the stopping rule usually ends them after 20 to 40), so a full 10-fold run costs "
        "about that many times the per-epoch figure.",
        "",
        "| mean bag size | instances | HopfieldMIL CPU (s) | µs per instance-epoch "
        "| HopfieldMIL AUC | pooled RF CPU (s) | pooled RF AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for mean in args.means:
        r = run(mean, args.max_iter)
        print(mean, {k: round(v, 3) for k, v in r.items()}, flush=True)
        lines.append(
            f"| {mean} | {r['instances']} | {r['hopfield_cpu']:.1f} | "
            f"{r['us_per_instance_epoch']:.1f} | {r['hopfield_auc']:.1f} | "
            f"{r['rf_cpu']:.1f} | {r['rf_auc']:.1f} |"
        )
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_write:
        header = (
            "# HopfieldMILClassifier: cost against bag size\n\n"
            f"Written by `benchmarks/mil_scaling.py` on {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared), torch {torch.__version__}.\n\n"
        )
        RESULTS.write_text(header + text + "\n")


if __name__ == "__main__":
    main()
