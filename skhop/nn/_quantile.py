"""The quantile-normal input map in torch: each feature through its fitted distribution.

A feature is read through a piecewise-linear distribution function given by
``knots`` (increasing values, the last one repeated as padding) and
``levels`` (its values there), then through the standard normal quantile
function: the rank-Gauss transform of TabR and ModernNCA. Heavy tails and
rare large values then reach a network as moderate ones, and an increasing
affine map of a feature (a standardisation before it) changes nothing but
rounding. The fit of the knots is the caller's (``skhop._quantile`` fits
them in numpy); this is the map, applied piece by piece inside a network.
"""

import torch

__all__ = ["EPS", "quantile_normal"]

# The distribution function is clipped to [EPS, 1 - EPS] before the normal
# quantile function, so a value beyond the training range maps to about +-5.
EPS = 3e-7


def quantile_normal(x, knots, levels):
    """Map each column of ``x`` to a standard normal through its distribution function.

    Between knots the distribution function is linear; below the first knot
    it is the first level, above the last the last level (``numpy.interp``'s
    rule).

    Parameters
    ----------
    x : Tensor of shape (n, n_features)
    knots, levels : Tensor of shape (n_features, k)
        Non-decreasing values of each feature (distinct but for a repeated
        last one) and the distribution function at them.

    Returns
    -------
    z : Tensor of shape (n, n_features), in ``x``'s dtype
    """
    k = knots.shape[1]
    xt = x.T.to(knots.dtype).contiguous()  # (n_features, n): a row per sorted sequence
    hi = torch.searchsorted(knots, xt, right=True)
    lo = (hi - 1).clamp_(0, k - 1)
    hi = hi.clamp_(0, k - 1)
    k_lo, k_hi = knots.gather(1, lo), knots.gather(1, hi)
    l_lo, l_hi = levels.gather(1, lo), levels.gather(1, hi)
    gap = k_hi - k_lo
    t = torch.where(gap > 0, (xt - k_lo) / torch.where(gap > 0, gap, 1), 0)
    p = torch.lerp(l_lo, l_hi, t).clamp_(EPS, 1 - EPS)
    return torch.special.ndtri(p).T.to(x.dtype)
