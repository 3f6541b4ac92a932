"""
=====================================================
Filling missing values: HopfieldImputer vs KNNImputer
=====================================================

:class:`~sklearn.impute.KNNImputer` fills a missing entry with the plain mean
of that feature over the ``n_neighbors`` nearest rows.
:class:`~skhop.HopfieldImputer` makes the same idea smooth: a row with gaps
is a query that retrieves from all stored training rows, comparing the
entries observed in both, and each gap is filled with the attention-weighted
mean of the rows that observe it. The sharpness of the attention, ``beta``,
is chosen on the training data by hiding observed entries and filling them
back, so there is no ``n_neighbors`` to tune.

We hide entries of the breast cancer data at random and compare how well
each imputer restores them.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skhop import HopfieldImputer

torch.set_num_threads(1)
QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK", "0") not in ("", "0")

# %%
# The protocol
# ------------
# The imputers are fitted on training rows and fill the gaps of held-out
# rows; both sets have entries missing completely at random. The error is
# the root mean squared error over the hidden test entries.
#
# The features are standardised first, with the statistics of the complete
# training rows: KNNImputer measures distances in the units it is given, and
# the features of this data set range from about 0.01 to 1000, so on raw
# data the largest ones alone would pick the neighbours. (HopfieldImputer
# standardises by itself, ``standardize=True``.) Errors are therefore in
# standard deviations; 1.0 is roughly what filling with the mean costs.
X, _ = load_breast_cancer(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)


def hide(X, rate, seed):
    missing = np.random.default_rng(seed).random(X.shape) < rate
    X_missing = X.copy()
    X_missing[missing] = np.nan
    return X_missing, missing


def error(imputer, rate, repeats=1):
    """RMSE on the hidden test entries and seconds per fit + transform, averaged.

    Draw ``r`` of the missing entries is the same for every imputer, so the
    imputers are compared on exactly the same gaps.
    """
    errors, seconds = [], []
    for r in range(repeats):
        train_missing, _ = hide(X_train, rate, seed=(r, 0))
        test_missing, hidden = hide(X_test, rate, seed=(r, 1))
        start = time.perf_counter()
        filled = imputer.fit(train_missing).transform(test_missing)
        seconds.append(time.perf_counter() - start)
        errors.append(np.sqrt(np.mean((filled - X_test)[hidden] ** 2)))
    return np.mean(errors), np.mean(seconds)


imputers = {
    "HopfieldImputer": lambda: HopfieldImputer(random_state=0),
    "KNNImputer (k=5)": lambda: KNNImputer(),
    "SimpleImputer (mean)": lambda: SimpleImputer(),
}
rates = [0.1, 0.3] if QUICK else [0.1, 0.3, 0.5, 0.7]
repeats = 1 if QUICK else 2

# %%
# The error as more and more entries are missing
# ----------------------------------------------
# Each point averages ``repeats`` random draws of the missing entries.
results = {
    name: [error(make(), rate, repeats) for rate in rates] for name, make in imputers.items()
}
for name, rows in results.items():
    print(
        f"{name:22s}",
        "  ".join(f"{r:.0%}: {e:.3f}" for r, (e, _) in zip(rates, rows, strict=True)),
        f"  (fit + transform {np.mean([t for _, t in rows]):.2f} s on average)",
    )

fig, ax = plt.subplots(figsize=(6, 3.8))
for name, rows in results.items():
    ax.plot([100 * r for r in rates], [e for e, _ in rows], "o-", label=name)
ax.set_xlabel("% of entries missing (training and test rows)")
ax.set_ylabel("RMSE on hidden entries (std units)")
ax.set_title("Breast cancer: restoring hidden entries")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# With standardised features the two imputers are close, and both far
# better than the column mean (each point is the mean over the same two
# random draws of gaps for every imputer). KNNImputer with its default five
# neighbours is slightly better when few entries are missing; the Hopfield
# imputer is better from about half of the entries missing on, where five
# neighbours that observe the missing feature and share enough entries
# with the row become scarce, while the attention still uses every row that
# observes it. Its fit costs more: it learns ``beta`` and one weight per
# feature on the training rows.
#
# Is it only a matter of tuning ``n_neighbors``?
# ----------------------------------------------
# KNNImputer's error for each ``n_neighbors`` at 30% missing, against the
# Hopfield imputer with its automatic ``beta`` (from the curve above).
neighbors = [1, 5, 30] if QUICK else [1, 2, 3, 5, 8, 12, 20, 35, 50, 100]
knn = [error(KNNImputer(n_neighbors=k), 0.3, repeats)[0] for k in neighbors]
knn_weighted = [
    error(KNNImputer(n_neighbors=k, weights="distance"), 0.3, repeats)[0] for k in neighbors
]
hopfield_error = results["HopfieldImputer"][rates.index(0.3)][0]

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.plot(neighbors, knn, "o-", color="tab:orange", label="KNNImputer, uniform")
ax.plot(neighbors, knn_weighted, "s--", color="tab:orange", label='KNNImputer, weights="distance"')
ax.axhline(hopfield_error, color="tab:blue", label="HopfieldImputer (defaults)")
ax.set_xscale("log")
ax.set_xlabel("n_neighbors")
ax.set_ylabel("RMSE on hidden entries (std units)")
ax.set_title("30% missing: KNNImputer over n_neighbors")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# KNNImputer is at its best around five to ten neighbours, with an error a
# little lower than the Hopfield imputer's here, and clearly worse with too
# few or too many;
# that best ``n_neighbors`` is known only after trying them on entries
# hidden on purpose. The Hopfield imputer makes the equivalent choice, its
# ``beta``, by itself on the training rows.
#
# What the imputer learned
# ------------------------
# Besides ``beta_``, the default ``feature_weights="auto"`` learns how much
# each feature counts in the similarity, by hiding observed training
# entries and filling them back: features that help to predict the others
# gain weight.
train_missing, _ = hide(X_train, 0.3, seed=(0, 0))
imputer = HopfieldImputer(random_state=0).fit(train_missing)
print(f"beta_ = {imputer.beta_:.3g}, {imputer.n_iter_} epochs of weight training")
names = load_breast_cancer().feature_names
order = np.argsort(imputer.feature_weights_)
fig, ax = plt.subplots(figsize=(6, 6))
ax.barh(names[order], imputer.feature_weights_[order], color="tab:blue")
ax.axvline(1.0, color="black", ls="--", lw=1)
ax.set_xlabel("learned feature weight (mean 1)")
ax.set_title("HopfieldImputer: feature weights at 30% missing")
ax.tick_params(axis="y", labelsize=7)
fig.tight_layout()
plt.show()
