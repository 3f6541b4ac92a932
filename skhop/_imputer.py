"""HopfieldImputer: fill missing entries by Hopfield retrieval over the training rows.

Every training row is a stored pattern, with its own missing entries marked.
A row to complete is the state pattern: it is compared with each stored
pattern over the coordinates observed in both (nan-Euclidean, masked cosine
or rescaled dot product), the scores go through the separation function
(softmax by default), and each missing entry is read out as the
attention-weighted mean of that feature over the stored patterns that
observe it, so a missing memory entry never votes. All of it is matrix work
over blocks of rows.

The core's :func:`skhop.nn.functional.hopfield_retrieve` masks the query
only; the scores here also mask the stored rows (and weigh the features),
and reduce to the core's masked-query retrieval when the stored rows are
complete and the weights uniform (tested).
"""

import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, MissingValues, StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted
from torch import nn

from ._base import (
    VersionedStateMixin,
    check_n_threads,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
    validate_data,
)
from ._kernel import SEPARATION_LOSSES, fit_feature_map
from .nn._separation import separate
from .nn.functional import similarity_scores

__all__ = ["HopfieldImputer"]

# Score blocks of at most this many elements (rows x memories) when
# ``chunk_size`` is None: 4 Mi float32 = 16 MiB per block.
_BLOCK_ELEMENTS = 1 << 22


def _masked_scores(q, oq, mem, similarity, beta=1.0):
    """Similarity of state rows and stored rows over the coordinates observed in both.

    ``q`` (L, d) holds 0 at unobserved entries and ``oq`` (L, d) is 1 where
    observed; ``mem`` holds the stored rows ``x`` (M, d) with 0 at missing
    entries, premultiplied by the feature weights ``w`` (d,):
    ``xw = x * w``, ``ow = observed * w``, ``xxw = x * x * w``, and
    ``total = sum(w)``. With ``W`` the summed weight of the coordinates
    observed in both rows, ``"neg_l2"`` is
    ``-0.5 * total / W * sum_c w_c (q_c - x_c)^2`` over those coordinates
    (with unit weights, the scaling of
    :func:`sklearn.metrics.pairwise.nan_euclidean_distances`), ``"cosine"``
    the weighted cosine of the two rows restricted to them and ``"dot"``
    their weighted dot product times ``total / W``. Pairs with no common
    coordinate score ``-inf``; the scores are multiplied by ``beta`` before
    that mask (so its gradient stays finite).
    """
    dot = q @ mem.xw.mT
    if mem.complete:
        w = mem.ow[0]
        n_c = (oq @ w).unsqueeze(-1)
        qq = ((q * q) @ w).unsqueeze(-1)
    else:
        n_c = oq @ mem.ow.mT
        qq = (q * q) @ mem.ow.mT
    none = n_c <= 0
    # (no inf where nothing is in common: those pairs are masked, and gradients stay finite)
    scale = mem.total / torch.where(none, mem.total, n_c)
    if similarity == "dot":
        s = dot * scale
    else:
        xx = oq @ mem.xxw.mT
        if similarity == "cosine":
            s = dot / (qq * xx).clamp_min(1e-24).sqrt()
        else:
            s = -0.5 * scale * (qq - 2.0 * dot + xx).clamp_min(0.0)
    return (beta * s).masked_fill(none, float("-inf"))


class _Weighted:
    """Stored rows premultiplied by feature weights, as :func:`_masked_scores` needs them."""

    def __init__(self, x, observed, weights, complete):
        self.complete = complete
        if weights is None:
            weights = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
        self.xw = x * weights
        self.ow = observed * weights
        self.xxw = x * self.xw
        self.total = weights.sum()


def _block_rows(n_memories, chunk_size):
    if chunk_size is not None:
        return chunk_size
    return max(1, _BLOCK_ELEMENTS // max(n_memories, 1))


class _Memory:
    """The stored rows on the working device, with what the scores need."""

    def __init__(self, x, missing, fallback, feature_map, similarity, device, dtype, weights=None):
        self.x = torch.as_tensor(x, dtype=dtype, device=device)
        self.fallback = torch.as_tensor(fallback, dtype=dtype, device=device)
        self.observed = (~torch.as_tensor(missing, device=device)).to(dtype)
        self.complete = not bool(missing.any())
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=dtype, device=device)
        self.weighted = _Weighted(self.x, self.observed, weights, self.complete)
        self.similarity = similarity
        self.feature_map = feature_map
        self.features = None
        if feature_map is not None:
            self.feature_map = feature_map.to(device=device, dtype=dtype)
            self.features = self.feature_map(self._filled(self.x, self.observed))

    def _filled(self, q, oq):
        return q + (1.0 - oq) * self.fallback

    def scores(self, q, oq):
        """Scores (L, M) of states ``q`` (0 at unobserved entries, ``oq`` 1 where observed)."""
        if self.feature_map is None:
            return _masked_scores(q, oq, self.weighted, self.similarity)
        # kernel mode: unobserved entries of the state hold the column mean
        return similarity_scores(
            self.feature_map(self._filled(q, oq)), self.features, self.similarity
        )


def _read_out(s, mem, separation, top_k, rows_cols):
    """Fill ``(row, col)`` pairs from scaled scores ``s`` (L, M).

    Each pair reads the attention-weighted mean of column ``col`` over the
    stored rows that observe it (the others are masked out of the
    separation). Returns the fills and a bool tensor marking pairs that had
    no stored row to read from.
    """
    rows, cols = rows_cols
    fills = torch.zeros(rows.shape[0], dtype=s.dtype, device=s.device)
    empty = torch.zeros(rows.shape[0], dtype=torch.bool, device=s.device)
    if rows.numel() == 0:
        return fills, empty
    if separation == "softmax":
        # one pass for all columns: sum_i p_i o_ij x_ij / sum_i p_i o_ij
        top = s.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        p = torch.exp(s - top)
        num = (p @ mem.x)[rows, cols]
        den = (p @ mem.observed)[rows, cols]
        ok = den > 0
        fills = torch.where(ok, num / den.clamp_min(torch.finfo(den.dtype).tiny), fills)
        # underflow (the largest weights on rows lacking the column): exact per column
        redo = torch.nonzero(~ok).squeeze(1)
    else:
        redo = torch.arange(rows.shape[0], device=s.device)
    if redo.numel():
        r_rows, r_cols = rows[redo], cols[redo]
        for col in torch.unique(r_cols).tolist():
            pick = torch.nonzero(r_cols == col).squeeze(1)
            sc = s[r_rows[pick]]
            lacking = (mem.observed[:, col] < 0.5) | torch.isneginf(sc)
            w = separate(
                sc.masked_fill(lacking, float("-inf")), separation, mask=lacking, top_k=top_k
            )
            total = w.sum(-1)
            val = (w @ mem.x[:, col]) / total.clamp_min(torch.finfo(total.dtype).tiny)
            fills[redo[pick]] = torch.where(total > 0, val, torch.zeros_like(val))
            empty[redo[pick]] = ~(total > 0)
    return fills, empty


def _scaled(s, beta, similarity, lacking=None):
    """``beta * s``, or with ``lacking`` (True = not a candidate) the sharpened scores.

    Sharpening raises each row's beta to ``1 / D1`` when that is larger, ``D1``
    being the distance (``-s`` for ``"neg_l2"``, ``1 - s`` for ``"cosine"``)
    to the nearest candidate stored row: a row that lies much closer to one
    stored row than the temperature is retrieved from it (an exact match is
    recalled exactly), any other row is completed at ``beta``.
    """
    if lacking is None or similarity == "dot":
        return beta * s
    dist = -s if similarity == "neg_l2" else 1.0 - s
    d1 = dist.masked_fill(lacking, float("inf")).amin(-1, keepdim=True)
    b = torch.clamp(1.0 / d1.clamp_min(1e-30), min=beta, max=1e30)
    return b * s


def _complete(z, missing, mem, beta, sharpen, separation, top_k, n_steps, block_rows):
    """Fill the missing entries of working-space rows ``z`` (0 at missing entries) in place."""
    L = z.shape[0]
    for start in range(0, L, block_rows):
        q = z[start : start + block_rows]
        miss = missing[start : start + block_rows]
        rows, cols = torch.nonzero(miss, as_tuple=True)
        if rows.numel() == 0:
            continue
        oq = (~miss).to(q.dtype)
        state = q
        for step in range(n_steps):
            s = mem.scores(state, oq)
            lacking = None
            if sharpen and step == 0:
                # candidates: stored rows that observe a missing entry of the row
                lacking = ((miss.to(s.dtype) @ mem.observed.mT) <= 0) | torch.isneginf(s)
            s = _scaled(s, beta, mem.similarity, lacking)
            fills, empty = _read_out(s, mem, separation, top_k, (rows, cols))
            # nothing to read from: the column mean
            fills = torch.where(empty, mem.fallback[cols], fills)
            state = q.index_put((rows, cols), fills)
            oq = torch.ones_like(oq)
        z[start : start + block_rows] = state
    return z


def _select_beta(mem, scale_grid, separation, top_k, block_rows, n_rows, n_repeats, rng):
    """Self-supervised choice of beta: hide one observed entry per sampled row, fill it back.

    Each sampled stored row loses one random observed entry, is compared with
    every *other* stored row, and the hidden entry is read out at every beta
    of the grid, without and with sharpening (see :func:`_scaled`); returns
    the mean squared errors (2, n_grid) and the median absolute score (the
    unit of the grid).
    """
    x, observed = mem.x, mem.observed
    M = x.shape[0]
    n_obs = observed.sum(-1)
    eligible = torch.nonzero(n_obs >= 2).squeeze(1).cpu().numpy()
    if eligible.size == 0 or M < 2:
        return None, None
    errors = torch.zeros(2, len(scale_grid), dtype=torch.float64)
    count = 0
    unit = None
    for _ in range(n_repeats):
        take = eligible if eligible.size <= n_rows else rng.choice(eligible, n_rows, replace=False)
        obs_np = observed[torch.as_tensor(take, device=x.device)].cpu().numpy() > 0.5
        # one observed column per row, uniformly at random (vectorised)
        keys = rng.random_sample(obs_np.shape) * obs_np
        hide = keys.argmax(1)
        idx = torch.as_tensor(take, device=x.device)
        col = torch.as_tensor(hide, device=x.device)
        for start in range(0, idx.shape[0], block_rows):
            r = idx[start : start + block_rows]
            c = col[start : start + block_rows]
            n = r.shape[0]
            ar = torch.arange(n, device=x.device)
            oq = observed[r].clone()
            oq[ar, c] = 0.0
            q = x[r] * oq
            s = mem.scores(q, oq)
            lacking = observed[:, c].mT < 0.5  # (n, M): rows that do not observe the column
            lacking[ar, r] = True  # not itself
            lacking |= torch.isneginf(s)
            s = s.masked_fill(lacking, float("-inf"))
            if unit is None:
                finite = s[torch.isfinite(s)]
                if finite.numel():
                    unit = float(finite.abs().median().clamp_min(1e-12))
            if unit is None:
                continue
            values = x[:, c].mT  # (n, M)
            truth = x[r, c]
            has = torch.isfinite(s).any(-1)
            for t, a in enumerate(scale_grid):
                for sharp in (0, 1):
                    sc = _scaled(s, a / unit, mem.similarity, lacking if sharp else None)
                    w = separate(sc, separation, mask=lacking, top_k=top_k)
                    fill = (w * values).sum(-1) / w.sum(-1).clamp_min(1e-30)
                    fill = torch.where(has, fill, mem.fallback[c])
                    errors[sharp, t] += float(((fill - truth) ** 2).sum())
            count += n
    if unit is None or count == 0:
        return None, None
    return (errors / count).numpy(), unit


class _MetricNet(nn.Module):
    """Learnable log feature weights and log inverse temperature (used inside ``fit`` only)."""

    def __init__(self, n_features, log_beta):
        super().__init__()
        self.log_weights = nn.Parameter(torch.zeros(n_features))
        self.log_beta = nn.Parameter(torch.tensor(float(log_beta)))


def _hide_one(observed_rows):
    """One observed column per row, uniformly at random (torch RNG)."""
    keys = (
        torch.rand(observed_rows.shape, dtype=observed_rows.dtype, device=observed_rows.device)
        * observed_rows
    )
    return keys.argmax(-1)


def _learn_weights(
    x,
    observed,
    complete,
    beta,
    similarity,
    separation,
    top_k,
    *,
    max_iter,
    learning_rate,
    max_rows,
    batch_size,
    learn_beta=True,
):
    """Fit feature weights and beta by self-supervised completion of hidden observed entries.

    Each step hides one observed entry of each row of a batch, fills it from
    the *other* stored rows, and takes a gradient step on the squared error.
    Uses at most ``max_rows`` stored rows (a random sample). Returns the
    weights (normalised to mean 1), the matching beta and the loss curve.
    """
    from ._training import train

    M, d = x.shape
    if M > max_rows:
        keep = torch.randperm(M, device=x.device)[:max_rows].sort().values
        x, observed = x[keep], observed[keep]
        M = max_rows
    eligible = torch.nonzero(observed.sum(-1) >= 2).squeeze(1)
    if eligible.numel() == 0 or M < 2 or max_iter == 0:
        return None, beta, []
    net = _MetricNet(d, math.log(beta)).to(device=x.device, dtype=x.dtype)
    net.log_beta.requires_grad_(learn_beta)

    def batch_loss(module, rows):
        if rows.shape[0] > batch_size:
            # one step per epoch, on a fresh random sample of the rows
            rows = rows[torch.randperm(rows.shape[0], device=x.device)[:batch_size]]
        n = rows.shape[0]
        ar = torch.arange(n, device=x.device)
        col = _hide_one(observed[rows])
        oq = observed[rows].clone()
        oq[ar, col] = 0.0
        w = module.log_weights.exp()
        mem = _Weighted(x, observed, w / w.mean(), complete)
        s = _masked_scores(x[rows] * oq, oq, mem, similarity, beta=module.log_beta.exp())
        lacking = observed[:, col].mT < 0.5
        lacking[ar, rows] = True  # not itself
        lacking = lacking | torch.isneginf(s)
        a = separate(s.masked_fill(lacking, float("-inf")), separation, mask=lacking, top_k=top_k)
        total = a.sum(-1)
        fill = (a * x[:, col].mT).sum(-1) / total.clamp_min(torch.finfo(total.dtype).tiny)
        has = (~lacking).any(-1)
        err = (fill - x[rows, col]) ** 2
        return torch.where(has, err, torch.zeros_like(err)).sum() / has.sum().clamp_min(1)

    with torch.enable_grad():
        result, _ = train(
            net,
            batch_loss,
            (eligible,),
            max_iter=max_iter,
            batch_size=eligible.numel(),
            learning_rate=learning_rate,
            weight_decay=0.0,
            tol=1e-4,
            n_iter_no_change=_TRAIN_PATIENCE,
            name="feature weights",
        )
    w = net.log_weights.detach().exp()
    beta = float(net.log_beta.detach().exp())
    return (w / w.mean()).cpu().numpy().astype(np.float64), beta, list(result.loss_curve)


def _is_nan(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


# beta = a / (median |score|) for a on this grid when beta="auto"
_BETA_GRID = tuple(2.0**k for k in range(-2, 11))
_DEFAULT_BETA_SCALE = 4.0
# sharpening is kept unless it raises the self-supervised error by more than this share
_SHARPEN_TOL = 0.01
# rows sampled (per repeat) by the self-supervised choice of beta
_SELECT_ROWS = 512
_SELECT_REPEATS = 2
# training of the feature weights: at most this many rows, in batches of this many
_TRAIN_ROWS = 4096
_TRAIN_BATCH = 256
# steps without a new best training loss before the training of the weights stops
_TRAIN_PATIENCE = 10
# feature_weights="auto" learns the weights up to this many features
_AUTO_LEARN_MAX_FEATURES = 256


class HopfieldImputer(VersionedStateMixin, TransformerMixin, BaseEstimator):
    """Impute missing values by modern Hopfield retrieval over the training rows.

    Every training row is stored as a pattern, with its missing entries
    marked. A row to complete is the state pattern: it is compared with
    every stored pattern over the entries observed in both, the scores
    ``beta * sim`` go through the separation function (softmax by default),
    and each missing entry is filled with the attention-weighted mean of that
    feature over the stored patterns that observe it. A missing entry of a
    stored pattern therefore never votes, and no stored pattern needs to be
    complete. It is a drop-in replacement for
    :class:`~sklearn.impute.KNNImputer` in which the hard choice of
    ``n_neighbors`` equally weighted donors becomes a smooth, distance-weighted
    attention, whose temperature and per-feature weights are fitted to the
    training data by self-supervision: observed entries are hidden and
    filled back from the other rows.

    Parameters
    ----------
    missing_values : int, float or np.nan, default=np.nan
        The placeholder for the missing values; all its occurrences are
        imputed.
    beta : float or "auto", default="auto"
        Inverse temperature: the scores are ``beta * sim``. ``"auto"``
        chooses it from the training data by self-supervision: one observed
        entry of each of up to 512 sampled training rows (twice over) is
        hidden and filled back from the other rows at every
        ``beta = a / u`` with ``a`` in ``2**-2 ... 2**10`` and ``u`` the
        median absolute score; the ``beta`` with the smallest mean squared
        error is kept. The same search decides on *sharpening* (see Notes).
        With learned ``feature_weights`` the training then refines ``beta``
        together with the weights. No target values and no test data are
        used. A number is used as given, without sharpening or training of
        ``beta``.
    similarity : {"neg_l2", "cosine", "dot"}, default="neg_l2"
        Comparison over the entries observed in both rows: ``"neg_l2"`` is
        ``-0.5 * d / n * sum (q_c - x_c)**2`` over the ``n`` common entries
        of the ``d`` features (the scaling of
        :func:`~sklearn.metrics.pairwise.nan_euclidean_distances`),
        ``"cosine"`` the cosine of the two rows restricted to the common
        entries, ``"dot"`` their dot product times ``d / n``.
    separation : {"softmax", "sparsemax", "entmax15", "topk"}, default="softmax"
        Map from scores to retrieval weights (see :func:`skhop.nn.separate`).
        ``"topk"`` with ``top_k=k`` is a softmax over the ``k`` best stored
        rows that observe the feature being filled.
    top_k : int or None, default=None
        Number of stored rows kept by ``separation="topk"`` (required there).
    n_steps : int, default=1
        Retrieval steps. After the first, the completed row is the new state
        and is compared with the stored rows over all its entries; observed
        entries are never changed.
    feature_weights : {"auto", "learned", "uniform"}, default="auto"
        Weights of the features in the similarity. ``"learned"`` fits one
        positive weight per feature, together with ``beta``, by
        self-supervision: observed training entries are hidden one per row
        and filled back from the other rows, and the weights and ``beta``
        take AdamW steps on the squared error (``max_iter`` steps, each on
        a random batch of 256 rows, with ``learning_rate``; at most 4,096
        training rows take part). Features that help to predict the others gain weight,
        noise features lose it. ``"uniform"`` weighs every feature alike
        (the metric of :class:`~sklearn.impute.KNNImputer`). ``"auto"`` is
        ``"learned"`` unless a Stage I feature map is used (``feature_dim``
        or ``separation_loss`` set), where it is ``"uniform"``.
    standardize : bool, default=True
        Compare rows after scaling each feature to zero mean and unit
        variance with the statistics of its observed training entries, so
        that no feature dominates the similarity by its unit alone. The
        filled values are returned in the original units.
    feature_dim : int or None, default=None
        Dimension of a linear feature map ``Phi`` (Stage I, shared with
        :class:`~skhop.KernelHopfieldRetriever`). When ``feature_dim`` or
        ``separation_loss`` is set, rows are compared as
        ``sim(Phi(q), Phi(x))`` with their missing entries held at the
        column mean (and, after the first step, at the current completion);
        ``None`` with ``separation_loss=None`` compares the observed entries
        directly, which is the default.
    separation_loss : {"lse", "uniformity", "min_sep"} or None, default=None
        Stage I loss that separates the stored rows in feature space (see
        :class:`~skhop.KernelHopfieldRetriever`).
    tau : float, default=0.1
        Temperature of the ``"lse"`` and ``"uniformity"`` losses.
    max_iter : int, default=50
        Length of the training in ``fit``: steps of the feature weights
        (one per epoch, training stops early once the loss has not improved
        for 10 of them), or Stage I epochs when a feature map is used.
    learning_rate : float, default=0.05
        AdamW learning rate of that training.
    chunk_size : int or None, default=None
        Rows completed per block; bounds the ``(rows, n_memories)`` score
        block. ``None`` keeps each block under 4 Mi scores.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the features
        with missing values in ``fit``.
    keep_empty_features : bool, default=False
        Keep the features with no observed value in ``fit`` (filled with 0)
        instead of dropping them from the output.
    copy : bool, default=True
        Work on a copy of ``X``; with ``False`` a float array may be filled
        in place.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        Where the retrieval runs.
    n_threads : int or None, default=1
        Torch threads while fitting and transforming (restored afterwards);
        ``None`` leaves torch's setting alone.
    random_state : int, RandomState instance or None, default=None
        Seeds the self-supervised choice of ``beta`` and Stage I.

    Attributes
    ----------
    memories_ : ndarray of shape (n_memories, n_valid_features)
        The stored rows in the working space (standardised when
        ``standardize``), with 0 at their missing entries.
    memory_mask_ : ndarray of shape (n_memories, n_valid_features), dtype bool
        ``True`` where a stored entry is missing.
    statistics_ : ndarray of shape (n_features_in_,)
        Mean of the observed training entries of each feature (NaN for a
        feature with none); rows with nothing to compare are filled with it.
    scale_ : ndarray of shape (n_features_in_,)
        Standard deviation used to standardise each feature (1 when not
        standardising or when it is 0).
    beta_ : float
        The inverse temperature used.
    sharpen_ : bool
        Whether rows much closer to one stored row than the temperature
        ``1 / beta_`` are retrieved from it (see Notes).
    feature_weights_ : ndarray of shape (n_valid_features,)
        Weights of the kept features in the similarity (mean 1; all ones
        with ``"uniform"``).
    loss_curve_ : list of float or None
        Training loss per epoch of the feature weights or of Stage I.
    n_iter_ : int
        Epochs of that training (0 without training).
    beta_grid_ : ndarray of shape (n_candidates,) or None
        Candidate values of ``beta`` tried by ``beta="auto"``.
    beta_errors_ : ndarray of shape (n_candidates,) or None
        Their self-supervised mean squared errors (standardised units).
    feature_map_ : torch.nn.Module or None
        The Stage I feature map, on the CPU, or None.
    indicator_ : MissingIndicator or None
        The indicator appended when ``add_indicator``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    sklearn.impute.KNNImputer : Mean of the ``n_neighbors`` nearest rows.
    sklearn.impute.SimpleImputer : Column statistics.
    sklearn.impute.IterativeImputer : Round-robin regression of each feature.
    skhop.KernelHopfieldRetriever : Retrieval of whole stored patterns.

    Notes
    -----
    Retrieval and imputation pull ``beta`` in opposite directions: a row
    that *is* a stored row with some entries hidden should be recalled
    exactly (a large ``beta``), a new row is best completed from several
    similar rows (a moderate ``beta``). With ``beta="auto"`` each row may
    raise its own inverse temperature to ``1 / D1``, ``D1`` being its
    distance to the nearest stored row that can fill it (``-sim`` for
    ``"neg_l2"``, ``1 - sim`` for ``"cosine"``): rows far closer to one
    stored row than the others are retrieved from it, exact matches are
    recalled exactly, and other rows are completed at ``beta_``. This
    sharpening is kept only if it does not raise the self-supervised error
    by more than 1% (it hurts on data with many duplicate rows, where an
    exact match says little), and is recorded in ``sharpen_``.

    Features with no observed value in ``fit`` are dropped (or kept and
    filled with 0, see ``keep_empty_features``). A row with no observed
    entry, or with no entry in common with any stored row that observes a
    feature, gets that feature's training mean. Observed entries are
    returned unchanged, bit for bit. The work is matrix products over
    blocks of ``chunk_size`` rows, ``O(n_rows * n_memories * n_features)``
    in all, like :class:`~sklearn.impute.KNNImputer`.

    References
    ----------
    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop import HopfieldImputer
    >>> X = [[1.0, 2.0, np.nan], [3.0, 4.0, 3.0], [np.nan, 6.0, 5.0], [8.0, 8.0, 7.0]]
    >>> imputer = HopfieldImputer(random_state=0).fit(X)
    >>> Xt = imputer.transform(X)
    >>> Xt.shape
    (4, 3)
    >>> bool(np.isnan(Xt).any())
    False
    >>> Xt[1].tolist()  # a complete row comes back unchanged
    [3.0, 4.0, 3.0]
    """

    _parameter_constraints: dict = {
        "missing_values": [MissingValues(numeric_only=True)],
        "beta": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "similarity": [StrOptions({"neg_l2", "cosine", "dot"})],
        "separation": [StrOptions({"softmax", "sparsemax", "entmax15", "topk"})],
        "top_k": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "feature_weights": [StrOptions({"auto", "learned", "uniform"})],
        "standardize": ["boolean"],
        "feature_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "separation_loss": [StrOptions(set(SEPARATION_LOSSES)), None],
        "tau": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "copy": ["boolean"],
        "device": "no_validation",
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        missing_values=np.nan,
        beta="auto",
        similarity="neg_l2",
        separation="softmax",
        top_k=None,
        n_steps=1,
        feature_weights="auto",
        standardize=True,
        feature_dim=None,
        separation_loss=None,
        tau=0.1,
        max_iter=50,
        learning_rate=0.05,
        chunk_size=None,
        add_indicator=False,
        keep_empty_features=False,
        copy=True,
        device="cpu",
        n_threads=1,
        random_state=None,
    ):
        self.missing_values = missing_values
        self.beta = beta
        self.similarity = similarity
        self.separation = separation
        self.top_k = top_k
        self.n_steps = n_steps
        self.feature_weights = feature_weights
        self.standardize = standardize
        self.feature_dim = feature_dim
        self.separation_loss = separation_loss
        self.tau = tau
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.chunk_size = chunk_size
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.copy = copy
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan(self.missing_values)
        tags.non_deterministic = False
        return tags

    # ---------------------------------------------------------------- helpers

    def _validate(self, X, *, reset, copy):
        allow = "allow-nan" if _is_nan(self.missing_values) else True
        return validate_data(
            self,
            X,
            dtype=FLOAT_DTYPES,
            ensure_all_finite=allow,
            copy=copy,
            force_writeable=True,
            reset=reset,
        )

    def _missing_mask(self, X):
        if _is_nan(self.missing_values):
            return np.isnan(X)
        return X == self.missing_values

    def _check_options(self):
        if self.separation == "topk" and self.top_k is None:
            raise ValueError(
                "separation='topk' needs top_k, the number of stored rows kept; "
                "set top_k to a positive int."
            )
        if self.feature_weights == "learned" and self._kernel_mode():
            raise ValueError(
                "feature_weights='learned' is not available with a Stage I "
                "feature map (feature_dim or separation_loss set); use "
                "feature_weights='auto' or 'uniform'."
            )
        check_n_threads(self.n_threads)
        return resolve_device(self.device)

    def _kernel_mode(self):
        return self.feature_dim is not None or self.separation_loss is not None

    # -------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the rows of ``X`` and choose ``beta``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, which may have missing entries themselves.
        y : None
            Ignored.

        Returns
        -------
        self : HopfieldImputer
            The fitted imputer.
        """
        device = self._check_options()
        X = self._validate(X, reset=True, copy=False)
        missing = self._missing_mask(X)
        valid = ~missing.all(axis=0)
        observed_count = (~missing).sum(axis=0)
        Xz = np.where(missing, 0.0, X)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = Xz.sum(axis=0) / observed_count
            var = (np.where(missing, 0.0, X - mean) ** 2).sum(axis=0) / observed_count
        scale = np.sqrt(var) if self.standardize else np.ones(X.shape[1])
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        shift = mean if self.standardize else np.zeros(X.shape[1])
        shift = np.where(np.isfinite(shift), shift, 0.0)
        # working space; 0 at missing entries
        memories = np.where(missing, 0.0, (X - shift) / scale)[:, valid]
        memory_mask = missing[:, valid]
        # the column mean in the working space, where unmatched entries are filled
        fallback = np.where(np.isfinite(mean), (mean - shift) / scale, 0.0)[valid]
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)

        dtype = torch.float32
        feature_map, stage_curve, weights = None, None, None
        sharpen = False
        beta_grid = beta_errors = None
        with torch_threads(self.n_threads), seeded(seed, device), torch.no_grad():
            if self._kernel_mode() and memories.shape[1] > 0:
                filled = torch.as_tensor(
                    np.where(memory_mask, fallback, memories), dtype=dtype, device=device
                )
                with torch.enable_grad():
                    feature_map, stage_curve = fit_feature_map(
                        filled,
                        feature_dim=self.feature_dim,
                        separation_loss=self.separation_loss,
                        tau=self.tau,
                        max_iter=self.max_iter,
                        learning_rate=self.learning_rate,
                    )
            if memories.shape[1] > 0:
                mem = _Memory(
                    memories, memory_mask, fallback, feature_map, self.similarity, device, dtype
                )
                block = _block_rows(memories.shape[0], self.chunk_size)
                if self.beta == "auto":
                    errors, unit = _select_beta(
                        mem,
                        _BETA_GRID,
                        self.separation,
                        self.top_k,
                        block,
                        _SELECT_ROWS,
                        _SELECT_REPEATS,
                        rng,
                    )
                    if errors is None:
                        beta = _DEFAULT_BETA_SCALE
                    else:
                        beta_grid = np.asarray(_BETA_GRID) / unit
                        off, on = int(np.argmin(errors[0])), int(np.argmin(errors[1]))
                        # near-ties go to sharpening: stored rows are then recalled exactly
                        sharpen = self.similarity != "dot" and (
                            errors[1, on] <= (1.0 + _SHARPEN_TOL) * errors[0, off]
                        )
                        beta_errors = errors[int(sharpen)]
                        beta = float(beta_grid[on if sharpen else off])
                else:
                    beta = float(self.beta)
                learned = self.feature_weights == "learned" or (
                    self.feature_weights == "auto"
                    and not self._kernel_mode()
                    and memories.shape[1] <= _AUTO_LEARN_MAX_FEATURES
                )
                if learned:
                    weights, beta, stage_curve = _learn_weights(
                        mem.x,
                        mem.observed,
                        mem.complete,
                        beta,
                        self.similarity,
                        self.separation,
                        self.top_k,
                        max_iter=self.max_iter,
                        learning_rate=self.learning_rate,
                        max_rows=_TRAIN_ROWS,
                        batch_size=_TRAIN_BATCH,
                        learn_beta=self.beta == "auto",
                    )
            else:
                beta = 1.0 if self.beta == "auto" else float(self.beta)
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(missing_values=self.missing_values, error_on_new=False)
            indicator.set_output(transform="default")
            indicator.fit(X)

        self.memories_ = memories.astype(np.float32)
        self.memory_mask_ = memory_mask
        self.statistics_ = mean
        self.scale_ = scale
        self._shift = shift
        self._fallback = fallback
        self._valid_mask = valid
        self.beta_ = beta
        self.sharpen_ = bool(sharpen)
        self.beta_grid_ = beta_grid
        self.beta_errors_ = beta_errors
        self.feature_weights_ = np.ones(memories.shape[1]) if weights is None else weights
        self.feature_map_ = None if feature_map is None else feature_map.cpu()
        self.loss_curve_ = stage_curve
        self.n_iter_ = 0 if stage_curve is None else len(stage_curve)
        self.indicator_ = indicator
        return self

    # -------------------------------------------------------------- transform

    def transform(self, X):
        """Fill the missing entries of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to complete.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_output_features)
            ``X`` with its missing entries filled and its observed entries
            unchanged; features with no observed value in ``fit`` are dropped
            unless ``keep_empty_features``, and the indicator columns follow
            when ``add_indicator``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False, copy=self.copy)
        missing = self._missing_mask(X)
        valid = self._valid_mask
        indicator = None if self.indicator_ is None else self.indicator_.transform(X)
        miss_v = missing[:, valid]
        rows = np.flatnonzero(miss_v.any(axis=1))
        if rows.size:
            device = self._check_options()
            shift, scale = self._shift[valid], self.scale_[valid]
            sub = X[rows][:, valid]
            sub_miss = miss_v[rows]
            z = np.where(sub_miss, 0.0, (sub - shift) / scale)
            with torch_threads(self.n_threads), torch.no_grad():
                dtype = torch.float32
                mem = _Memory(
                    self.memories_,
                    self.memory_mask_,
                    self._fallback,
                    self.feature_map_,
                    self.similarity,
                    device,
                    dtype,
                    weights=self.feature_weights_,
                )
                zt = torch.as_tensor(z, dtype=dtype, device=device)
                mt = torch.as_tensor(sub_miss, device=device)
                block = _block_rows(self.memories_.shape[0], self.chunk_size)
                zt = _complete(
                    zt,
                    mt,
                    mem,
                    self.beta_,
                    self.sharpen_,
                    self.separation,
                    self.top_k,
                    self.n_steps,
                    block,
                )
                filled = zt.cpu().numpy().astype(np.float64)
            filled = filled * scale + shift
            r, c = np.nonzero(sub_miss)
            cols = np.flatnonzero(valid)[c]
            X[rows[r], cols] = filled[r, c]
        if self.keep_empty_features:
            X[:, ~valid] = 0.0
            out = X
        else:
            out = X[:, valid]
        if indicator is not None:
            out = np.hstack([out, indicator.astype(out.dtype)])
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_``, else
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The kept features, then the indicator's names when
            ``add_indicator``.
        """
        check_is_fitted(self)
        if input_features is None:
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        else:
            names = np.asarray(input_features, dtype=object)
            if names.shape != (self.n_features_in_,):
                raise ValueError(
                    f"input_features should have length {self.n_features_in_}, got {len(names)}."
                )
            known = getattr(self, "feature_names_in_", None)
            if known is not None and not np.array_equal(known, names):
                raise ValueError("input_features is not equal to feature_names_in_.")
        out = names if self.keep_empty_features else names[self._valid_mask]
        if self.indicator_ is not None:
            out = np.concatenate([out, self.indicator_.get_feature_names_out(names)])
        return np.asarray(out, dtype=object)
