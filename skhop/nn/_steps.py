"""One read-out of the update, dense or streamed over memory chunks.

The streamed read-out keeps an exact online log-sum-exp, so its result is the
dense one's up to float rounding while its peak memory is O(L * chunk_size);
:func:`merge_partials` joins the partials of disjoint shards the same way.
Nothing here checks its arguments: the public functions of
:mod:`skhop.nn.functional` do, once.
"""

import torch

from ._scores import exp, exp_, scaled_scores
from ._separation import CHUNKABLE, blockwise_topk, separate

__all__ = ["AUTO_CHUNK_ELEMENTS", "merge_partials"]

# Score blocks larger than this many elements are computed chunk by chunk
# when ``chunk_size`` is left to ``None`` (16 MiB of float32 per block).
AUTO_CHUNK_ELEMENTS = 1 << 22


def auto_chunk(L, M, separation, need_dense):
    if need_dense or separation not in CHUNKABLE or L * M <= AUTO_CHUNK_ELEMENTS:
        return None
    return max(256, AUTO_CHUNK_ELEMENTS // max(L, 1))


def _slice_mask(mask, start, stop):
    if mask is None:
        return None
    if mask.shape[-1] == 1:
        return mask
    return mask[..., start:stop]


def dense_step(
    query, memory, values, beta, similarity, separation, mask, observed, top_k, dropout_p, training
):
    scores = scaled_scores(query, memory, beta, similarity, observed)
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


def chunked_step(
    query, memory, values, beta, similarity, separation, mask, observed, top_k, chunk_size
):
    """One read-out streamed over memory chunks with an exact online log-sum-exp.

    Peak extra memory is O(L * chunk_size) instead of O(L * M).
    """
    M = memory.shape[-2]
    if separation == "topk":

        def block_scores(start, stop):
            s = scaled_scores(query, memory[..., start:stop, :], beta, similarity, observed)
            m = _slice_mask(mask, start, stop)
            return s if m is None else s.masked_fill(m, float("-inf"))

        best_v, best_i = blockwise_topk(block_scores, M, top_k, chunk_size)
        w = separate(best_v, "softmax", mask=torch.isneginf(best_v))
        rows = _gather_rows(values, best_i)
        return (w.unsqueeze(-2) @ rows).squeeze(-2)

    m, total, acc = softmax_partial(
        query, memory, values, beta, similarity, mask, observed, chunk_size
    )
    parts = [(m, total, acc)]
    if separation == "softmax1":
        # the extra 1 in the denominator is one more logit 0 that reads out zeros
        parts.append((torch.zeros_like(m), torch.ones_like(total), torch.zeros_like(acc)))
    return merge_partials(parts)


def softmax_partial(query, memory, values, beta, similarity, mask, observed, chunk_size):
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
        s = scaled_scores(query, memory[..., start:stop, :], beta, similarity, observed)
        m = _slice_mask(mask, start, stop)
        if m is not None:
            s = s.masked_fill(m, float("-inf"))
        # the shift is a constant for autograd (the result does not depend on it)
        new_max = torch.maximum(run_max, s.detach().amax(dim=-1, keepdim=True))
        safe = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        scale = exp(run_max - safe)
        if grad:
            p = exp(s - safe)
            run_sum = run_sum * scale + p.sum(-1, keepdim=True)
            acc = acc * scale + p @ values[..., start:stop, :]
        else:
            p = exp_(s.sub_(safe))
            run_sum.mul_(scale).add_(p.sum(-1, keepdim=True))
            acc.mul_(scale).add_(p @ values[..., start:stop, :])
        run_max = new_max
    return run_max, run_sum, acc


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
        w = exp(m - top)
        total = s * w if total is None else total + s * w
        acc = a * w if acc is None else acc + a * w
    return acc / total.clamp_min(torch.finfo(total.dtype).tiny)
