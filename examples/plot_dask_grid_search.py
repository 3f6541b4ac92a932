"""
===================================================
Grid search on a Dask cluster, prediction in blocks
===================================================

Cross-validation and grid search are many independent fits: joblib's Dask
backend sends them to the workers of a ``dask.distributed`` cluster without
any change to the sklearn code. Here a local cluster of two single-threaded
worker processes stands in for a real one.

One torch thread per worker process is what keeps workers from fighting over
cores: the skhop estimators default to ``n_threads=1``; if you raise it, keep
``threads_per_worker * n_threads`` at or below the cores of a machine.

Afterwards the fitted pipeline predicts a ``dask.array`` block by block with
:func:`skhop.distributed.predict_blocks`, so the data never has to fit in the
memory of one process.
"""

# %%
import os
import time

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhop import HopfieldClassifier
from skhop.distributed import predict_blocks

try:
    import dask.array as da
    from distributed import Client, LocalCluster
except ImportError as exc:  # pragma: no cover - a clear message for users
    raise SystemExit("This example needs dask: pip install 'skhop[dask]'") from exc

QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK") == "1"

X, y = load_breast_cancer(return_X_y=True)
pipe = make_pipeline(StandardScaler(), HopfieldClassifier(random_state=0))
grid = {
    "hopfieldclassifier__beta": [0.5, 2.0] if QUICK else [0.25, 1.0, 4.0],
    "hopfieldclassifier__n_memories": [16] if QUICK else [16, 64],
}
cv = 2 if QUICK else 3

# %%
# The search
# ----------
# Inside ``joblib.parallel_backend("dask")`` every fit of the search is a task
# on the cluster. ``n_jobs=-1`` lets joblib use all workers.


def search_on(client):
    t0 = time.perf_counter()
    with joblib.parallel_backend("dask"):
        search = GridSearchCV(pipe, grid, cv=cv, n_jobs=-1).fit(X, y)
    seconds = time.perf_counter() - t0
    n_workers = len(client.scheduler_info()["workers"])
    print(
        f"{len(search.cv_results_['params']) * cv} fits on {n_workers} workers in "
        f"{seconds:.1f} s; best {search.best_params_}, CV accuracy {search.best_score_:.3f}"
    )
    return search


# %%
# The scores over the grid
# ------------------------


def plot_scores(search):
    betas = grid["hopfieldclassifier__beta"]
    sizes = grid["hopfieldclassifier__n_memories"]
    scores = np.asarray(search.cv_results_["mean_test_score"]).reshape(len(betas), len(sizes))
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(scores, cmap="viridis", origin="lower")
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_yticks(range(len(betas)), betas)
    ax.set_xlabel("n_memories")
    ax.set_ylabel("beta")
    for i in range(len(betas)):
        for j in range(len(sizes)):
            ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center", color="w")
    fig.colorbar(im, label="mean CV accuracy")
    ax.set_title("GridSearchCV on a Dask cluster")
    fig.tight_layout()


# %%
# Prediction over a dask array, block by block
# --------------------------------------------
# Each block is predicted by one task on a worker; the result is a lazy dask
# array, computed here only to count the labels.


def predict_big(model):
    rows = 20_000 if QUICK else 100_000
    rng = np.random.default_rng(0)
    X_big = da.from_array(X[rng.integers(0, len(X), rows)], chunks=(5_000, X.shape[1]))
    labels = predict_blocks(model, X_big, "predict")
    counts = np.bincount(labels.compute(), minlength=2)
    print(f"predicted {rows} rows in {X_big.numblocks[0]} blocks: class counts {counts}")


# %%
# Putting it together
# -------------------
# ``processes=True`` gives each worker its own interpreter (and its own torch
# thread pool); ``host="127.0.0.1"`` keeps everything on the loopback device.
# The ``__main__`` guard matters for scripts: worker processes are started by
# importing the main module afresh.
if __name__ == "__main__":
    # (the quick smoke-test run uses in-process workers: the same code path
    # without the process start-up)
    where = dict(processes=False) if QUICK else dict(processes=True, host="127.0.0.1")
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=40, **where
    )
    with cluster, Client(cluster) as client:
        search = search_on(client)
        plot_scores(search)
        predict_big(search.best_estimator_)
