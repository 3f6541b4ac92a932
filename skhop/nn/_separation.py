"""Separation functions: map similarity scores to retrieval weights.

Every function here takes scores of shape ``(..., M)`` and an optional boolean
``mask`` broadcastable to it (``True`` = ignore that memory) and returns
weights of the same shape whose rows sum to 1 over the unmasked entries.
Masked entries get exactly zero weight; a row whose memories are all masked
gets all-zero weights (and so a zero read-out) rather than NaN.
"""

import torch

from ._scores import exp

SEPARATIONS = ("softmax", "softmax1", "sparsemax", "entmax15", "topk")
# Separations whose normaliser can be accumulated chunk by chunk (exactly).
CHUNKABLE = ("softmax", "softmax1", "topk")

# For sparsemax and entmax-1.5, any score more than 2 below the row maximum
# is outside the support and gets exactly zero weight, so masked scores are
# replaced by a finite value this far below the maximum (no inf arithmetic).
_SPARSE_GAP = 4.0


def _masked_softmax(scores, mask, extra_one=False):
    if mask is None and not extra_one:
        return torch.softmax(scores, dim=-1)
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    shift = scores.amax(dim=-1, keepdim=True)
    if extra_one:
        # softmax1: exp(s_i) / (1 + sum_j exp(s_j)); the "1" is a zero logit.
        shift = shift.clamp_min(0.0)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    shift = shift.detach()
    e = exp(scores - shift)
    denom = e.sum(dim=-1, keepdim=True)
    if extra_one:
        denom = denom + torch.exp(-shift)
    return e / denom.clamp_min(torch.finfo(e.dtype).tiny)


def _sparse(scores, mask, fn):
    if mask is None:
        return fn(scores, dim=-1)
    mask = mask.expand_as(scores)
    live = ~mask
    top = scores.masked_fill(mask, float("-inf")).amax(dim=-1, keepdim=True)
    any_live = live.any(dim=-1, keepdim=True)
    top = torch.where(any_live, top, torch.zeros_like(top)).detach()
    filled = torch.where(mask, top - _SPARSE_GAP, scores)
    weights = fn(filled, dim=-1)
    # exact zeros for masked entries and for rows with nothing to attend to
    return weights.masked_fill(mask | ~any_live, 0.0)


def stable_topk(scores, k):
    """The ``k`` largest scores along the last dim; ties go to the lower index.

    A fixed tie rule makes top-k retrieval independent of chunking and of
    removing other memories. The result equals the first ``k`` entries of a
    stable descending sort, without sorting the whole row: ``k=1`` is
    ``torch.max`` (which returns the first maximal index); otherwise
    ``torch.topk`` keeps ``k + 1`` entries, the first ``k`` are ordered
    stably, and only rows where the ``(k + 1)``-th ties the ``k``-th (so that
    the kept set is not unique) are sorted in full.
    """
    n = scores.shape[-1]
    k = min(k, n)
    if k == 1:
        vals, idx = scores.max(dim=-1, keepdim=True)
        return vals, idx
    if k == 0 or 4 * k >= n:
        vals, idx = torch.sort(scores, dim=-1, descending=True, stable=True)
        return vals[..., :k], idx[..., :k]
    vals, idx = torch.topk(scores, k + 1, dim=-1, sorted=True)
    unfair = (vals[..., k] == vals[..., k - 1]) | torch.isnan(vals[..., k - 1])
    vals, idx = vals[..., :k], idx[..., :k]
    # a stable order among the k kept: by index, then stably by score
    idx, order = idx.sort(dim=-1)
    vals, order2 = torch.sort(vals.gather(-1, order), dim=-1, descending=True, stable=True)
    idx = idx.gather(-1, order2)
    if bool(unfair.any()):
        rows = unfair.reshape(-1).nonzero().squeeze(1)
        v, i = torch.sort(scores.reshape(-1, n)[rows], dim=-1, descending=True, stable=True)
        vals = vals.reshape(-1, k).index_copy(0, rows, v[:, :k]).reshape(vals.shape)
        idx = idx.reshape(-1, k).index_copy(0, rows, i[:, :k]).reshape(idx.shape)
    return vals, idx


def merge_topk(best, block, k):
    """Running top-``k`` ``(values, indices)`` merged with a later block's; ties to ``best``."""
    if best is None:
        return block
    v, j = stable_topk(torch.cat([best[0], block[0]], -1), k)
    return v, torch.cat([best[1], block[1]], -1).gather(-1, j)


def blockwise_topk(block_scores, n_items, k, block_size):
    """The ``k`` largest scores over ``n_items`` scored block by block.

    ``block_scores(start, stop)`` returns the scores of items ``start:stop``
    along the last dim; only one block and the running best ``k`` are held at
    a time. Ties go to the lower index, as with :func:`stable_topk` on the
    whole row, so the result does not depend on ``block_size``.

    Returns
    -------
    values, indices : Tensor of shape (..., min(k, n_items))
    """
    best = None
    for start in range(0, n_items, block_size):
        stop = min(start + block_size, n_items)
        v, i = stable_topk(block_scores(start, stop), min(k, stop - start))
        # earlier blocks first, so ties still go to the lower index
        best = merge_topk(best, (v, i + start), k)
    return best


def _topk(scores, mask, k):
    k = min(k, scores.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    vals, idx = stable_topk(scores, k)
    w = _masked_softmax(vals, torch.isneginf(vals))
    return torch.zeros_like(scores).scatter(-1, idx, w)


def separate(scores, separation="softmax", mask=None, top_k=None):
    """Apply a separation function along the last dimension.

    Parameters
    ----------
    scores : Tensor of shape (..., M)
        Scaled similarity scores (``beta * sim``).
    separation : {"softmax", "softmax1", "sparsemax", "entmax15", "topk"}
        ``"softmax1"`` adds 1 to the softmax denominator (a row may attend to
        nothing); ``"sparsemax"`` and ``"entmax15"`` give exact zeros;
        ``"topk"`` is a softmax over the ``top_k`` largest scores only.
    mask : bool Tensor broadcastable to ``scores``, optional
        ``True`` marks memories to ignore; they get exactly zero weight.
    top_k : int, optional
        Number of memories kept by ``"topk"``.

    Returns
    -------
    weights : Tensor of shape (..., M)

    Examples
    --------
    >>> import torch
    >>> from skhop.nn.functional import separate
    >>> scores = torch.tensor([[2.0, 1.0, -1.0]])
    >>> separate(scores, "sparsemax")
    tensor([[1., 0., 0.]])
    >>> separate(scores, "topk", top_k=2).gt(0).tolist()
    [[True, True, False]]
    """
    if separation == "softmax":
        return _masked_softmax(scores, mask)
    if separation == "softmax1":
        return _masked_softmax(scores, mask, extra_one=True)
    if separation == "topk":
        return _topk(scores, mask, top_k)
    if separation in ("sparsemax", "entmax15"):
        import entmax

        fn = entmax.sparsemax if separation == "sparsemax" else entmax.entmax15
        return _sparse(scores, mask, fn)
    raise ValueError(f"separation must be one of {SEPARATIONS}, got {separation!r}.")
