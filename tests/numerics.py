"""Tolerances for comparing floating-point results computed in different orders.

Two computations of the same sum in different orders (chunked or not, blocked
or not, another CPU's kernels, CUDA) agree only to the rounding of each: for a
sum of ``n`` terms the error of each is at most about ``n * eps`` times the sum
of the terms' magnitudes (Higham, "Accuracy and Stability of Numerical
Algorithms", sec. 4.2), so two of them differ by at most twice that. Exact
equality is asserted only where the code guarantees it: the same path on the
same input (refits, pickles, clones).
"""

import numpy as np
import torch


def eps(dtype):
    """Machine epsilon of a torch or numpy floating dtype."""
    if isinstance(dtype, torch.dtype):
        return torch.finfo(dtype).eps
    return float(np.finfo(dtype).eps)


def sum_tol(dtype, n, scale=1.0):
    """``rtol``/``atol`` for two sums of ``n`` terms of magnitude ``scale`` in other orders.

    Returned as a dict for ``torch.testing.assert_close`` and
    ``numpy.testing.assert_allclose``.
    """
    bound = 2.0 * max(int(n), 1) * eps(dtype)
    return {"rtol": bound, "atol": bound * float(scale)}


def retrieval_atol(dtype, memory, query, beta):
    """``atol`` for two float computations of one softmax retrieval step in other orders.

    Each score is a sum over the ``d`` features, off by at most ``sum_tol`` times
    ``max|q| max|x|``; a score error ``delta`` moves the softmax weights by at
    most ``2 beta delta`` in total, so the retrieved pattern, a weighted mean of
    the stored ones, by that times ``max|x_j|`` per coordinate.
    """
    memory, query = np.asarray(memory, dtype=float), np.asarray(query, dtype=float)
    q = np.nanmax(np.linalg.norm(np.nan_to_num(query), axis=1))
    x = np.linalg.norm(memory, axis=1).max()
    delta = sum_tol(dtype, memory.shape[1], scale=q * x)["atol"]
    return 2.0 * beta * delta * np.abs(memory).max()
