"""Weighted input transforms in numpy: a quantile-normal map of each feature, a scaling.

Each feature is mapped through its weighted empirical distribution function
(midpoint rule over the distinct values, linear in between) and then through
the standard normal quantile function: the rank-Gauss input transform that
TabR and ModernNCA use before a retrieval. A row of weight 2 counts exactly
as two copies of the row, so weights and repetitions give the same transform.
"""

import numpy as np
from scipy.special import ndtri

from .nn._quantile import EPS

__all__ = ["KNOTS", "quantile_fit", "quantile_normal", "weighted_scaling"]

# Distinct values kept per feature (evenly spaced in rank when there are more).
KNOTS = 256


def quantile_fit(X, w):
    """Knots and distribution-function values of each feature.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    w : ndarray of shape (n,)
        Positive weights.

    Returns
    -------
    knots, levels : ndarrays of shape (n_features, k)
        Increasing values of each feature and its weighted distribution
        function at them (rows padded by repeating their last entry).
    """
    total = w.sum()
    knots = np.empty((X.shape[1], KNOTS))
    levels = np.empty((X.shape[1], KNOTS))
    for j in range(X.shape[1]):  # one pass per feature, vectorised over the rows
        values, inverse = np.unique(X[:, j], return_inverse=True)
        mass = np.bincount(inverse.ravel(), weights=w, minlength=len(values))
        cdf = (np.cumsum(mass) - mass / 2) / total
        if len(values) > KNOTS:
            keep = np.unique(np.linspace(0, len(values) - 1, KNOTS).round().astype(int))
            values, cdf = values[keep], cdf[keep]
        k = len(values)
        knots[j, :k], levels[j, :k] = values, cdf
        knots[j, k:], levels[j, k:] = values[-1], cdf[-1]
    return knots, levels


def quantile_normal(X, knots, levels):
    """Map each feature of ``X`` to a standard normal through its fitted distribution.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    knots, levels : ndarrays of shape (n_features, k)
        From :func:`quantile_fit`.

    Returns
    -------
    Z : ndarray of shape (n, n_features)
    """
    Z = np.empty_like(X, dtype=np.float64)
    for j in range(X.shape[1]):
        Z[:, j] = np.interp(X[:, j], knots[j], levels[j])
    return ndtri(np.clip(Z, EPS, 1 - EPS))


def weighted_scaling(X, w):
    """Weighted mean and standard deviation of each column (1 for a constant column)."""
    w = w / w.sum()
    center = w @ X
    var = w @ (X - center) ** 2
    scale = np.sqrt(var)
    scale[~(scale > 1e-12 * np.maximum(1.0, np.abs(center)))] = 1.0
    return center, scale
