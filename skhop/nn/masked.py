"""Masked retrieval: state rows and stored rows that both have missing entries.

Every stored row is a pattern with its own missing entries marked. A state
row is compared with each stored row over the coordinates observed in both
(nan-Euclidean, masked cosine or rescaled dot product), the scores go
through a separation function, and each missing entry of the state is read
out as the attention-weighted mean of that coordinate over the stored rows
that observe it, so a missing stored entry never votes. All of it is matrix
work over blocks of rows.

:func:`skhop.nn.functional.hopfield_retrieve` masks the query only; the
scores here also mask the stored rows (and weigh the coordinates), and
reduce to the core's masked-query retrieval when the stored rows are
complete and the weights uniform.

The self-supervised fitting of the temperature and of the coordinate
weights hides one observed entry of a stored row and fills it back from the
*other* stored rows: :func:`hide_one` is that step, shared by
:func:`select_beta` and :func:`hidden_entry_loss`.
"""

import numpy as np
import torch
from torch import nn

from ._scores import exp
from ._separation import separate
from .functional import similarity_scores

__all__ = [
    "MaskedMemory",
    "MetricNet",
    "calibrate_draws",
    "complete",
    "hidden_entry_loss",
    "hide_one",
    "masked_scores",
    "select_beta",
    "sharpened",
]

# the unit of the beta grid is the median absolute score over at most this many
# stored rows (a seeded sample of them when there are more)
UNIT_MEMORIES = 8192


def masked_scores(q, oq, mem, similarity, beta=1.0):
    """Similarity of state rows and stored rows over the coordinates observed in both.

    ``q`` (L, d) holds 0 at unobserved entries and ``oq`` (L, d) is 1 where
    observed; ``mem`` is a :class:`WeightedRows`. With ``W`` the summed
    weight of the coordinates observed in both rows and ``total`` the summed
    weight of all, ``"neg_l2"`` is ``-0.5 * total / W * sum_c w_c (q_c -
    x_c)^2`` over those coordinates (with unit weights, the scaling of
    nan-Euclidean distances), ``"cosine"`` the weighted cosine of the two
    rows restricted to them and ``"dot"`` their weighted dot product times
    ``total / W``. Pairs with no common coordinate score ``-inf``; the
    scores are multiplied by ``beta`` before that mask (so its gradient
    stays finite).
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


class WeightedRows:
    """Stored rows premultiplied by coordinate weights, as :func:`masked_scores` needs them."""

    def __init__(self, x, observed, weights, complete):
        self.complete = complete
        if weights is None:
            weights = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
        self.xw = x * weights
        self.ow = observed * weights
        self.xxw = x * self.xw
        self.total = weights.sum()


class MaskedMemory:
    """The stored rows on one device, with what the scores and read-outs need.

    ``x`` (M, d) holds 0 at missing entries and ``observed`` (M, d) is 1
    where observed; ``fallback`` (d,) fills entries nothing can be read
    from. With a ``feature_map`` the rows are compared as
    ``sim(Phi(q), Phi(x))`` with their missing entries at ``fallback``.
    """

    def __init__(self, x, observed, fallback, similarity, weights=None, feature_map=None):
        self.x = x
        self.observed = observed
        self.fallback = fallback
        self.complete = bool(observed.all())
        self.weighted = WeightedRows(x, observed, weights, self.complete)
        self.similarity = similarity
        self.feature_map = feature_map
        self.features = None
        if feature_map is not None:
            self.features = feature_map(self.filled(x, observed))

    def filled(self, q, oq):
        return q + (1.0 - oq) * self.fallback

    def scores(self, q, oq):
        """Scores (L, M) of states ``q`` (0 at unobserved entries, ``oq`` 1 where observed)."""
        if self.feature_map is None:
            return masked_scores(q, oq, self.weighted, self.similarity)
        return similarity_scores(
            self.feature_map(self.filled(q, oq)), self.features, self.similarity
        )


def sharpened(s, beta, similarity, lacking=None):
    """``beta * s``, or with ``lacking`` (True = not a candidate) the sharpened scores.

    Sharpening raises each row's beta to ``1 / D1`` when that is larger, ``D1``
    being the distance (``-s`` for ``"neg_l2"``, ``1 - s`` for ``"cosine"``)
    to the nearest candidate stored row: a row that lies much closer to one
    stored row than the temperature is retrieved from it (an exact match is
    recalled exactly), any other row is completed at ``beta``.
    """
    if lacking is None or similarity == "dot":
        return beta * s
    return _row_beta(s, beta, similarity, lacking) * s


def _row_beta(s, beta, similarity, lacking):
    dist = -s if similarity == "neg_l2" else 1.0 - s
    d1 = dist.masked_fill(lacking, float("inf")).amin(-1, keepdim=True)
    return torch.clamp(1.0 / d1.clamp_min(1e-30), min=beta, max=1e30)


def _draw(p, values, generator):
    """One value per row of ``values`` (n, M), drawn with weights ``p`` (n, M)."""
    pick = torch.multinomial(p, 1, generator=generator).squeeze(1)
    return values.gather(1, pick.unsqueeze(1)).squeeze(1)


def read_out(s, mem, separation, top_k, rows, cols, sample=None, generator=None, noise=None):
    """Fill ``(rows, cols)`` pairs from scaled scores ``s`` (L, M).

    Each pair reads the attention-weighted mean of column ``col`` over the
    stored rows that observe it (the others are masked out of the
    separation), or for the columns where ``sample`` (a bool tensor over the
    columns) is True one stored row's value drawn with those weights, from
    ``generator``, plus Gaussian noise of standard deviation ``noise[col]``
    when ``noise`` (d,) is given. Returns the fills and a bool tensor marking pairs
    that had no stored row to read from.
    """
    fills = torch.zeros(rows.shape[0], dtype=s.dtype, device=s.device)
    empty = torch.zeros(rows.shape[0], dtype=torch.bool, device=s.device)
    if rows.numel() == 0:
        return fills, empty
    if separation == "softmax":
        # one pass for all columns: sum_i p_i o_ij x_ij / sum_i p_i o_ij
        top = s.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        p = exp(s - top)
        num = (p @ mem.x)[rows, cols]
        den = (p @ mem.observed)[rows, cols]
        ok = den > 0
        fills = torch.where(ok, num / den.clamp_min(torch.finfo(den.dtype).tiny), fills)
        # underflow (the largest weights on rows lacking the column): exact per column
        if sample is not None:
            ok = ok & ~sample[cols]
        redo = torch.nonzero(~ok).squeeze(1)
    else:
        redo = torch.arange(rows.shape[0], device=s.device)
    if redo.numel():
        r_rows, r_cols = rows[redo], cols[redo]
        # one pass per feature with a missing entry (never per row)
        for col in torch.unique(r_cols).tolist():
            pick = torch.nonzero(r_cols == col).squeeze(1)
            sc = s[r_rows[pick]]
            lacking = (mem.observed[:, col] < 0.5) | torch.isneginf(sc)
            w = separate(
                sc.masked_fill(lacking, float("-inf")), separation, mask=lacking, top_k=top_k
            )
            total = w.sum(-1)
            has = total > 0
            if sample is not None and bool(sample[col]):
                w = torch.where(has.unsqueeze(-1), w, torch.ones_like(w))
                val = _draw(w, mem.x[:, col].expand(w.shape[0], -1), generator)
                if noise is not None:
                    jitter = torch.randn(
                        val.shape, generator=generator, dtype=val.dtype, device=val.device
                    )
                    val = val + noise[col] * jitter
            else:
                val = (w @ mem.x[:, col]) / total.clamp_min(torch.finfo(total.dtype).tiny)
            fills[redo[pick]] = torch.where(has, val, torch.zeros_like(val))
            empty[redo[pick]] = ~has
    return fills, empty


def complete(
    z,
    missing,
    mem,
    beta,
    separation,
    top_k,
    *,
    sharpen,
    num_steps,
    block_rows,
    sample=None,
    generator=None,
    noise=None,
):
    """Fill the missing entries of rows ``z`` (0 at missing entries, ``missing`` True) in place.

    Blocks of ``block_rows`` rows; ``num_steps`` retrieval steps (after the
    first the completed row is the state, compared over all entries); the
    last step draws the fills of the columns where ``sample`` is True from
    the retrieval weights (see :func:`read_out`).
    """
    L = z.shape[0]
    for start in range(0, L, block_rows):
        q = z[start : start + block_rows]
        miss = missing[start : start + block_rows]
        rows, cols = torch.nonzero(miss, as_tuple=True)
        if rows.numel() == 0:
            continue
        oq = (~miss).to(q.dtype)
        state = q
        for step in range(num_steps):
            s = mem.scores(state, oq)
            lacking = None
            if sharpen and step == 0:
                # candidates: stored rows that observe a missing entry of the row
                lacking = ((miss.to(s.dtype) @ mem.observed.mT) <= 0) | torch.isneginf(s)
            s = sharpened(s, beta, mem.similarity, lacking)
            last = step == num_steps - 1
            fills, empty = read_out(
                s, mem, separation, top_k, rows, cols, sample if last else None, generator, noise
            )
            # nothing to read from: the column mean
            fills = torch.where(empty, mem.fallback[cols], fills)
            state = q.index_put((rows, cols), fills)
            oq = torch.ones_like(oq)
        z[start : start + block_rows] = state
    return z


def hide_one(x, observed, rows, col, scores):
    """Hide entry ``col[i]`` of stored row ``rows[i]`` and score the row against the others.

    ``scores(q, oq)`` gives the (n, M) scores of states ``q`` with
    observed-mask ``oq``. Returns the scores with every stored row that is
    no candidate masked to ``-inf``, and ``lacking`` (n, M): True for the
    row itself, for rows that do not observe the hidden column and for rows
    with nothing in common.
    """
    n = rows.shape[0]
    ar = torch.arange(n, device=x.device)
    oq = observed[rows].clone()
    oq[ar, col] = 0.0
    s = scores(x[rows] * oq, oq)
    lacking = observed[:, col].mT < 0.5
    lacking[ar, rows] = True  # not itself
    lacking = lacking | torch.isneginf(s)
    return s.masked_fill(lacking, float("-inf")), lacking


def _hidden_columns(observed_rows, rng, hideable):
    """One observed (and hideable) column per row, uniformly at random (numpy RNG)."""
    obs = observed_rows.cpu().numpy() > 0.5
    if hideable is not None:
        obs = obs & hideable
    keys = rng.random_sample(obs.shape) * obs
    return keys.argmax(1)


def _eligible(observed, hideable):
    obs = observed > 0.5
    n_obs = obs.sum(-1)
    n_hide = n_obs if hideable is None else (obs & hideable).sum(-1)
    return torch.nonzero((n_obs >= 2) & (n_hide >= 1)).squeeze(1)


def _sample_hidden(observed, n_rows, n_repeats, rng, hideable):
    """``n_repeats`` (rows, column) draws: sampled stored rows, one hideable entry each."""
    hide_np = None if hideable is None else hideable.cpu().numpy()
    eligible = _eligible(observed, hideable).cpu().numpy()
    if eligible.size == 0 or observed.shape[0] < 2:
        return None
    draws = []
    for _ in range(n_repeats):
        take = eligible if eligible.size <= n_rows else rng.choice(eligible, n_rows, replace=False)
        idx = torch.as_tensor(take, device=observed.device)
        col = torch.as_tensor(_hidden_columns(observed[idx], rng, hide_np), device=observed.device)
        draws.append((idx, col))
    return draws


def _hidden_moments(mem, draws, betas, separation, top_k, block_rows):
    """Per column, the mean :func:`_grid_errors` (2, 2, n_grid, d) over the hidden entries.

    NaN for a column never hidden; also returns the means over all hidden
    entries (2, 2, n_grid).
    """
    d = mem.x.shape[1]
    sums = torch.zeros(2, 2, betas.shape[0], d, dtype=torch.float64)
    counts = torch.zeros(d, dtype=torch.float64)
    for idx, col in draws:
        for start in range(0, idx.shape[0], block_rows):
            r, c = idx[start : start + block_rows], col[start : start + block_rows]
            s, lacking = hide_one(mem.x, mem.observed, r, c, mem.scores)
            sums += _grid_errors(s, lacking, mem, r, c, betas, separation, top_k).cpu()
            counts += torch.bincount(c.cpu(), minlength=d).to(torch.float64)
    per_column = (sums / counts.clamp_min(1)).numpy()
    per_column[..., counts.numpy() == 0] = np.nan
    return per_column, (sums.sum(-1) / counts.sum()).numpy()


def select_beta(mem, grid, separation, top_k, block_rows, n_rows, n_repeats, rng, hideable=None):
    """Self-supervised choice of beta: hide one observed entry per sampled row, fill it back.

    Each sampled stored row loses one random observed entry (among the
    ``hideable`` columns, a bool tensor, when given), is compared with every
    *other* stored row, and the hidden entry is read out at every
    ``a / unit`` for ``a`` in ``grid``, without and with sharpening (see
    :func:`sharpened`); ``unit`` is the median absolute score of the first
    repeat's rows (against at most :data:`UNIT_MEMORIES` stored rows), so
    the result does not depend on ``block_rows``. Returns the mean squared
    errors (2, n_grid), the mean attention-weighted variances of the stored
    values (2, n_grid), the unit and both per hidden column (2, 2, n_grid,
    d; NaN for a column never hidden), or four Nones.
    """
    M = mem.x.shape[0]
    draws = _sample_hidden(mem.observed, n_rows, n_repeats, rng, hideable)
    if draws is None:
        return None, None, None, None
    unit_cols = None
    if M > UNIT_MEMORIES:
        unit_cols = torch.as_tensor(np.sort(rng.choice(M, UNIT_MEMORIES, replace=False)))
    unit = _score_unit(mem.x, mem.observed, mem.scores, draws[0], block_rows, unit_cols)
    if unit is None:
        return None, None, None, None
    betas = torch.as_tensor(grid, dtype=torch.float64) / unit
    per_column, (errors, spreads) = _hidden_moments(
        mem, draws, betas, separation, top_k, block_rows
    )
    return errors, spreads, unit, per_column


# posterior temperatures tried by calibrate_draws: the fitted beta times these
POSTERIOR_FACTORS = tuple(2.0**k for k in range(-4, 3))
# central intervals whose coverage calibrate_draws matches to their level
_LEVELS = tuple(k / 10 for k in range(1, 10))


def _draw_weights(s, lacking, beta, similarity, separation, top_k, sharpen):
    """The retrieval weights a draw uses (rows sum to 1; 0 where no candidate)."""
    sc = sharpened(s, beta, similarity, lacking if sharpen else None)
    w = separate(sc.masked_fill(lacking, float("-inf")), separation, mask=lacking, top_k=top_k)
    return w / w.sum(-1, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)


def _pit_coverage(w, values, truth, sigma):
    """Per hidden entry, the expected share of the central intervals of ``_LEVELS`` hit.

    A draw is a stored value drawn with weights ``w`` (n, M) plus Gaussian
    noise of standard deviation ``sigma`` (n,); the truth's probability
    integral transform is uniform on ``[F(y-), F(y)]`` (an interval where
    the draw has an atom at the truth). Returns (n_levels, n).
    """
    sd = sigma.unsqueeze(-1)
    gap = truth.unsqueeze(-1) - values
    smooth = 0.5 * (1.0 + torch.erf(gap / (sd * 2.0**0.5).clamp_min(1e-30)))
    lo = (w * torch.where(sd > 0, smooth, (gap > 0).to(w.dtype))).sum(-1)
    hi = (w * torch.where(sd > 0, smooth, (gap >= 0).to(w.dtype))).sum(-1)
    hi = torch.maximum(hi, lo)
    out = []
    for level in _LEVELS:
        a, b = (1.0 - level) / 2.0, (1.0 + level) / 2.0
        inside = ((lo >= a) & (lo <= b)).to(w.dtype)
        width = hi - lo
        overlap = (
            torch.minimum(hi, torch.full_like(hi, b)) - torch.maximum(lo, torch.full_like(lo, a))
        ).clamp_min(0.0)
        out.append(torch.where(width > 1e-6, overlap / width.clamp_min(1e-6), inside))
    return torch.stack(out)


def _noise(errors, spreads, overall):
    """Per column, the standard deviation a draw needs beyond the spread of the stored values.

    A draw from the retrieval distribution has the attention-weighted
    variance of the stored values (``spreads``); the fill misses the hidden
    entries by ``errors`` (both mean squares on hidden training entries, per
    column). Gaussian noise of variance ``errors - spreads`` (at least 0)
    makes the draws' spread match the error; a column never hidden takes
    ``overall``, the same from all columns.
    """
    gap = np.where(np.isnan(errors), overall, errors - spreads)
    return np.sqrt(np.clip(gap, 0.0, None))


def calibrate_draws(
    mem, beta, sharpen, separation, top_k, block_rows, n_rows, n_repeats, rng, hideable=None
):
    """The temperature and per-column noise of ``sample_posterior`` draws, calibrated.

    Hidden training entries (the hide-one read-out of :func:`select_beta`,
    at the memory's own coordinate weights) are drawn for at every
    ``beta * f``, ``f`` in :data:`POSTERIOR_FACTORS`: a stored value drawn
    with the retrieval weights plus Gaussian noise whose variance, per
    column, is the fill's squared error minus the weights' variance of the
    stored values (so the draws are as spread as the error). The factor kept
    is the one whose draws cover the hidden values at the nominal rate of
    central intervals (levels 0.1, ..., 0.9; least squared gap). Returns the
    posterior beta and the noise (d,), or None when nothing can be hidden.
    """
    draws = _sample_hidden(mem.observed, n_rows, n_repeats, rng, hideable)
    if draws is None:
        return None
    betas = beta * torch.tensor(POSTERIOR_FACTORS, dtype=torch.float64)
    per_column, overall = _hidden_moments(mem, draws, betas, separation, top_k, block_rows)
    k = int(sharpen)
    noise = np.stack(
        [
            _noise(per_column[0, k, t], per_column[1, k, t], overall[0, k, t] - overall[1, k, t])
            for t in range(betas.shape[0])
        ]
    )
    hits = torch.zeros(betas.shape[0], len(_LEVELS), dtype=torch.float64)
    count = 0
    sigma_all = torch.as_tensor(noise, dtype=mem.x.dtype, device=mem.x.device)
    for idx, col in draws:
        for start in range(0, idx.shape[0], block_rows):
            r, c = idx[start : start + block_rows], col[start : start + block_rows]
            s, lacking = hide_one(mem.x, mem.observed, r, c, mem.scores)
            has = ~lacking.all(-1)
            values, truth = mem.x[:, c].mT, mem.x[r, c]
            for t in range(betas.shape[0]):
                w = _draw_weights(
                    s, lacking, float(betas[t]), mem.similarity, separation, top_k, sharpen
                )
                cover = _pit_coverage(w, values, truth, sigma_all[t, c])
                hits[t] += cover[:, has].sum(-1).cpu().to(torch.float64)
            count += int(has.sum())
    if count == 0:
        return None
    levels = torch.tensor(_LEVELS, dtype=torch.float64)
    gaps = ((hits / count - levels) ** 2).sum(-1)
    t = int(torch.argmin(gaps))
    return float(betas[t]), noise[t]


def _score_unit(x, observed, scores, draw, block_rows, unit_cols):
    idx, col = draw
    parts = []
    for start in range(0, idx.shape[0], block_rows):
        s, _ = hide_one(
            x, observed, idx[start : start + block_rows], col[start : start + block_rows], scores
        )
        if unit_cols is not None:
            s = s[:, unit_cols.to(s.device)]
        parts.append(s[torch.isfinite(s)].abs())
    finite = torch.cat(parts)
    if finite.numel() == 0:
        return None
    return float(finite.median().clamp_min(1e-12))


def _grid_errors(s, lacking, mem, r, c, betas, separation, top_k):
    """Sums over the hidden entries per beta and column (2, 2, n_grid, d), plain and sharpened.

    ``[0]`` the squared errors of the attention-weighted mean, ``[1]`` the
    attention-weighted variance of the stored values around it (the spread
    of a draw from the retrieval distribution).
    """
    values = mem.x[:, c].mT  # (n, M), in the working dtype; sums in float64
    truth = mem.x[r, c]
    fallback = mem.fallback[c]
    has = torch.isfinite(s).any(-1)
    d = mem.x.shape[1]
    out = torch.zeros(2, 2, betas.shape[0], d, dtype=torch.float64, device=s.device)
    cd = c.to(out.device)

    def add(k, sharp, t, vals):
        out[k, sharp, t].index_add_(0, cd, vals.to(torch.float64))

    squares = values * values

    def moments(p):
        total = p.sum(-1).clamp_min(torch.finfo(p.dtype).tiny)
        fill = torch.linalg.vecdot(p, values) / total
        spread = (torch.linalg.vecdot(p, squares) / total - fill * fill).clamp_min(0.0)
        fill = torch.where(has, fill, fallback)
        return (fill - truth) ** 2, torch.where(has, spread, torch.zeros_like(spread))

    if separation == "softmax":
        # softmax weights at every beta of a doubling grid by repeated squaring
        sd = s
        top = sd.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        gap = sd - top  # <= 0, -inf where lacking
        ratios = betas[1:] / betas[:-1]
        doubling = bool(torch.allclose(ratios, torch.full_like(ratios, 2.0)))
        row_b = None if mem.similarity == "dot" else _row_beta(sd, 0.0, mem.similarity, lacking)
        if row_b is not None:
            sharp = moments(torch.exp(row_b * gap))
        p = None
        for t in range(betas.shape[0]):
            b = float(betas[t])
            p = torch.exp(b * gap) if (p is None or not doubling) else p * p
            plain = moments(p)
            for k in (0, 1):
                add(k, 0, t, plain[k])
                if row_b is None:
                    add(k, 1, t, plain[k])
                else:
                    # the row's own beta 1 / D1 where it exceeds b (see sharpened)
                    add(k, 1, t, torch.where(row_b.squeeze(-1) > b, sharp[k], plain[k]))
        return out
    for t in range(betas.shape[0]):
        b = float(betas[t])
        for sharp in (0, 1):
            sc = sharpened(s, b, mem.similarity, lacking if sharp else None)
            e, v = moments(separate(sc, separation, mask=lacking, top_k=top_k))
            add(0, sharp, t, e)
            add(1, sharp, t, v)
    return out


class MetricNet(nn.Module):
    """Learnable log coordinate weights and log inverse temperature."""

    def __init__(self, n_features, log_beta):
        super().__init__()
        self.log_weights = nn.Parameter(torch.zeros(n_features, dtype=torch.float32))
        self.log_beta = nn.Parameter(torch.tensor(float(log_beta), dtype=torch.float32))


def hidden_entry_loss(module, x, observed, complete, similarity, separation, top_k, rows, col):
    """Mean squared error of hidden entries ``(rows[i], col[i])`` filled from the other rows.

    ``module`` is a :class:`MetricNet`; the weights are normalised to mean 1.
    Rows with no candidate stored row are left out of the mean.
    """
    w = module.log_weights.exp()
    mem = WeightedRows(x, observed, w / w.mean(), complete)
    beta = module.log_beta.exp()
    s, lacking = hide_one(
        x, observed, rows, col, lambda q, oq: masked_scores(q, oq, mem, similarity, beta=beta)
    )
    a = separate(s, separation, mask=lacking, top_k=top_k)
    total = a.sum(-1)
    fill = (a * x[:, col].mT).sum(-1) / total.clamp_min(torch.finfo(total.dtype).tiny)
    has = (~lacking).any(-1)
    err = (fill - x[rows, col]) ** 2
    return torch.where(has, err, torch.zeros_like(err)).sum() / has.sum().clamp_min(1)


def random_hidden(observed_rows, hideable=None):
    """One observed (and hideable) column per row, uniformly at random (torch RNG)."""
    weights = observed_rows if hideable is None else observed_rows * hideable.to(observed_rows)
    keys = torch.rand(weights.shape, dtype=weights.dtype, device=weights.device) * weights
    return keys.argmax(-1)
