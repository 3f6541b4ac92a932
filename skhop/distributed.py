"""Scale-out with Dask: sharded memory banks and blockwise inference.

Hyperparameter searches need nothing from here: joblib's Dask backend runs
``GridSearchCV(..., n_jobs=-1)`` on a ``dask.distributed`` cluster as it is.
Start workers with one thread each (``LocalCluster(threads_per_worker=1)``)
and keep the estimators' default ``n_threads=1``, so that workers do not
fight over cores.

This module needs ``dask`` (``pip install "skhop[dask]"``).
"""

import numpy as np
import torch

from .nn.functional import SIMILARITIES, hopfield_partial, merge_partials

__all__ = ["sharded_retrieve", "predict_blocks"]


def _import_dask():
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError("skhop.distributed needs dask: pip install 'dask[distributed]'.") from exc
    return dask


def _as_tensor(a, dtype):
    if isinstance(a, torch.Tensor):
        return a.to(dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def _shard_partial(query, shard, beta, similarity, chunk_size, n_threads):
    """Runs on a worker: the (max, sum, acc) partial of one shard, as numpy arrays."""
    from ._base import torch_threads

    memory, values = shard if isinstance(shard, tuple) else (shard, None)
    with torch_threads(n_threads), torch.no_grad():
        q = _as_tensor(query, torch.float32)
        x = _as_tensor(memory, torch.float32)
        v = None if values is None else _as_tensor(values, torch.float32)
        parts = hopfield_partial(q, x, v, beta=beta, similarity=similarity, chunk_size=chunk_size)
    return tuple(p.numpy() for p in parts)


def sharded_retrieve(
    query, shards, *, beta=1.0, similarity="dot", separation="softmax", chunk_size=None, n_threads=1
):
    """One softmax retrieval step over a memory bank split into shards.

    Each shard computes its partial log-sum-exp and weighted sum where it
    lives (a Dask worker, when a ``dask.distributed`` client is active); the
    partials are merged exactly, so the result equals
    ``hopfield_retrieve(query, concatenated_memory)`` up to float rounding.

    Parameters
    ----------
    query : array-like of shape (L, d)
    shards : sequence
        Each item is a memory shard of shape (M_i, d), or a ``(memory,
        values)`` pair, as numpy arrays, torch tensors, or Dask futures /
        delayed objects of those (e.g. from ``client.scatter``), so a shard
        never has to travel.
    beta : float, default=1.0
    similarity : {"dot", "cosine", "neg_l2"}, default="dot"
    separation : {"softmax", "softmax1"}, default="softmax"
    chunk_size : int, optional
        Chunk size inside each shard (bounded memory per worker).
    n_threads : int, default=1
        Torch threads per shard computation.

    Returns
    -------
    output : ndarray of shape (L, dv)

    Examples
    --------
    >>> import numpy as np
    >>> from skhop.distributed import sharded_retrieve
    >>> rng = np.random.default_rng(0)
    >>> x, q = rng.normal(size=(100, 8)), rng.normal(size=(3, 8))
    >>> out = sharded_retrieve(q, [x[:50], x[50:]])
    >>> out.shape
    (3, 8)
    """
    dask = _import_dask()
    if separation not in ("softmax", "softmax1"):
        raise ValueError(
            f"separation must be 'softmax' or 'softmax1' for sharded retrieval, got {separation!r}."
        )
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    shards = list(shards)
    if not shards:
        raise ValueError("shards is empty: at least one memory shard is required.")
    query = np.asarray(query, dtype=np.float32)
    if query.ndim != 2:
        raise ValueError(f"query must be 2-D (L, d), got shape {query.shape}.")
    task = dask.delayed(_shard_partial, pure=True)
    parts = dask.compute(*[task(query, s, beta, similarity, chunk_size, n_threads) for s in shards])
    parts = [tuple(torch.from_numpy(p) for p in part) for part in parts]
    if separation == "softmax1":
        m, s, a = parts[0]
        parts.append((torch.zeros_like(m), torch.ones_like(s), torch.zeros_like(a)))
    return merge_partials(parts).numpy()


def predict_blocks(estimator, X, method="predict"):
    """Apply a fitted estimator's method to a Dask array, block by block.

    Rows are processed in the array's row blocks (column blocks are merged
    first), so data larger than memory stream through ``predict``,
    ``predict_proba``, ``decision_function`` or ``transform`` lazily.

    Parameters
    ----------
    estimator : fitted estimator
    X : dask.array.Array of shape (n_samples, n_features)
    method : str, default="predict"

    Returns
    -------
    result : dask.array.Array
        Lazy; call ``.compute()`` (or store it blockwise).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skhop.distributed import predict_blocks
    >>> X = da.random.default_rng(0).normal(size=(1000, 3), chunks=(250, 3))
    >>> clf = LogisticRegression().fit(X[:100].compute(), (X[:100, 0] > 0).compute())
    >>> predict_blocks(clf, X).compute().shape
    (1000,)
    """
    _import_dask()
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array, got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions.")
    fn = getattr(estimator, method, None)
    if fn is None:
        raise ValueError(f"{type(estimator).__name__} has no method {method!r}.")
    X = X.rechunk({1: -1})
    sample = fn(X[:1].compute())
    if sample.ndim == 1:
        return X.map_blocks(fn, dtype=sample.dtype, drop_axis=1)
    width = sample.shape[1]
    return X.map_blocks(fn, dtype=sample.dtype, chunks=(X.chunks[0], (width,)))
