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
from ._scores import SIMILARITIES, similarity_scores, tiny
from ._separation import CHUNKABLE, SEPARATIONS, separate
from ._steps import (
    AUTO_CHUNK_ELEMENTS,
    auto_chunk,
    chunked_step,
    dense_step,
    merge_partials,
    softmax_partial,
)

__all__ = [
    "hopfield_retrieve",
    "hopfield_energy",
    "hopfield_partial",
    "merge_partials",
    "separate",
    "similarity_scores",
]


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


def _missing_entries(query, query_mask):
    """Bool tensor of the query's unobserved entries, or None when all are observed."""
    if query_mask is None:
        return None
    if isinstance(query_mask, str):
        return torch.isnan(query)
    return query_mask.expand_as(query)


def _check_query_mask(query, query_mask):
    if query_mask is None:
        _check_finite("query", query)
        return
    if isinstance(query_mask, str):
        if query_mask != "nan":
            raise ValueError(
                f"query_mask must be None, 'nan' or a bool tensor, got {query_mask!r}."
            )
    elif not isinstance(query_mask, torch.Tensor) or query_mask.dtype != torch.bool:
        raise TypeError("query_mask must be a bool tensor (True = unobserved) or 'nan'.")
    else:
        try:
            query_mask.expand_as(query)
        except RuntimeError:
            raise ValueError(
                f"query_mask of shape {tuple(query_mask.shape)} does not broadcast to "
                f"query of shape {tuple(query.shape)}."
            ) from None
    missing = _missing_entries(query, query_mask)
    if torch.isinf(query).any() or torch.isnan(query.masked_fill(missing, 0.0)).any():
        raise ValueError("query contains infinity, or NaN at an observed entry.")


def _prepare_query_mask(query, query_mask):
    """(query with unobserved entries zeroed, observed float mask) or (query, None)."""
    missing = _missing_entries(query, query_mask)
    if missing is None or not missing.any():
        return query, None
    return query.masked_fill(missing, 0.0), (~missing).to(query.dtype)


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
    chunk = chunk_size or auto_chunk(query.shape[-2], M, "softmax", False) or max(M, 1)
    return softmax_partial(query, memory, values, beta, similarity, mask, None, chunk)


def hopfield_retrieve(
    query,
    memory,
    values=None,
    *,
    beta=1.0,
    similarity="dot",
    separation="softmax",
    num_steps=1,
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
    num_steps : int, default=1
        Number of applications of the separation in total. The first
        ``num_steps - 1`` are state updates in memory space,
        ``xi <- memory^T sep(beta * sim(memory, xi))``; the last one is the
        read-out ``values^T sep(beta * sim(memory, xi))``. With
        ``values=None`` this is exactly ``num_steps`` updates of the paper's
        rule; ``num_steps=1`` is one attention step.
    tol : float, optional
        Stop the state updates early once no query moves by more than ``tol``
        (max absolute change of any entry) in one update; the read-out still
        follows. ``None`` runs all ``num_steps``.
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
    options = dict(
        beta=beta,
        similarity=similarity,
        separation=separation,
        num_steps=num_steps,
        tol=tol,
        mask=mask,
        query_mask=query_mask,
        chunk_size=chunk_size,
        top_k=top_k,
        dropout_p=dropout_p,
        return_attention=return_attention,
    )
    _check_retrieve(query, memory, values, **options)
    return _retrieve(query, memory, values, training=training, **options)


def _check_retrieve(
    query,
    memory,
    values,
    *,
    beta,
    similarity,
    separation,
    num_steps,
    tol,
    mask,
    query_mask,
    chunk_size,
    top_k,
    dropout_p,
    return_attention,
):
    """Every argument check of :func:`hopfield_retrieve`, data included (run once)."""
    _check_tensor("query", query)
    _check_tensor("memory", memory)
    if values is not None:
        _check_tensor("values", values)
    vals = memory if values is None else values
    if query.shape[-1] != memory.shape[-1]:
        raise ValueError(
            f"query and memory must have the same last dimension, got {query.shape[-1]} "
            f"and {memory.shape[-1]}."
        )
    if vals.shape[-2] != memory.shape[-2]:
        raise ValueError(
            f"values must have one row per stored pattern: memory has {memory.shape[-2]}, "
            f"values has {vals.shape[-2]}."
        )
    if memory.shape[-2] == 0:
        raise ValueError("memory is empty: at least one stored pattern is required.")
    try:
        torch.broadcast_shapes(query.shape[:-2], memory.shape[:-2], vals.shape[:-2])
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
    positive_int("num_steps", num_steps)
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
    if values is not None:
        _check_finite("values", values)
    _check_query_mask(query, query_mask)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = ignore that memory).")
        L, M = query.shape[-2], memory.shape[-2]
        try:
            torch.broadcast_shapes(mask.shape, (*query.shape[:-1], M))
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"(..., {L}, {M})."
            ) from None
        if mask.shape[-1] != M and mask.shape[-1] != 1:
            raise ValueError(f"mask's last dimension must be {M} (one per memory).")


def _retrieve(
    query,
    memory,
    values=None,
    *,
    beta=1.0,
    similarity="dot",
    separation="softmax",
    num_steps=1,
    tol=None,
    mask=None,
    query_mask=None,
    chunk_size=None,
    top_k=None,
    dropout_p=0.0,
    training=False,
    return_attention=False,
):
    """:func:`hopfield_retrieve` without its checks: the hot path of modules and engines.

    The caller guarantees valid arguments and finite data (its own public
    entry checked them once); nothing here reads a value back to the host.
    """
    low = (torch.float16, torch.bfloat16)
    out_dtype = None
    if query.dtype in low or memory.dtype in low or (values is not None and values.dtype in low):
        # half precision: computed in float32 (softmax sums lose too much in 16 bits),
        # returned in the query's dtype
        out_dtype = query.dtype
        query, memory = query.float(), memory.float()
        values = None if values is None else values.float()
    values_given = values is not None
    if not values_given:
        values = memory
    query, observed = _prepare_query_mask(query, query_mask)
    L, M = query.shape[-2], memory.shape[-2]
    dense_needed = return_attention or (dropout_p > 0 and training)
    if chunk_size is None:
        chunk_size = auto_chunk(L, M, separation, dense_needed)
    if chunk_size is not None and chunk_size >= M:
        chunk_size = None

    def step(state, vals, obs):
        if chunk_size is None:
            return dense_step(
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
        out = chunked_step(
            state, memory, vals, beta, similarity, separation, mask, obs, top_k, chunk_size
        )
        return out, None

    clamp = observed is not None and not values_given
    given = query

    def keep_observed(state):
        return state * (1 - observed) + given * observed if clamp else state

    state = query
    obs = observed
    for _ in range(num_steps - 1):
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
    if out_dtype is not None:
        out = out.to(out_dtype)
        attn = None if attn is None else attn.to(out_dtype)
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
        chunk_size = auto_chunk(state.shape[-2], M, "softmax", False) or M
    if similarity == "cosine":
        state = state / state.norm(dim=-1, keepdim=True).clamp_min(tiny(state))
    lse = m_max = None
    for start in range(0, M, chunk_size):
        part = memory[..., start : start + chunk_size, :]
        if similarity == "cosine":
            part = part / part.norm(dim=-1, keepdim=True).clamp_min(tiny(part))
        scores = similarity_scores(state, part, "neg_l2" if similarity == "neg_l2" else "dot")
        chunk_lse = torch.logsumexp(beta * scores, -1)
        chunk_max = part.norm(dim=-1).amax(dim=-1, keepdim=True)
        lse = chunk_lse if lse is None else torch.logaddexp(lse, chunk_lse)
        m_max = chunk_max if m_max is None else torch.maximum(m_max, chunk_max)
    if similarity == "neg_l2":
        return -lse / beta + math.log(M) / beta
    return -lse / beta + 0.5 * (state * state).sum(-1) + math.log(M) / beta + 0.5 * m_max * m_max
