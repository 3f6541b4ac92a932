"""skhop demo: the four estimators on real data, next to their sklearn peers.

1. HopfieldClassifier on two real tabular datasets, 5-fold cross-validation
   against LogisticRegression, SVC and MLPClassifier.
2. HopfieldMILClassifier on the Elephant multiple-instance benchmark shipped
   with skhop, against mean/max/min-pooled LogisticRegression, and the
   instances it attends to in a positive bag.
3. KernelHopfieldRetriever: 1,000 stored digits retrieved from queries whose
   lower half is unknown (NaN), against the paper's dot-product baseline.
4. HopfieldImputer: 30% of the digits' pixels removed, filled back, against
   KNNImputer and column means.

Set ``SKHOP_EXAMPLES_QUICK=1`` for a shorter run.
"""

import os
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skhop import (
    HopfieldClassifier,
    HopfieldImputer,
    HopfieldMILClassifier,
    KernelHopfieldRetriever,
)
from skhop.datasets import load_mil
from skhop.nn.functional import hopfield_retrieve
from skhop.preprocessing import BagStandardScaler

QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK") == "1"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def header(title):
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)))


def classifier_demo():
    header("HopfieldClassifier: 5-fold CV accuracy (time for the whole CV)")
    models = {
        "HopfieldClassifier": HopfieldClassifier(random_state=0),
        "LogisticRegression": LogisticRegression(max_iter=1000),
        "SVC (rbf)": SVC(),
        "MLPClassifier": MLPClassifier(max_iter=500, random_state=0),
    }
    datasets = {
        "breast_cancer": load_breast_cancer(return_X_y=True),
        "wine": load_wine(return_X_y=True),
    }
    print(f"{'model':20s}" + "".join(f"{name:>24s}" for name in datasets))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    for name, model in models.items():
        cells = []
        for X, y in datasets.values():
            pipe = make_pipeline(StandardScaler(), model)
            scores, seconds = timed(lambda pipe=pipe, X=X, y=y: cross_val_score(pipe, X, y, cv=cv))
            cells.append(f"{scores.mean():.3f} ({seconds:5.2f} s)")
        print(f"{name:20s}" + "".join(f"{c:>24s}" for c in cells))


def _pooled(bags):
    return np.stack([np.concatenate([b.mean(0), b.max(0), b.min(0)]) for b in bags])


def mil_demo():
    header("HopfieldMILClassifier on Elephant: 5-fold CV ROC AUC")
    data = load_mil("elephant")
    bags, y = data.bags, data.target
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    hop = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(random_state=0))
    auc, seconds = timed(lambda: cross_val_score(hop, bags, y, cv=cv, scoring="roc_auc"))
    print(f"{'HopfieldMILClassifier':44s} {auc.mean():.3f} ({seconds:5.2f} s)")
    base = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    auc, seconds = timed(lambda: cross_val_score(base, _pooled(bags), y, cv=cv, scoring="roc_auc"))
    print(f"{'mean/max/min-pooled + LogisticRegression':44s} {auc.mean():.3f} ({seconds:5.2f} s)")
    hop.fit(bags, y)
    positive = int(np.flatnonzero(y == 1)[0])
    attention = hop.named_steps["hopfieldmilclassifier"].instance_attention(
        hop.named_steps["bagstandardscaler"].transform([bags[positive]])
    )[0]
    top = np.argsort(attention)[::-1][:3]
    print(
        f"bag {positive} (positive, {len(attention)} instances): most attended instances "
        + ", ".join(f"#{i} ({attention[i]:.2f})" for i in top)
    )


def retriever_demo():
    header("KernelHopfieldRetriever: 1,000 digits, lower half of each query unknown")
    X = load_digits().data.astype(np.float32) / 16.0
    memory = X[:1000]
    queries = memory.copy()
    queries[:, 32:] = np.nan  # the lower half of every 8x8 image is unknown
    target = np.arange(len(memory))

    retriever = KernelHopfieldRetriever(random_state=0).fit(memory)
    score, seconds = timed(lambda: retriever.score(queries, target))
    print(
        f"{'KernelHopfieldRetriever() defaults, NaN = unknown':56s} {score:7.1%} "
        f"({seconds * 1e3:6.1f} ms)"
    )

    zeroed = torch.from_numpy(np.nan_to_num(queries, nan=0.0))
    mem = torch.from_numpy(memory)
    out, seconds = timed(lambda: hopfield_retrieve(zeroed, mem, beta=1.0))
    correct = (torch.cdist(out, mem).argmin(1).numpy() == target).mean()
    print(
        f"{'dense dot-product Hopfield, beta=1, unknown set to 0':56s} {correct:7.1%} "
        f"({seconds * 1e3:6.1f} ms)"
    )


def imputer_demo():
    header("HopfieldImputer: 30% of the digits' pixels missing, RMSE on them")
    X = load_digits().data[: 600 if QUICK else 1797] / 16.0
    rng = np.random.default_rng(0)
    missing = rng.random(X.shape) < 0.3
    holes = np.where(missing, np.nan, X)
    imputers = {
        "HopfieldImputer()": HopfieldImputer(random_state=0),
        "KNNImputer()": KNNImputer(),
        "SimpleImputer(mean)": SimpleImputer(),
    }
    for name, imputer in imputers.items():
        filled, seconds = timed(lambda: imputer.fit_transform(holes))  # noqa: B023
        rmse = np.sqrt(np.mean((filled[missing] - X[missing]) ** 2))
        print(f"{name:24s} RMSE {rmse:.4f} ({seconds:5.2f} s)")


def main():
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", category=ConvergenceWarning)
    classifier_demo()
    mil_demo()
    retriever_demo()
    imputer_demo()


if __name__ == "__main__":
    main()
