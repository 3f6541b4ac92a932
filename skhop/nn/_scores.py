"""Similarity scores between query rows and stored rows."""

import torch

__all__ = ["SIMILARITIES", "similarity_scores"]

SIMILARITIES = ("dot", "cosine", "neg_l2")


_LOG2E = 1.4426950408889634


def exp(x):
    """``exp(x)``, fast for every argument: ``exp2(x * log2(e))``.

    torch's vectorised CPU ``exp`` leaves its fast path for arguments below
    float32's underflow (about -87) and for ``-inf``: 5 to 40 times slower
    on AVX2, and a softmax over many far stored patterns (a large ``beta``)
    has most of its arguments there. ``exp2`` keeps its speed; rounding the
    product adds a relative error of about ``|x| * eps`` to an ``exp(x)``
    that is then at most ``e**x`` of the largest term.
    """
    return torch.exp2(x * _LOG2E)


def exp_(x):
    """In-place :func:`exp`."""
    return x.mul_(_LOG2E).exp2_()


def tiny(t):
    """Smallest normal number of ``t``'s dtype: a norm floor that depends on no unit."""
    return torch.finfo(t.dtype).tiny


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
            qn = query.norm(dim=-1, keepdim=True).clamp_min(tiny(query))
            xn = memory.norm(dim=-1).clamp_min(tiny(memory)).unsqueeze(-2)
            return dot / qn / xn
        qq = (query * query).sum(-1, keepdim=True)
        xx = (memory * memory).sum(-1).unsqueeze(-2)
        return (-0.5 * (qq - 2.0 * dot + xx)).clamp_max(0.0)
    d = query.shape[-1]
    n_obs = observed.sum(-1, keepdim=True)
    none = n_obs == 0
    if similarity == "cosine":
        xx_obs = observed @ (memory * memory).mT  # |x restricted to observed|^2
        qn = query.norm(dim=-1, keepdim=True).clamp_min(tiny(query))
        scores = dot / qn / xx_obs.clamp_min(tiny(xx_obs)).sqrt()
    else:
        scale = d / n_obs.clamp_min(1.0)
        if similarity == "dot":
            scores = dot * scale
        else:
            xx_obs = observed @ (memory * memory).mT
            qq = (query * query).sum(-1, keepdim=True)
            scores = (-0.5 * scale * (qq - 2.0 * dot + xx_obs)).clamp_max(0.0)
    return scores.masked_fill(none, 0.0)


def scaled_scores(query, memory, beta, similarity, observed):
    if similarity == "dot" and observed is None:
        # beta * <q, x> == <beta q, x>: scale the small operand.
        return (query * beta) @ memory.mT
    if similarity == "cosine" and observed is None:
        q = query / query.norm(dim=-1, keepdim=True).clamp_min(tiny(query)) * beta
        xn = memory.norm(dim=-1).clamp_min(tiny(memory)).unsqueeze(-2)
        return (q @ memory.mT) / xn
    return beta * similarity_scores(query, memory, similarity, observed)
