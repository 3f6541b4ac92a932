"""Kernel of the kernelized Hopfield models: feature map, separation, beta, routing test.

U-Hop (Wu et al., ICML 2024) and U-Hop+ (Hu et al., NeurIPS 2024) retrieve
with the similarity ``<Phi(memory), Phi(query)>`` of a feature map
``Phi(x) = W x`` trained so the stored patterns are well separated in feature
space (Stage I; the fit itself, which runs the shared training loop, is
:func:`skhop._kernel.fit_feature_map`). The separation losses here all act on
the *normalised* features ``f_i = Phi(x_i) / |Phi(x_i)|`` through their
pairwise cosines ``c_ij = <f_i, f_j>`` (``i != j``); every loss is in cosine
units, smaller is better separated:

- ``"lse"`` (U-Hop+): ``tau * (logsumexp_{i != j}(c_ij / tau) - log n_pairs)``,
  a smooth maximum of the pairwise cosines; as ``tau -> 0`` it tends to the
  largest cosine, i.e. to maximising the smallest pairwise angle (an optimal
  spherical code).
- ``"uniformity"`` (U-Hop's average form): the mean over rows ``i`` of
  ``tau * (logsumexp_{j != i}(c_ij / tau) - log(n - 1))``.
- ``"min_sep"``: the hard maximum ``max_{i != j} c_ij`` (sub-gradient).

:func:`min_separation` and :func:`auto_beta` stream the memory in row blocks
and, beyond ``max_rows`` stored patterns, use a random sample of that many
rows as anchors against all others (an estimate: the true smallest angle can
only be smaller); seed torch around them for reproducible samples.
:func:`scale_statistic` and :func:`scale_threshold` are the likelihood-ratio
test that routes a query to ``"neg_l2"`` or ``"cosine"``. Nothing here
assumes a unit of the data: norms are floored at the dtype's smallest normal
number, never at a fixed constant.
"""

import math

import numpy as np
import torch
from scipy.special import fdtri
from torch import nn

from ._checks import positive_int
from ._rebuild import Rebuildable
from .functional import AUTO_CHUNK_ELEMENTS

__all__ = [
    "FeatureMap",
    "initial_weight",
    "separation_loss_value",
    "min_separation",
    "auto_beta",
    "scale_statistic",
    "likelihood_ratio",
    "scale_threshold",
    "SEPARATION_LOSSES",
    "SCALE_LEVEL",
]

SEPARATION_LOSSES = ("lse", "uniformity", "min_sep")

# ``auto_beta``: a stored pattern keeps all but AUTO_BETA_EPS of its
# attention on itself against its nearest rival (see auto_beta).
AUTO_BETA_EPS = 1e-3
# largest beta * (score range) auto_beta returns, so beta stays finite for duplicates
AUTO_BETA_MAX_LOGIT = 1e4
_EPS = 1e-12
# ``scale_threshold``: the level of the test of the noise model against the scaled
# model; a query the noise model explains goes to the scaled one with probability
# 1 - SCALE_LEVEL (see scale_statistic)
SCALE_LEVEL = 0.999
# residuals below this share of |q|^2 are float32 rounding: both are floored there
_RESIDUAL_FLOOR = 1e-5


class FeatureMap(Rebuildable, nn.Module):
    """Linear feature map ``Phi(x) = x @ W.T`` (no bias).

    Parameters
    ----------
    input_size : int
        Input dimension ``d``.
    output_size : int
        Output dimension ``k``.

    Notes
    -----
    The weight starts as the ``(k, d)`` identity (no random draw, so that
    rebuilding a fitted map never touches the global RNG);
    :func:`fit_feature_map` sets the initial weights it wants.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.kernel import FeatureMap
    >>> FeatureMap(3, 2)(torch.ones(4, 3)).shape
    torch.Size([4, 2])
    """

    def __init__(self, input_size, output_size):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.output_size = positive_int("output_size", output_size)
        self.weight = nn.Parameter(torch.eye(self.output_size, self.input_size))

    def forward(self, x):
        return x @ self.weight.mT

    def extra_repr(self):
        return f"input_size={self.input_size}, output_size={self.output_size}"


def _principal_directions(memories, k, chunk_rows=65536):
    """Top-``k`` right singular vectors of ``memories`` (uncentred), rows of a (k, d) tensor.

    The projection on them keeps the most of the memories' energy and the
    best rank-k approximation of their Gram matrix. Computed from ``X^T X``
    accumulated in row blocks (d x d), so it is cheap for any M.
    """
    d = memories.shape[1]
    gram = torch.zeros(d, d, dtype=torch.float64, device=memories.device)
    for start in range(0, memories.shape[0], chunk_rows):
        block = memories[start : start + chunk_rows].double()
        gram += block.mT @ block
    _, vecs = torch.linalg.eigh(gram)  # ascending eigenvalues
    top = vecs[:, -k:].flip(-1).mT
    return top.to(memories.dtype)


def initial_weight(memories, k):
    """Identity when k == d, principal directions when k < d, random orthogonal rows beyond."""
    d = memories.shape[1]
    if k == d:
        return torch.eye(k, d, dtype=memories.dtype, device=memories.device)
    if k < d:
        return _principal_directions(memories, k)
    w = torch.empty(k, d, dtype=memories.dtype, device=memories.device)
    nn.init.orthogonal_(w)
    return w * math.sqrt(k / d)


def _pair_cosines(z):
    f = z / z.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    c = f @ f.mT
    eye = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
    return c.masked_fill(eye, float("-inf"))


def separation_loss_value(z, loss, tau):
    """The separation loss of feature rows ``z`` (n, k) over their pairs; see the module doc."""
    n = z.shape[0]
    if n < 2:
        return z.sum() * 0.0
    c = _pair_cosines(z)
    if loss == "lse":
        return tau * (torch.logsumexp((c / tau).flatten(), 0) - math.log(n * (n - 1)))
    if loss == "uniformity":
        return tau * (torch.logsumexp(c / tau, dim=1) - math.log(n - 1)).mean()
    if loss == "min_sep":
        return c.max()
    raise ValueError(f"separation_loss must be one of {SEPARATION_LOSSES} or None, got {loss!r}.")


def _anchor_rows(M, max_rows, device):
    if max_rows is None or M <= max_rows:
        return None
    return torch.randperm(M, device=device)[:max_rows].sort().values


def nearest_rival(features, similarity, *, max_rows=4096, chunk_size=None):
    """Per anchor row: its self-score and its best score against any *other* row.

    Returns ``(self_score, rival_score)``, each of shape (n_anchors,), for
    ``similarity`` in {"cosine", "dot", "neg_l2"}. Anchors are all rows up to
    ``max_rows``, a random sample beyond. Streams the rows in blocks.
    """
    M = features.shape[0]
    x = features.detach()
    if similarity == "cosine":
        x = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    anchors = _anchor_rows(M, max_rows, x.device)
    a_idx = torch.arange(M, device=x.device) if anchors is None else anchors
    # blocks of (anchor rows) x (memory columns), at most AUTO_CHUNK_ELEMENTS scores each
    a_block = min(a_idx.shape[0], 1024)
    c_block = chunk_size or max(1, AUTO_CHUNK_ELEMENTS // max(a_block, 1))
    xx = (x * x).sum(-1)
    self_scores, rivals = [], []
    for start in range(0, a_idx.shape[0], a_block):
        idx = a_idx[start : start + a_block]
        q = x[idx]
        own = torch.empty(idx.shape[0], dtype=x.dtype, device=x.device)
        best = torch.full_like(own, float("-inf"))
        for c0 in range(0, M, c_block):
            c1 = min(c0 + c_block, M)
            s = q @ x[c0:c1].mT
            if similarity == "neg_l2":
                s = (-0.5 * (xx[idx, None] - 2.0 * s + xx[None, c0:c1])).clamp_max(0.0)
            rows = torch.nonzero((idx >= c0) & (idx < c1)).squeeze(1)
            if rows.numel():
                cols = idx[rows] - c0
                own[rows] = s[rows, cols]
                s[rows, cols] = float("-inf")  # in place: no second block allocated
            best = torch.maximum(best, s.amax(dim=1))
        self_scores.append(own)
        rivals.append(best)
    return torch.cat(self_scores), torch.cat(rivals)


def min_separation(features, *, max_rows=4096, chunk_size=None, rival=None):
    """Smallest pairwise angle (radians) between the normalised rows of ``features``.

    The spherical-code figure of U-Hop+: larger is better separated. ``pi``
    for a single row, 0 for duplicate (or zero) rows. Exact up to
    ``max_rows`` rows; beyond, estimated from a random sample of that many
    anchor rows against all rows (the true minimum can only be smaller).
    ``rival`` may pass ``nearest_rival(features, "cosine")`` computed already.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.kernel import min_separation
    >>> round(min_separation(torch.eye(3)), 4)
    1.5708
    """
    if features.shape[0] < 2:
        return math.pi
    if rival is None:
        rival = nearest_rival(features, "cosine", max_rows=max_rows, chunk_size=chunk_size)
    c = float(rival[1].max().clamp(-1.0, 1.0))
    return math.acos(c)


def auto_beta(
    features, similarity, *, eps=AUTO_BETA_EPS, max_rows=4096, chunk_size=None, rival=None
):
    """Inverse temperature that makes the stored patterns near-fixed points.

    Rule: queried with a stored pattern, the softmax must put at most
    ``eps`` of its weight on the other ``M - 1`` patterns even if all of
    them scored as high as the nearest rival. With ``gap`` the smallest
    margin between a pattern's score with itself and with its nearest rival
    (``1 - cos`` of the smallest angle for ``"cosine"``; the Ramsauer et al.
    separation ``|x_i|^2 - max_j <x_i, x_j>`` for ``"dot"``; half the
    smallest squared distance for ``"neg_l2"``)::

        beta = log((M - 1) / eps) / gap

    A gap that is zero or negative (duplicates, or a pattern not separable
    by the dot product) is floored at ``1e-3`` times the score range, and
    ``beta`` is capped so that ``beta * score range <= 1e4``; the result is
    finite and positive. One pattern gives ``log(1 / eps) / range``.

    The promise therefore holds while the cap is not reached, that is when
    ``gap >= log((M - 1) / eps) * 1e-4 * range`` (for ``M = 1000`` and
    ``eps = 1e-3``: a gap of at least 0.14% of the score range). Closer
    pairs (near-duplicates) share their attention: a stored pattern queried
    keeps only ``1 / (1 + exp(-1e4 * gap / range))`` of it against such a
    rival, one half for exact duplicates. Scaling ``features`` by ``c``
    divides the result by ``c**2`` (``"dot"``, ``"neg_l2"``) or leaves it
    unchanged (``"cosine"``).
    Same sampling as :func:`min_separation` beyond ``max_rows`` rows;
    ``rival`` may pass ``nearest_rival(features, similarity)`` computed already.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.kernel import auto_beta
    >>> round(auto_beta(torch.eye(3), "cosine"), 2)
    7.6
    """
    if similarity not in ("cosine", "dot", "neg_l2"):
        raise ValueError(f"similarity must be 'cosine', 'dot' or 'neg_l2', got {similarity!r}.")
    M = features.shape[0]
    if similarity == "cosine":
        scale = 2.0
    elif similarity == "dot":
        scale = float((features.detach() ** 2).sum(-1).max())
    else:
        scale = 2.0 * float((features.detach() ** 2).sum(-1).max())
    scale = scale if scale > 0 else 1.0  # all-zero patterns: any beta; no unit assumed
    if M < 2:
        return math.log(1.0 / eps) / scale
    if rival is None:
        rival = nearest_rival(features, similarity, max_rows=max_rows, chunk_size=chunk_size)
    own, rival = rival
    gap = float((own - rival).min())
    gap = max(gap, 1e-3 * scale)
    beta = math.log((M - 1) / eps) / gap
    return float(min(beta, AUTO_BETA_MAX_LOGIT / scale))


def scale_statistic(query, keys, *, observed=None, exclude=None, block_size=None):
    """Likelihood-ratio statistic of the scaled model against the noise model, per query.

    Two explanations of a query ``q`` by a stored pattern ``m``:

    - noise: ``q = m + e``, residual ``r_noise = min_m |q - m|^2`` (the
      ranking of ``"neg_l2"`` retrieval);
    - scaled: ``q = s m + e`` with a free scale ``s >= 0`` (an occluded,
      zero-filled or dimmed query), residual
      ``r_scaled = min_m (|q|^2 - max(<q, m>, 0)^2 / |m|^2)`` (the ranking
      of ``"cosine"`` retrieval).

    With Gaussian ``e`` of unknown variance over ``n`` compared coordinates,
    twice the log-likelihood ratio is ``n * log(r_noise / r_scaled)`` (never
    negative up to rounding: ``s = 1`` is one of the scaled fits). The scaled
    model has one extra parameter; when the noise model holds, for one
    stored pattern, ``(n - 1) (r_noise / r_scaled - 1)`` follows an F law
    with ``(1, n - 1)`` degrees of freedom, so the statistic tends to a
    chi-square law with one degree of freedom; :func:`scale_threshold` is
    its quantile.

    Both minima come from the products ``<q, m>`` and the norms ``|m|^2``:
    one pass streams the keys in blocks of ``block_size`` rows and keeps only
    the running best of each model (a maximum, no index: cheaper than a
    top-k of the scores).

    Parameters
    ----------
    query : Tensor of shape (..., L, k)
        Queries, zero at unobserved entries.
    keys : Tensor of shape (..., M, k)
        Stored patterns (batch dimensions broadcast with ``query``'s).
    observed : Tensor of shape (..., L, k), optional
        1 where a query entry is observed, 0 where not: residuals are taken
        over the observed coordinates (``|m|^2`` restricted to them) and
        ``n`` is their count. ``None``: all ``k`` coordinates.
    exclude : bool Tensor broadcastable to (..., L, M), optional
        ``True`` marks stored patterns a query must not be compared with.
    block_size : int, optional
        Stored patterns per block; ``None`` bounds a block at about
        ``2**22`` scores.

    Returns
    -------
    statistic : Tensor of shape (..., L)
        ``n * log(r_noise / r_scaled)``, each residual floored at
        ``1e-5 |q|^2`` (float32 rounding), so a query equal to a stored
        pattern scores 0. 0 for a query with nothing observed or with
        ``|q| = 0``.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.kernel import scale_statistic, scale_threshold
    >>> _ = torch.manual_seed(0)
    >>> X = torch.rand(50, 64)
    >>> dimmed = 0.3 * X[:2]                      # a free scale explains these
    >>> noisy = X[:2] + 0.2 * torch.randn(2, 64)  # additive noise explains these
    >>> stat = scale_statistic(torch.cat([dimmed, noisy]), X)
    >>> (stat > scale_threshold(64)).tolist()
    [True, True, False, False]
    """
    M, L = keys.shape[-2], query.shape[-2]
    tiny = torch.finfo(query.dtype).tiny
    if observed is None:
        half_kk = 0.5 * (keys * keys).sum(-1).unsqueeze(-2)  # (..., 1, M)
        inv = (2.0 * half_kk).clamp_min(tiny).rsqrt()
    block = block_size or max(256, AUTO_CHUNK_ELEMENTS // max(L, 1))
    # running best of <q, m> - |m|^2 / 2 = (|q|^2 - |q - m|^2) / 2 and of <q, m> / |m|
    best_noise = best_scaled = None
    for start in range(0, M, block):
        stop = min(start + block, M)
        k = keys[..., start:stop, :]
        dot = query @ k.mT
        if observed is None:
            hk, ik = half_kk[..., start:stop], inv[..., start:stop]
        else:
            hk = 0.5 * (observed @ (k * k).mT)
            ik = (2.0 * hk).clamp_min(tiny).rsqrt()
        noise = dot - hk
        dot.mul_(ik)
        if exclude is not None:
            gone = exclude[..., start:stop]
            noise.masked_fill_(gone, float("-inf"))
            dot.masked_fill_(gone, float("-inf"))
        noise, scaled = noise.amax(-1), dot.amax(-1)
        if best_noise is None:
            best_noise, best_scaled = noise, scaled
        else:
            best_noise = torch.maximum(best_noise, noise)
            best_scaled = torch.maximum(best_scaled, scaled)
    qq = (query * query).sum(-1)
    n = query.new_tensor(float(query.shape[-1])) if observed is None else observed.sum(-1)
    return likelihood_ratio(qq, best_noise, best_scaled, n)


def likelihood_ratio(qq, best_noise, best_scaled, n):
    """:func:`scale_statistic` from the running best of each model, per query.

    ``qq`` is ``|q|^2`` (over the compared coordinates), ``best_noise`` the
    largest ``<q, m> - |m|^2 / 2``, ``best_scaled`` the largest
    ``<q, m> / |m|`` and ``n`` the number of compared coordinates.
    """
    tiny = torch.finfo(qq.dtype).tiny
    floor = (_RESIDUAL_FLOOR * qq).clamp_min(tiny)
    r_noise = torch.maximum(qq - 2.0 * best_noise, floor)
    r_scaled = torch.maximum(qq - best_scaled.clamp_min(0.0).square(), floor)
    stat = n * torch.log(r_noise / r_scaled)
    return stat.masked_fill((qq <= tiny) | (n == 0), 0.0)


def scale_threshold(n, level=SCALE_LEVEL):
    """Threshold of :func:`scale_statistic` for ``n`` compared coordinates.

    The exact test for one stored pattern: the ``level`` quantile ``f`` of
    the F law with ``(1, n - 1)`` degrees of freedom, in the units of the
    statistic, ``n * log(1 + f / (n - 1))``. It tends to the chi-square(1)
    quantile (10.83 at ``level=0.999``) as ``n`` grows: 11.09 for ``n=64``,
    10.85 for ``n=784``; it is infinite for ``n < 2``, where a free scale
    fits any query.

    Parameters
    ----------
    n : int, float or Tensor
        Number of compared coordinates, per query.
    level : float, default=0.999
        Probability that a query the noise model explains stays with it.

    Returns
    -------
    threshold : Tensor of the shape of ``n``, float64

    Examples
    --------
    >>> from skhop.nn.kernel import scale_threshold
    >>> [round(float(scale_threshold(n)), 2) for n in (64, 784)]
    [11.09, 10.85]
    """
    n = torch.as_tensor(n, dtype=torch.float64)
    counts = n.cpu().numpy()
    dof = np.maximum(counts - 1.0, 1.0)
    t = counts * np.log1p(fdtri(1.0, dof, level) / dof)
    t = np.where(counts < 2, np.inf, t)
    return torch.from_numpy(np.asarray(t, dtype=np.float64)).to(n.device)
