"""MNIST-bags: bag AUC and how well ``instance_attention`` finds the decisive digit.

The protocol of Ilse, Tomczak and Welling (2018, "Attention-based Deep
Multiple Instance Learning", ICML): a bag is a set of MNIST digits, its size
drawn from a normal distribution of mean 10 and standard deviation 2
(at least 1), and it is positive when it holds at least one '9'. Here the
digits come from the shared MNIST *test* images (``benchmarks/data/mnist_test``),
flattened to 784 pixels in [0, 1]: the first 5,000 images are drawn into the
training bags, the last 5,000 into 1,000 test bags, so no image is in both.
Digits are drawn uniformly, which makes about 65% of the bags positive
(Ilse et al. balance the classes; their numbers are not reproduced here).

For each training-set size (50 to 500 bags) and seed, ``HopfieldMILClassifier``
(defaults, after ``BagStandardScaler``) is fitted; the table reports the bag
ROC AUC on the test bags and the instance ROC AUC of ``instance_attention``
(each instance's weight times its bag's size, within the positive test bags)
against whether the instance is a '9'. A pooled random forest (mean, max and
min of the pixels, 500 trees) on the same bags is the baseline.

Usage::

    python benchmarks/mnist_bags.py                       # 50, 100, 200, 500 bags; 2 seeds
    python benchmarks/mnist_bags.py --train 50 --seeds 0 --no-write
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
from sklearn.pipeline import make_pipeline

from skhop import HopfieldMILClassifier
from skhop.preprocessing import BagStandardScaler
from skhop.utils import instance_attention

DATA = Path(__file__).parent / "data" / "mnist_test" / "mnist_test.npz"
RESULTS = Path(__file__).parent / "results" / "mnist_bags.md"


def make_bags(images, labels, n_bags, rng, mean=10, sd=2):
    sizes = np.maximum(1, np.rint(rng.normal(mean, sd, size=n_bags)).astype(int))
    bags, y, is_nine = [], [], []
    for size in sizes:
        idx = rng.integers(0, len(images), size=size)
        bags.append(images[idx])
        nine = labels[idx] == 9
        is_nine.append(nine)
        y.append(int(nine.any()))
    return bags, np.array(y), is_nine


def pooled(bags):
    return np.stack([np.concatenate([b.mean(0), b.max(0), b.min(0)]) for b in bags])


def run(n_train, seed, images, labels):
    rng = np.random.default_rng(seed)
    half = len(images) // 2
    tr = make_bags(images[:half], labels[:half], n_train, rng)
    te = make_bags(images[half:], labels[half:], 1000, rng)
    out = {}
    model = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(random_state=seed))
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(tr[0], tr[1])
    out["cpu"] = time.process_time() - c0
    out["bag_auc"] = 100 * roc_auc_score(te[1], model.decision_function(te[0]))
    att = instance_attention(model, te[0])
    pos = np.flatnonzero(te[1] == 1)
    weights = np.concatenate([att[i] * len(att[i]) for i in pos])
    nines = np.concatenate([te[2][i] for i in pos])
    out["instance_auc"] = 100 * roc_auc_score(nines, weights)
    rf = RandomForestClassifier(500, n_jobs=1, random_state=seed).fit(pooled(tr[0]), tr[1])
    out["rf_auc"] = 100 * roc_auc_score(te[1], rf.predict_proba(pooled(te[0]))[:, 1])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="+", type=int, default=[50, 100, 200, 500])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = np.load(DATA)
    images = data["images"].reshape(len(data["images"]), -1).astype(np.float32) / 255.0
    labels = data["labels"]
    lines = [
        f"1,000 test bags, mean of seeds {args.seeds}; bag sizes ~ N(10, 2); "
        "bag ROC AUC (%) on the test bags, instance ROC AUC (%) of instance_attention "
        "against the '9's within positive test bags, CPU seconds per fit.",
        "",
        "| training bags | HopfieldMIL bag AUC | instance AUC of instance_attention "
        "| pooled RF bag AUC | HopfieldMIL CPU s per fit |",
        "|---|---|---|---|---|",
    ]
    for n in args.train:
        runs = [run(n, s, images, labels) for s in args.seeds]
        mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        print(n, {k: round(v, 2) for k, v in mean.items()}, flush=True)
        lines.append(
            f"| {n} | {mean['bag_auc']:.1f} | {mean['instance_auc']:.1f} | "
            f"{mean['rf_auc']:.1f} | {mean['cpu']:.1f} |"
        )
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_write:
        header = (
            "# HopfieldMILClassifier on MNIST-bags\n\n"
            f"Written by `benchmarks/mnist_bags.py` on {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared), torch {torch.__version__}.\n\n"
        )
        RESULTS.write_text(header + text + "\n")


if __name__ == "__main__":
    main()
