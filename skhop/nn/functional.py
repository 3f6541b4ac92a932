"""Functional core of the modern (continuous) Hopfield network.

The update rule of Ramsauer et al. (2020) for a state pattern ``xi`` and
stored patterns ``X`` (one per row of ``memory``) is::

    xi_new = X^T sep(beta * sim(X, xi))

With ``sim`` the dot product and ``sep`` the softmax, one update is exactly
scaled dot-product attention with ``query = xi``, ``key = value = X``.
"""

import math
import numbers

import numpy as np
import torch

from ._checks import positive_int, show
from ._separation import CHUNKABLE, SEPARATIONS, blockwise_topk, separate

__all__ = [
    "hopfield_retrieve",
    "hopfield_energy",
    "hopfield_partial",
    "merge_partials",
    "separate",
    "similarity_scores",
]

SIMILARITIES = ("dot", "cosine", "neg_l2")

# Score blocks larger than this many elements are computed chunk by chunk
# when ``chunk_size`` is left to ``None`` (16 MiB of float32 per block).
AUTO_CHUNK_ELEMENTS = 1 << 22


def _tiny(t):
    """Smallest normal number of ``t``'s dtype: a norm floor that depends on no unit."""
    return torch.finfo(t.dtype).tiny


def _check_tensor(name, t, min_dim=2):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got dtype {t.dtype}.")
    if t.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions (..., n, dim), "
            f"got shape {tuple(t.shape)}."
        )


def _check_finite(name, t):
    # in slices: torch.isfinite on a whole large memory bank allocates several
    # times its size in temporaries
    flat = t.detach().reshape(-1)
    step = AUTO_CHUNK_ELEMENTS
    for start in range(0, flat.numel(), step):
        if not torch.isfinite(flat[start : start + step]).all():
            raise ValueError(f"{name} contains NaN or infinity.")


def _check_beta(beta):
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be a scalar, got shape {tuple(beta.shape)}.")
        value = float(beta.detach())
    elif isinstance(beta, numbers.Real) and not isinstance(beta, (bool, np.bool_)):
        value = float(beta)
    else:
        raise TypeError(f"beta must be a positive number, got {show(beta)}.")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"beta must be a positive finite number, got {value}.")


def _prepare_query_mask(query, query_mask):
    """Return (query with unobserved entries zeroed, observed float mask) or (query, None)."""
    if query_mask is None:
        _check_finite("query", query)
        return query, None
    if isinstance(query_mask, str):
        if query_mask != "nan":
            raise ValueError(
                f"query_mask must be None, 'nan' or a bool tensor, got {query_mask!r}."
            )
        missing = torch.isnan(query)
    else:
        if not isinstance(query_mask, torch.Tensor) or query_mask.dtype != torch.bool:
            raise TypeError("query_mask must be a bool tensor (True = unobserved) or 'nan'.")
        try:
            missing = query_mask.expand_as(query)
        except RuntimeError:
            raise ValueError(
                f"query_mask of shape {tuple(query_mask.shape)} does not broadcast to "
                f"query of shape {tuple(query.shape)}."
            ) from None
    if torch.isinf(query).any() or torch.isnan(query.masked_fill(missing, 0.0)).any():
        raise ValueError("query contains infinity, or NaN at an observed entry.")
    if not missing.any():
        return query, None
    return query.masked_fill(missing, 0.0), (~missing).to(query.dtype)


def similarity_scores(query, memory, similarity="dot", observed=None):
    """Pairwise similarity between query rows and memory rows.

    Parameters
    ----------
    query : Tensor of shape (..., L, d)
    memory : Tensor of shape (..., M, d)
    similarity : {"dot", "cosine", "neg_l2"}
        ``"dot"`` is ``<q, x>``; ``"cosine"`` is ``<q, x> / (|q| |x|)``;
        ``"neg_l2"`` is ``-0.5 * |q - x|^2``.
    observed : Tensor of shape (..., L, d), optional
        1 where a query entry is observed, 0 where it is not (the query must
        hold 0 there). The similarity then uses observed coordinates only:
        cosine over the observed coordinates of both vectors, and dot and
        squared distance rescaled by ``d / n_observed`` (the convention of
        :func:`sklearn.metrics.pairwise.nan_euclidean_distances`). A query
        with no observed entry gets similarity 0 to every memory.

    Returns
    -------
    scores : Tensor of shape (..., L, M)

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import similarity_scores
    >>> q, x = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    >>> similarity_scores(q, x, "cosine")
    tensor([[1., 0.]])
    >>> similarity_scores(q, x, "neg_l2")
    tensor([[-0.5000, -5.0000]])
    """
    dot = query @ memory.mT
    if observed is None:
        if similarity == "dot":
            return dot
        if similarity == "cosine":
            qn = query.norm(dim=-1, keepdim=True).clamp_min(_tiny(query))
            xn = memory.norm(dim=-1).clamp_min(_tiny(memory)).unsqueeze(-2)
            return dot / qn / xn
        qq = (query * query).sum(-1, keepdim=True)
        xx = (memory * memory).sum(-1).unsqueeze(-2)
        return (-0.5 * (qq - 2.0 * dot + xx)).clamp_max(0.0)
    d = query.shape[-1]
    n_obs = observed.sum(-1, keepdim=True)
    none = n_obs == 0
    if similarity == "cosine":
        xx_obs = observed @ (memory * memory).mT  # |x restricted to observed|^2
        qn = query.norm(dim=-1, keepdim=True).clamp_min(_tiny(query))
        scores = dot / qn / xx_obs.clamp_min(_tiny(xx_obs)).sqrt()
    else:
        scale = d / n_obs.clamp_min(1.0)
        if similarity == "dot":
            scores = dot * scale
        else:
            xx_obs = observed @ (memory * memory).mT
            qq = (query * query).sum(-1, keepdim=True)
            scores = (-0.5 * scale * (qq - 2.0 * dot + xx_obs)).clamp_max(0.0)
    return scores.masked_fill(none, 0.0)


def _scaled_scores(query, memory, beta, similarity, observed):
    if similarity == "dot" and observed is None:
        # beta * <q, x> == <beta q, x>: scale the small operand.
        return (query * beta) @ memory.mT
    if similarity == "cosine" and observed is None:
        q = query / query.norm(dim=-1, keepdim=True).clamp_min(_tiny(query)) * beta
        xn = memory.norm(dim=-1).clamp_min(_tiny(memory)).unsqueeze(-2)
        return (q @ memory.mT) / xn
    return beta * similarity_scores(query, memory, similarity, observed)


def _slice_mask(mask, start, stop):
    if mask is None:
        return None
    if mask.shape[-1] == 1:
        return mask
    return mask[..., start:stop]


def _dense_step(
    query, memory, values, beta, similarity, separation, mask, observed, top_k, dropout_p, training
):
    scores = _scaled_scores(query, memory, beta, similarity, observed)
    attn = separate(scores, separation, mask=mask, top_k=top_k)
    weights = attn
    if dropout_p > 0.0 and training:
        weights = torch.nn.functional.dropout(attn, p=dropout_p, training=True)
    return weights @ values, attn


def _gather_rows(values, idx):
    """values (..., M, dv), idx (..., L, k) -> (..., L, k, dv), batch dims broadcast."""
    batch = torch.broadcast_shapes(values.shape[:-2], idx.shape[:-2])
    dv = values.shape[-1]
    L, k = idx.shape[-2:]
    v = values.expand(*batch, *values.shape[-2:])
    i = idx.expand(*batch, L, k).reshape(*batch, L * k, 1).expand(*batch, L * k, dv)
    return torch.gather(v, -2, i).reshape(*batch, L, k, dv)


def _chunked_step(
    query, memory, values, beta, similarity, separation, mask, observed, top_k, chunk_size
):
    """One read-out streamed over memory chunks with an exact online log-sum-exp.

    Peak extra memory is O(L * chunk_size) instead of O(L * M).
    """
    M = memory.shape[-2]
    if separation == "topk":

        def block_scores(start, stop):
            s = _scaled_scores(query, memory[..., start:stop, :], beta, similarity, observed)
            m = _slice_mask(mask, start, stop)
            return s if m is None else s.masked_fill(m, float("-inf"))

        best_v, best_i = blockwise_topk(block_scores, M, top_k, chunk_size)
        w = separate(best_v, "softmax", mask=torch.isneginf(best_v))
        rows = _gather_rows(values, best_i)
        return (w.unsqueeze(-2) @ rows).squeeze(-2)

    m, total, acc = _softmax_partial(
        query, memory, values, beta, similarity, mask, observed, chunk_size
    )
    parts = [(m, total, acc)]
    if separation == "softmax1":
        # the extra 1 in the denominator is one more logit 0 that reads out zeros
        parts.append((torch.zeros_like(m), torch.ones_like(total), torch.zeros_like(acc)))
    return merge_partials(parts)


def _softmax_partial(query, memory, values, beta, similarity, mask, observed, chunk_size):
    M = memory.shape[-2]
    batch = torch.broadcast_shapes(query.shape[:-2], memory.shape[:-2], values.shape[:-2])
    L = query.shape[-2]
    dv = values.shape[-1]
    dtype = torch.promote_types(query.dtype, values.dtype)
    grad = torch.is_grad_enabled() and (
        query.requires_grad
        or memory.requires_grad
        or values.requires_grad
        or (isinstance(beta, torch.Tensor) and beta.requires_grad)
    )
    run_max = torch.full((*batch, L, 1), float("-inf"), dtype=dtype, device=query.device)
    run_sum = torch.zeros((*batch, L, 1), dtype=dtype, device=query.device)
    acc = torch.zeros((*batch, L, dv), dtype=dtype, device=query.device)
    for start in range(0, M, chunk_size):
        stop = min(start + chunk_size, M)
        s = _scaled_scores(query, memory[..., start:stop, :], beta, similarity, observed)
        m = _slice_mask(mask, start, stop)
        if m is not None:
            s = s.masked_fill(m, float("-inf"))
        # the shift is a constant for autograd (the result does not depend on it)
        new_max = torch.maximum(run_max, s.detach().amax(dim=-1, keepdim=True))
        safe = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        scale = torch.exp(run_max - safe)
        if grad:
            p = torch.exp(s - safe)
            run_sum = run_sum * scale + p.sum(-1, keepdim=True)
            acc = acc * scale + p @ values[..., start:stop, :]
        else:
            p = s.sub_(safe).exp_()
            run_sum.mul_(scale).add_(p.sum(-1, keepdim=True))
            acc.mul_(scale).add_(p @ values[..., start:stop, :])
        run_max = new_max
    return run_max, run_sum, acc


def hopfield_partial(
    query, memory, values=None, *, beta=1.0, similarity="dot", mask=None, chunk_size=None
):
    """Softmax retrieval over one shard of the memory, left un-normalised.

    Returns ``(max, sum, acc)`` with ``max`` the largest scaled score per
    query, ``sum = sum_i exp(s_i - max)`` and ``acc = sum_i exp(s_i - max) v_i``.
    Partials of disjoint shards merge exactly with :func:`merge_partials`, so a
    memory split across processes or machines gives the same retrieval as the
    whole memory in one place.

    Parameters
    ----------
    query, memory, values, beta, similarity, mask, chunk_size
        As in :func:`hopfield_retrieve`.

    Returns
    -------
    max : Tensor of shape (..., L, 1)
    sum : Tensor of shape (..., L, 1)
    acc : Tensor of shape (..., L, dv)

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import hopfield_partial, hopfield_retrieve, merge_partials
    >>> q, x = torch.randn(4, 8), torch.randn(100, 8)
    >>> parts = [hopfield_partial(q, x[:60]), hopfield_partial(q, x[60:])]
    >>> torch.allclose(merge_partials(parts), hopfield_retrieve(q, x), atol=1e-6)
    True
    """
    _check_tensor("query", query)
    _check_tensor("memory", memory)
    values = memory if values is None else values
    _check_tensor("values", values)
    _check_beta(beta)
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    if query.shape[-1] != memory.shape[-1] or values.shape[-2] != memory.shape[-2]:
        raise ValueError(
            "query, memory and values have inconsistent shapes: "
            f"{tuple(query.shape)}, {tuple(memory.shape)}, {tuple(values.shape)}."
        )
    _check_finite("query", query)
    _check_finite("memory", memory)
    M = memory.shape[-2]
    chunk = chunk_size or _auto_chunk(query.shape[-2], M, "softmax", False) or max(M, 1)
    return _softmax_partial(query, memory, values, beta, similarity, mask, None, chunk)


def merge_partials(parts):
    """Merge ``(max, sum, acc)`` partials of disjoint shards into the softmax read-out.

    See :func:`hopfield_partial`. Queries that attended to nothing (all
    memories masked in every shard) read out zeros.

    Parameters
    ----------
    parts : iterable of (Tensor, Tensor, Tensor)
        The ``(max, sum, acc)`` triples of :func:`hopfield_partial`, one per
        shard, over the same queries; the shards must be disjoint.

    Returns
    -------
    output : Tensor of shape (..., L, dv)
        What :func:`hopfield_retrieve` returns over all shards together.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import hopfield_partial, hopfield_retrieve, merge_partials
    >>> q, x = torch.randn(2, 4), torch.randn(30, 4)
    >>> parts = (hopfield_partial(q, shard, beta=2.0) for shard in x.split(7))
    >>> torch.allclose(merge_partials(parts), hopfield_retrieve(q, x, beta=2.0), atol=1e-6)
    True
    """
    parts = list(parts)
    if not parts:
        raise ValueError("merge_partials needs at least one partial.")
    top = parts[0][0]
    for m, _, _ in parts[1:]:
        top = torch.maximum(top, m)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = acc = None
    for m, s, a in parts:
        w = torch.exp(m - top)
        total = s * w if total is None else total + s * w
        acc = a * w if acc is None else acc + a * w
    return acc / total.clamp_min(torch.finfo(total.dtype).tiny)


def _auto_chunk(L, M, separation, need_dense):
    if need_dense or separation not in CHUNKABLE or L * M <= AUTO_CHUNK_ELEMENTS:
        return None
    return max(256, AUTO_CHUNK_ELEMENTS // max(L, 1))


def hopfield_retrieve(
    query,
    memory,
    values=None,
    *,
    beta=1.0,
    similarity="dot",
    separation="softmax",
    n_steps=1,
    tol=None,
    mask=None,
    query_mask=None,
    chunk_size=None,
    top_k=None,
    dropout_p=0.0,
    training=False,
    return_attention=False,
):
    """Retrieve from a modern Hopfield memory.

    Parameters
    ----------
    query : Tensor of shape (..., L, d)
        State patterns (one per row).
    memory : Tensor of shape (..., M, d)
        Stored patterns (one per row). Batch dimensions broadcast with
        ``query``'s.
    values : Tensor of shape (..., M, dv), optional
        What is read out for each stored pattern. Defaults to ``memory``.
    beta : float or scalar Tensor, default=1.0
        Inverse temperature; must be positive. A tensor may require grad.
    similarity : {"dot", "cosine", "neg_l2"}, default="dot"
        See :func:`similarity_scores`.
    separation : {"softmax", "softmax1", "sparsemax", "entmax15", "topk"}, default="softmax"
        See :func:`skhop.nn.separate`.
    n_steps : int, default=1
        Number of applications of the separation in total. The first
        ``n_steps - 1`` are state updates in memory space,
        ``xi <- memory^T sep(beta * sim(memory, xi))``; the last one is the
        read-out ``values^T sep(beta * sim(memory, xi))``. With
        ``values=None`` this is exactly ``n_steps`` updates of the paper's
        rule; ``n_steps=1`` is one attention step.
    tol : float, optional
        Stop the state updates early once no query moves by more than ``tol``
        (max absolute change of any entry) in one update; the read-out still
        follows. ``None`` runs all ``n_steps``.
    mask : bool Tensor broadcastable to (..., L, M), optional
        ``True`` marks memories a query must ignore; they get exactly zero
        weight. For a per-memory padding mask of shape (..., M) pass
        ``mask.unsqueeze(-2)``.
    query_mask : bool Tensor of shape (..., L, d), or "nan", optional
        Unobserved query entries (``True`` = unobserved; ``"nan"`` takes the
        NaN entries of ``query``). The first update compares observed entries
        only (see :func:`similarity_scores`); later updates use the whole,
        completed state. When ``values`` is ``None`` the observed entries are
        kept as given in every state and in the output, so only the
        unobserved ones are filled. Without ``query_mask`` a NaN in ``query``
        raises ``ValueError``.
    chunk_size : int, optional
        Stream the memory in chunks of this many patterns with an exact online
        log-sum-exp: peak memory O(L * chunk_size) instead of O(L * M).
        Supported for ``"softmax"``, ``"softmax1"`` and ``"topk"``. ``None``
        chunks automatically when the score matrix would exceed
        ``AUTO_CHUNK_ELEMENTS`` elements (and no attention is requested).
    top_k : int, optional
        Number of memories kept by ``separation="topk"`` (required there).
    dropout_p : float, default=0.0
        Dropout on the read-out attention weights when ``training``.
    training : bool, default=False
        Apply ``dropout_p``.
    return_attention : bool, default=False
        Also return the read-out attention weights (..., L, M) from the same
        pass; they keep their graph, so they can enter a loss.

    Notes
    -----
    float16 and bfloat16 inputs are computed in float32 and the result is
    returned in the query's dtype.

    Returns
    -------
    output : Tensor of shape (..., L, dv)
    attention : Tensor of shape (..., L, M)
        Only when ``return_attention=True``.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import hopfield_retrieve
    >>> memory = torch.eye(3)
    >>> query = torch.tensor([[0.9, 0.1, 0.0]])
    >>> hopfield_retrieve(query, memory, beta=50.0).round(decimals=3)
    tensor([[1., 0., 0.]])
    """
    _check_tensor("query", query)
    _check_tensor("memory", memory)
    low = (torch.float16, torch.bfloat16)
    if query.dtype in low or memory.dtype in low or (values is not None and values.dtype in low):
        # half precision: computed in float32 (softmax sums lose too much in 16 bits),
        # returned in the query's dtype
        result = hopfield_retrieve(
            query.float(),
            memory.float(),
            None if values is None else values.float(),
            beta=beta,
            similarity=similarity,
            separation=separation,
            n_steps=n_steps,
            tol=tol,
            mask=mask,
            query_mask=query_mask,
            chunk_size=chunk_size,
            top_k=top_k,
            dropout_p=dropout_p,
            training=training,
            return_attention=return_attention,
        )
        if return_attention:
            return result[0].to(query.dtype), result[1].to(query.dtype)
        return result.to(query.dtype)
    if values is None:
        values_given = False
        values = memory
    else:
        values_given = True
        _check_tensor("values", values)
    if query.shape[-1] != memory.shape[-1]:
        raise ValueError(
            f"query and memory must have the same last dimension, got {query.shape[-1]} "
            f"and {memory.shape[-1]}."
        )
    if values.shape[-2] != memory.shape[-2]:
        raise ValueError(
            f"values must have one row per stored pattern: memory has {memory.shape[-2]}, "
            f"values has {values.shape[-2]}."
        )
    if memory.shape[-2] == 0:
        raise ValueError("memory is empty: at least one stored pattern is required.")
    try:
        torch.broadcast_shapes(query.shape[:-2], memory.shape[:-2], values.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"batch dimensions of query {tuple(query.shape[:-2])} and memory "
            f"{tuple(memory.shape[:-2])} do not broadcast."
        ) from None
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    if separation not in SEPARATIONS:
        raise ValueError(f"separation must be one of {SEPARATIONS}, got {separation!r}.")
    if separation == "topk":
        positive_int("top_k (separation='topk')", top_k)
    _check_beta(beta)
    positive_int("n_steps", n_steps)
    if tol is not None and not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be None or a non-negative number, got {tol!r}.")
    if not (0.0 <= dropout_p < 1.0):
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}.")
    if chunk_size is not None:
        positive_int("chunk_size", chunk_size, allow_none=True)
        if separation not in CHUNKABLE:
            raise ValueError(
                f"chunk_size is supported for separations {CHUNKABLE}, not {separation!r} "
                "(its normaliser needs the whole row)."
            )
        if return_attention:
            raise ValueError(
                "return_attention=True needs the whole attention matrix; leave chunk_size=None."
            )
    _check_finite("memory", memory)
    if values_given:
        _check_finite("values", values)
    query, observed = _prepare_query_mask(query, query_mask)
    L, M = query.shape[-2], memory.shape[-2]
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = ignore that memory).")
        try:
            torch.broadcast_shapes(mask.shape, (*query.shape[:-1], M))
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"(..., {L}, {M})."
            ) from None
        if mask.shape[-1] != M and mask.shape[-1] != 1:
            raise ValueError(f"mask's last dimension must be {M} (one per memory).")
    dense_needed = return_attention or (dropout_p > 0 and training)
    if chunk_size is None:
        chunk_size = _auto_chunk(L, M, separation, dense_needed)
    if chunk_size is not None and chunk_size >= M:
        chunk_size = None

    def step(state, vals, obs):
        if chunk_size is None:
            return _dense_step(
                state,
                memory,
                vals,
                beta,
                similarity,
                separation,
                mask,
                obs,
                top_k,
                dropout_p,
                training,
            )
        out = _chunked_step(
            state, memory, vals, beta, similarity, separation, mask, obs, top_k, chunk_size
        )
        return out, None

    clamp = observed is not None and not values_given
    given = query

    def keep_observed(state):
        return state * (1 - observed) + given * observed if clamp else state

    state = query
    obs = observed
    for _ in range(n_steps - 1):
        new_state, _ = step(state, memory, obs)
        new_state = keep_observed(new_state)
        obs = None
        moved = (new_state - state).abs().amax() if tol is not None else None
        state = new_state
        if moved is not None and moved <= tol:
            break
    out, attn = step(state, values, obs)
    if clamp:
        out = keep_observed(out)
    return (out, attn) if return_attention else out


def hopfield_energy(state, memory, beta=1.0, chunk_size=None, similarity="dot"):
    """Energy of state patterns under the modern Hopfield network.

    ``E(xi) = -lse(beta, X^T xi) + 0.5 xi^T xi + beta^-1 log M + 0.5 M_max^2``
    with ``lse(beta, z) = beta^-1 log sum_i exp(beta z_i)`` and ``M_max`` the
    largest norm of a stored pattern (Ramsauer et al. 2020, eq. 2). The
    update rule with ``similarity="dot"`` and ``separation="softmax"`` never
    increases it.

    ``similarity="cosine"`` is the same energy of the unit-normalised state
    and stored patterns. ``similarity="neg_l2"`` is
    ``E(xi) = -lse(beta, -0.5 |xi - x_i|^2) + beta^-1 log M``, which equals
    the energy above with the bias ``-0.5 |x_i|^2`` added to each score (up
    to the constant): it is non-negative and the ``"neg_l2"`` softmax update
    never increases it.

    Parameters
    ----------
    state : Tensor of shape (..., L, d)
    memory : Tensor of shape (..., M, d)
    beta : float, default=1.0
    chunk_size : int, optional
        Stream the memory in chunks (exact online log-sum-exp).
    similarity : {"dot", "cosine", "neg_l2"}, default="dot"
        The similarity of the update rule whose energy this is.

    Returns
    -------
    energy : Tensor of shape (..., L)

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import hopfield_energy
    >>> hopfield_energy(torch.zeros(1, 2), torch.eye(2)).shape
    torch.Size([1])
    """
    _check_tensor("state", state)
    _check_tensor("memory", memory)
    _check_beta(beta)
    _check_finite("state", state)
    _check_finite("memory", memory)
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
    if state.shape[-1] != memory.shape[-1]:
        raise ValueError(
            f"state and memory must have the same last dimension, got {state.shape[-1]} "
            f"and {memory.shape[-1]}."
        )
    M = memory.shape[-2]
    if M == 0:
        raise ValueError("memory is empty: at least one stored pattern is required.")
    if chunk_size is None:
        chunk_size = _auto_chunk(state.shape[-2], M, "softmax", False) or M
    if similarity == "cosine":
        state = state / state.norm(dim=-1, keepdim=True).clamp_min(_tiny(state))
    lse = m_max = None
    for start in range(0, M, chunk_size):
        part = memory[..., start : start + chunk_size, :]
        if similarity == "cosine":
            part = part / part.norm(dim=-1, keepdim=True).clamp_min(_tiny(part))
        scores = similarity_scores(state, part, "neg_l2" if similarity == "neg_l2" else "dot")
        chunk_lse = torch.logsumexp(beta * scores, -1)
        chunk_max = part.norm(dim=-1).amax(dim=-1, keepdim=True)
        lse = chunk_lse if lse is None else torch.logaddexp(lse, chunk_lse)
        m_max = chunk_max if m_max is None else torch.maximum(m_max, chunk_max)
    if similarity == "neg_l2":
        return -lse / beta + math.log(M) / beta
    return -lse / beta + 0.5 * (state * state).sum(-1) + math.log(M) / beta + 0.5 * m_max * m_max
