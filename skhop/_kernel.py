"""Stage I of kernelized Hopfield models: fit a feature map that separates the memory.

The Torch pieces (the :class:`~skhop.nn.kernel.FeatureMap`, the separation
losses, auto beta and the routing test) live in :mod:`skhop.nn.kernel`;
this module holds the one step that needs the shared training loop
(:func:`skhop._training.train`), which nothing in :mod:`skhop.nn` may
import. Stage I runs over shuffled batches of ``batch_size`` stored patterns
(1024 by default); the loss of a batch uses the pairs inside it, so each
step forms a ``batch_size x batch_size`` matrix and never ``M x M``. Callers
validate the settings (the estimators' parameter constraints) and wrap the
call in :func:`skhop._base.seeded` and :func:`skhop._base.torch_threads`.
"""

import torch

from .nn.kernel import (
    AUTO_BETA_EPS,
    AUTO_BETA_MAX_LOGIT,
    SCALE_LEVEL,
    SEPARATION_LOSSES,
    FeatureMap,
    auto_beta,
    initial_weight,
    min_separation,
    nearest_rival,
    scale_statistic,
    scale_threshold,
    separation_loss_value,
)

__all__ = [
    "fit_feature_map",
    "FeatureMap",
    "min_separation",
    "nearest_rival",
    "auto_beta",
    "scale_statistic",
    "scale_threshold",
    "separation_loss_value",
    "SEPARATION_LOSSES",
    "SCALE_LEVEL",
    "AUTO_BETA_EPS",
    "AUTO_BETA_MAX_LOGIT",
]


def fit_feature_map(
    memories,
    *,
    feature_dim=None,
    separation_loss="lse",
    tau=0.1,
    max_iter=100,
    learning_rate=0.01,
    batch_size=None,
    tol=1e-6,
    n_iter_no_change=10,
    verbose=0,
):
    """Stage I: fit a :class:`FeatureMap` that separates the stored patterns.

    Parameters
    ----------
    memories : Tensor of shape (M, d)
        Stored patterns, finite.
    feature_dim : int or None
        Output dimension ``k``; ``None`` means ``d``.
    separation_loss : {"lse", "uniformity", "min_sep"} or None
        The loss minimised (see the module doc). ``None`` skips the
        optimisation and returns the initial map.
    tau : float
        Temperature of ``"lse"`` and ``"uniformity"``.
    max_iter : int
        Epochs over the memories (one step per batch of ``batch_size``).
    learning_rate : float
        AdamW learning rate (no weight decay: the losses are scale-free).
    batch_size : int or None
        Stored patterns per Stage I batch; the loss of a batch is computed
        over the pairs inside it. ``None`` means ``min(M, 1024)`` (full batch
        up to 1024 memories).
    tol, n_iter_no_change : float, int
        Stop once the epoch loss has not dropped by ``tol`` for
        ``n_iter_no_change`` epochs.
    verbose : int
        Print one line per epoch when > 0.

    Returns
    -------
    feature_map : FeatureMap
        In eval mode, on the memories' device and dtype.
    loss_curve : list of float
        Loss per epoch (empty without Stage I).

    Notes
    -----
    The initial weight, and the whole map when ``separation_loss`` is None,
    is the identity when ``k == d`` (so Stage II compares raw inputs), the
    top-``k`` principal directions of the (uncentred) memories when
    ``k < d`` (the linear map that keeps most of their energy), and a random
    orthogonal map scaled by ``sqrt(k / d)`` when ``k > d`` (the only random
    draw, seeded by the caller).

    Examples
    --------
    >>> import torch
    >>> from skhop._kernel import fit_feature_map
    >>> from skhop.nn.kernel import min_separation
    >>> _ = torch.manual_seed(0)
    >>> X = torch.randn(50, 8) + 2.0  # correlated patterns
    >>> phi, curve = fit_feature_map(X, feature_dim=8, separation_loss="lse", tau=0.1,
    ...                              max_iter=50, learning_rate=0.05)
    >>> bool(min_separation(phi(X).detach()) > min_separation(X))
    True
    """
    from ._training import train

    M, d = memories.shape
    k = d if feature_dim is None else feature_dim
    fmap = FeatureMap(d, k).to(device=memories.device, dtype=memories.dtype)
    with torch.no_grad():
        fmap.weight.copy_(initial_weight(memories, k))
    curve = []
    if separation_loss is not None and M >= 2 and max_iter > 0:
        batch = min(M, 1024) if batch_size is None else max(2, min(batch_size, M))

        def batch_loss(module, x):
            return separation_loss_value(module(x), separation_loss, tau)

        result = train(
            fmap,
            batch_loss,
            (memories,),
            max_iter=max_iter,
            batch_size=batch,
            learning_rate=learning_rate,
            weight_decay=0.0,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            verbose=verbose,
            name="Stage I",
        )
        curve = [float(v) for v in result.loss_curve]
    fmap.eval()
    fmap.requires_grad_(False)
    return fmap, curve
