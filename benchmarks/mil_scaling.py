"""How HopfieldMILClassifier's cost grows with the bag size (synthetic bags).

Synthetic bags of 64 features; a bag is positive when about a tenth of its
instances are planted witnesses (8 features shifted by 1.5). Every run is
one stratified 10-fold cross-validation of the *full defaults* (no
shortened training), timed in CPU seconds of the process with one torch
thread, beside a pooled (mean, max, min) random forest on the same folds:

- the goal run: 100 bags of 50 to 1,000 instances (uniform);
- 100 bags whose sizes are drawn from half to one and a half times a mean
  of 10, 100 or 1,000 instances, with the CPU time per instance of the
  whole 10-fold run (training and prediction). Flat or falling means the
  cost grows at most in proportion to the instances: a training step reads
  at most ``max_instances`` instances of a bag, prediction reads them all.

Usage::

    python benchmarks/mil_scaling.py               # the goal run and means 10, 100, 1000
    python benchmarks/mil_scaling.py --means 10 --no-write
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from skhop import HopfieldMILClassifier

RESULTS = Path(__file__).parent / "results" / "mil_scaling.md"


def make_bags(sizes, n_features=64, seed=0):
    """Bags of the given sizes, alternately negative and positive (witnesses planted)."""
    rng = np.random.default_rng(seed)
    y = np.arange(len(sizes)) % 2
    bags = []
    for size, label in zip(sizes, y, strict=True):
        bag = rng.normal(size=(size, n_features)).astype(np.float32)
        if label:
            k = max(1, size // 10)
            bag[:k, :8] += 1.5
        bags.append(bag)
    return bags, y


def sizes_around(mean, n_bags=100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(max(1, mean // 2), mean + mean // 2 + 1, size=n_bags)


def pooled(bags):
    return np.stack([np.concatenate([b.mean(0), b.max(0), b.min(0)]) for b in bags])


def run(sizes):
    sizes = np.asarray(sizes)
    bags, y = make_bags(sizes)
    n_inst = int(sum(len(b) for b in bags))
    folds = list(StratifiedKFold(10, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    out = {"instances": n_inst}
    c0 = time.process_time()
    aucs = []
    for k, (tr, te) in enumerate(folds):
        clf = HopfieldMILClassifier(random_state=k).fit([bags[i] for i in tr], y[tr])
        aucs.append(roc_auc_score(y[te], clf.decision_function([bags[i] for i in te])))
    cpu = time.process_time() - c0
    out["hopfield_cpu"] = cpu
    out["us_per_instance"] = 1e6 * cpu / n_inst
    # what training reads: each epoch at most max_instances of each training bag
    defaults = HopfieldMILClassifier()
    seen = sum(
        defaults.max_iter * int(np.minimum(sizes[tr], defaults.max_instances).sum())
        for tr, _ in folds
    )
    out["us_per_seen"] = 1e6 * cpu / seen
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


def row(label, r):
    return (
        f"| {label} | {r['instances']} | {r['hopfield_cpu']:.1f} | "
        f"{r['us_per_instance']:.1f} | {r['us_per_seen']:.1f} | {r['hopfield_auc']:.1f} | "
        f"{r['rf_cpu']:.1f} | {r['rf_auc']:.1f} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--means", nargs="+", type=int, default=[10, 100, 1000])
    parser.add_argument("--no-goal", action="store_true", help="skip the 50-1,000 run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    head = [
        "| bags | instances | HopfieldMIL CPU (s) | µs per instance "
        "| µs per instance-epoch trained | HopfieldMIL AUC "
        "| pooled RF CPU (s) | pooled RF AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines = [
        "Stratified 10-fold, HopfieldMILClassifier with its defaults (full training), "
        "1 torch thread; CPU seconds of the process for the whole 10-fold run (fits and "
        "predictions), per instance of the data set, and per instance-epoch that "
        "training read (an epoch reads at most `max_instances` = 64 instances of each "
        "training bag: the unit of the cost model). Goal: the run of 100 bags of 50 "
        "to 1,000 instances under 30 s, the time per instance flat from mean bag size 10 "
        "to 1,000.",
        "",
    ]
    if not args.no_goal:
        sizes = np.random.default_rng(0).integers(50, 1001, size=100)
        r = run(sizes)
        print("50-1000", {k: round(v, 3) for k, v in r.items()}, flush=True)
        lines += head + [row("100 of 50 to 1,000 instances", r), ""]
    lines += head
    for mean in args.means:
        r = run(sizes_around(mean))
        print(mean, {k: round(v, 3) for k, v in r.items()}, flush=True)
        lines.append(row(f"100 of mean size {mean}", r))
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_write:
        header = (
            "# HopfieldMILClassifier: cost against bag size\n\n"
            f"Written by `benchmarks/mil_scaling.py` on {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared, torch's CPU kernels: "
            f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}.\n\n"
        )
        RESULTS.write_text(header + text + "\n")


if __name__ == "__main__":
    main()
