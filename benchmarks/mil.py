"""Multiple-instance benchmarks: HopfieldMILClassifier against pooled baselines and the paper.

Stratified 10-fold cross-validation ROC AUC (mean over the folds, then over
the seeds) on the four benchmarks of the Hopfield paper's Table 1, all
models on the same folds in one run:

- ``HopfieldMILClassifier`` with its defaults, after ``BagStandardScaler``
  fitted on the training folds;
- pooled baselines: a bag becomes the (mean, max, min) of its instances,
  standardised, then ``LogisticRegression(C=0.1)``, ``SVC`` or a
  ``RandomForestClassifier`` (500 trees);
- MILES (Chen et al., 2006): a bag becomes its similarity
  ``exp(-min_j |x_j - m|^2 / n_features)`` to every training instance
  ``m`` (instances standardised on the training folds), then a 1-norm
  linear SVM (``LinearSVC(penalty="l1", C=1)``), the classical model of
  the 73.8 Fox AUC the paper's table quotes;
- the paper's Hopfield row (Ramsauer et al., 2021, Table 1), quoted.

Usage::

    python benchmarks/mil.py                 # all four data sets, 3 seeds
    python benchmarks/mil.py --seeds 0 --datasets fox tiger
    python benchmarks/mil.py --params '{"n_heads": 8}' --no-write   # try other settings
    python benchmarks/mil.py --params '{"scaling": null}' --inputs clip --no-write

``--inputs`` puts another map of the instance features than
``BagStandardScaler`` before HopfieldMILClassifier (with ``"scaling":
null`` in ``--params``, the network then reads what the map gives): the
comparison of input maps the user guide reports.

The table is printed and written to ``benchmarks/results/mil.md``.
"""

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from skhop import HopfieldMILClassifier
from skhop._quantile import quantile_fit, quantile_normal
from skhop.datasets import MIL_DATASETS, load_mil
from skhop.preprocessing import BagStandardScaler
from skhop.utils import pad_bags

PAPER = {"elephant": 94.9, "fox": 64.05, "tiger": 91.3, "ucsb_breast_cancer": 89.5}
NAMES = {
    "elephant": "Elephant",
    "fox": "Fox",
    "tiger": "Tiger",
    "ucsb_breast_cancer": "UCSB breast cancer",
}
RESULTS = Path(__file__).parent / "results" / "mil.md"


def pooled(bags):
    """(mean, max, min) of each bag's instances, one row per bag."""
    padded, mask = pad_bags(bags, dtype=np.float64)
    keep = ~mask[..., None]
    mean = (padded * keep).sum(1) / keep.sum(1)
    big = np.finfo(np.float64).max
    mx = np.where(keep, padded, -big).max(1)
    mn = np.where(keep, padded, big).min(1)
    return np.hstack([mean, mx, mn])


class BagMap(TransformerMixin, BaseEstimator):
    """A map of each instance feature fitted on the training instances, for ``--inputs``.

    ``"quantile"``: through the feature's distribution and the normal
    quantile function; ``"quantile-standard"``: that, then standardised;
    ``"clip"``: standardised, then RealMLP's smooth clipping
    ``x / sqrt(1 + (x / 3)^2)``; ``"robust-clip"``: centred on the median,
    divided by the interquartile range / 1.349 (half the range where that is
    0), then clipped alike.
    """

    def __init__(self, kind="quantile"):
        self.kind = kind

    def fit(self, bags, y=None):
        X = np.concatenate(bags).astype(np.float64)
        self.quantiles_ = None
        if self.kind.startswith("quantile"):
            self.quantiles_ = quantile_fit(X, np.ones(len(X)))
            X = quantile_normal(X, *self.quantiles_)
        if self.kind == "quantile":  # the map alone
            self.center_, self.scale_ = 0.0, 1.0
            return self
        if self.kind == "robust-clip":
            q25, q50, q75 = np.quantile(X, [0.25, 0.5, 0.75], axis=0)
            scale = (q75 - q25) / 1.349
            scale = np.where(scale > 0, scale, (X.max(0) - X.min(0)) / 2)
            self.center_ = q50
        else:
            scale = X.std(0)
            self.center_ = X.mean(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, bags):
        X = np.concatenate(bags).astype(np.float64)
        if self.quantiles_ is not None:
            X = quantile_normal(X, *self.quantiles_)
        Z = (X - self.center_) / self.scale_
        if self.kind.endswith("clip"):
            Z = Z / np.sqrt(1 + (Z / 3) ** 2)
        cuts = np.cumsum([len(b) for b in bags])[:-1]
        return [z.astype(np.float32) for z in np.split(Z, cuts)]


INPUTS = ("standard", "quantile", "quantile-standard", "clip", "robust-clip")


class MILES:
    """MILES: each bag embedded by its nearest instance's similarity to every training instance."""

    def fit(self, bags, y):
        X = np.concatenate(bags)
        self.mean_, self.scale_ = X.mean(0), X.std(0)
        self.scale_[self.scale_ == 0] = 1.0
        self.memories_ = (X - self.mean_) / self.scale_
        self.svm_ = LinearSVC(penalty="l1", dual=False, C=1.0, max_iter=5000, random_state=0)
        self.svm_.fit(self._embed(bags), y)
        return self

    def _embed(self, bags):
        Z = (np.concatenate(bags) - self.mean_) / self.scale_
        m = self.memories_
        d2 = (Z * Z).sum(1)[:, None] - 2 * Z @ m.T + (m * m).sum(1)
        starts = np.cumsum([0] + [len(b) for b in bags[:-1]])
        nearest = np.minimum.reduceat(np.maximum(d2, 0), starts, axis=0)
        return np.exp(-nearest / m.shape[1])

    def decision_function(self, bags):
        return self.svm_.decision_function(self._embed(bags))


def models(params, inputs="standard"):
    """Factories of a fresh model given the fold's random_state (used where the model draws)."""

    def first():
        return BagStandardScaler() if inputs == "standard" else BagMap(inputs)

    return {
        "hopfield": lambda rs: make_pipeline(
            first(), HopfieldMILClassifier(**params).set_params(random_state=rs)
        ),
        "pooled_lr": lambda rs: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)
        ),
        "pooled_svc": lambda rs: make_pipeline(StandardScaler(), SVC()),
        "pooled_rf": lambda rs: RandomForestClassifier(500, n_jobs=1, random_state=rs),
        "miles": lambda rs: MILES(),
    }


def ranking_score(model, X):
    """The decision function where the model has one, else the positive class's probability."""
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model.predict_proba(X)[:, 1]


def cross_validate(name, seeds, params, only=None, inputs="standard"):
    bags, y = load_mil(name, return_X_y=True)
    pooled_X = pooled(bags)
    out = {}
    for key, factory in models(params, inputs).items():
        if only and key not in only:
            continue
        aucs, times, cpu = [], [], []
        for seed in seeds:
            folds = StratifiedKFold(10, shuffle=True, random_state=seed).split(pooled_X, y)
            fold_auc = []
            t0, c0 = time.perf_counter(), time.process_time()
            for k, (tr, te) in enumerate(folds):
                model = factory(1000 * seed + k)
                if key in ("hopfield", "miles"):
                    Xtr, Xte = [bags[i] for i in tr], [bags[i] for i in te]
                else:
                    Xtr, Xte = pooled_X[tr], pooled_X[te]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(Xtr, y[tr])
                fold_auc.append(roc_auc_score(y[te], ranking_score(model, Xte)))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            aucs.append(100 * np.mean(fold_auc))
        out[key] = (
            float(np.mean(aucs)),
            float(np.std(aucs)),
            float(np.mean(times)),
            float(np.mean(cpu)),
        )
    return out


def table(results, seeds):
    lines = [
        f"Stratified 10-fold ROC AUC (%), mean over folds, mean ± sd over seeds {seeds}. "
        "Times are per 10-fold run of HopfieldMILClassifier (defaults, 1 torch thread): "
        "wall seconds on the shared machine and CPU seconds of the process "
        "(the wall time grows with the load of other processes). "
        "*vs best pooled* is against the best of the three pooled models.",
        "",
        "| data set | paper's Hopfield | HopfieldMIL (defaults) | vs paper | pooled + LR(C=0.1) "
        "| pooled + SVC | pooled + RF | vs best pooled | MILES | vs MILES | wall (s) | CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("hopfield", "pooled_lr", "pooled_svc", "pooled_rf", "miles")
    for name, r in results.items():
        h, lr, svc, rf, miles = (r.get(k) for k in keys)

        def fmt(v):
            return "—" if v is None else f"{v[0]:.1f} ± {v[1]:.1f}"

        def versus(v, h=h):
            return f"{h[0] - v:+.1f}" if h and v is not None else "—"

        best = max((v[0] for v in (lr, svc, rf) if v is not None), default=None)
        times = f"{h[2]:.1f} | {h[3]:.1f}" if h else "— | —"
        lines.append(
            f"| {NAMES[name]} | {PAPER[name]:.2f} | {fmt(h)} | {versus(PAPER[name])} | "
            f"{fmt(lr)} | {fmt(svc)} | {fmt(rf)} | {versus(best)} | {fmt(miles)} | "
            f"{versus(None if miles is None else miles[0])} | {times} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(MIL_DATASETS), choices=MIL_DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--params", default="{}", help="JSON of HopfieldMILClassifier parameters to override"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=["hopfield", "pooled_lr", "pooled_svc", "pooled_rf", "miles"],
    )
    parser.add_argument(
        "--inputs", default="standard", choices=INPUTS, help="the map before the classifier"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = json.loads(args.params)
    results = {}
    for name in args.datasets:
        results[name] = cross_validate(name, args.seeds, params, args.only, args.inputs)
        print(
            name, {k: tuple(round(x, 2) for x in v) for k, v in results[name].items()}, flush=True
        )
    text = table(results, args.seeds)
    print()
    print(text)
    if not args.no_write and not params and args.only is None and args.inputs == "standard":
        header = (
            f"# HopfieldMILClassifier on the multiple-instance benchmarks\n\n"
            f"Written by `benchmarks/mil.py` on {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared, torch's CPU kernels: "
            f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}.\n\n"
        )
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(header + text + "\n")


if __name__ == "__main__":
    main()
