"""Sections of ``benchmarks/imputation.py`` beyond the RMSE tables."""

import subprocess
import sys
import time
import warnings

import numpy as np
from _impute_peers import cached, remove, seed_of
from _uci import load_uci
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skhop import HopfieldImputer

PIPE_RATE = 0.3
PIPE_PEERS = {
    "SimpleImputer(mean)": lambda: SimpleImputer(keep_empty_features=True),
    "KNNImputer(k=5)": lambda: KNNImputer(keep_empty_features=True),
    "IterativeImputer(BayesianRidge)": lambda: IterativeImputer(
        random_state=0, keep_empty_features=True
    ),
}


def _fold_accuracy(make, Xm, y, folds):
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in folds:
            pipe = make_pipeline(make(), LogisticRegression(max_iter=1000))
            pipe.fit(Xm[train], y[train])
            scores.append(pipe.score(Xm[test], y[test]))
    return float(np.mean(scores))


def pipeline_section(halves, lines, peers_only):
    for half, names in halves.items():
        acc = {}
        for name in names:
            X, y, folds = load_uci(name)
            Xm, _ = remove(X, PIPE_RATE, "mcar", seed_of(name, "mcar", PIPE_RATE))
            for peer, make in PIPE_PEERS.items():
                key = dict(peer=peer, dataset=name, section="pipeline", rate=PIPE_RATE)
                key["settings"] = "LogisticRegression(max_iter=1000), dataset folds"
                r = cached(key, lambda make=make: {"acc": _fold_accuracy(make, Xm, y, folds)})
                acc.setdefault(peer, []).append(r["acc"])
            if not peers_only:
                make = lambda: HopfieldImputer(random_state=0, keep_empty_features=True)  # noqa: E731
                acc.setdefault("HopfieldImputer", []).append(_fold_accuracy(make, Xm, y, folds))
        if peers_only:
            continue
        hop = np.array(acc["HopfieldImputer"])
        lines += [
            "",
            f"### Pipeline(imputer, LogisticRegression), {half} half, "
            f"{int(PIPE_RATE * 100)}% MCAR: mean 4-fold test accuracy",
            "",
            "| pipeline | mean accuracy | datasets where Hopfield's pipeline is more accurate |",
            "|---|---|---|",
        ]
        for m, v in acc.items():
            v = np.array(v)
            wins = "—" if m == "HopfieldImputer" else f"{int((hop > v).sum())}/{len(v)}"
            lines.append(f"| {m} | {v.mean():.4f} | {wins} |")
        print("\n".join(lines[-(len(acc) + 4) :]), flush=True)
