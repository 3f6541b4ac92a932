"""The three Hopfield layer types of Ramsauer et al. (2020) as ``torch.nn`` modules.

- :class:`Hopfield` associates two sets: state patterns (queries) retrieve from
  stored patterns (keys and values), both given at call time.
- :class:`HopfieldPooling` pools a set with learned state patterns (queries):
  a bag of instances in, a fixed-size vector out.
- :class:`HopfieldLayer` holds learned stored patterns and learned targets:
  an input retrieves a weighted mix of the targets.

All shapes are batch first, ``(batch, length, dim)``, unless ``batch_first``
is False. Every module returns its attention from the same forward pass when
asked (``return_attention=True``).

A forward pass checks shapes and dtypes only, as ``torch.nn`` layers do: the
values are not scanned (a NaN in an input reaches the output) and beta is
never read back to the host, so a step on a GPU does not wait for it. The
functional entry :func:`skhop.nn.functional.hopfield_retrieve` checks values.
"""

import math

import torch
from torch import nn

from ._checks import fraction, positive_int, positive_number
from ._rebuild import Rebuildable
from ._scores import SIMILARITIES
from ._separation import SEPARATIONS
from .functional import _retrieve

__all__ = ["Hopfield", "HopfieldPooling", "HopfieldLayer"]


class _HopfieldCore(nn.Module):
    """Shared settings of the retrieval: heads, beta, separation, steps, dropout."""

    def __init__(
        self,
        hidden_size,
        num_heads,
        *,
        beta,
        learn_beta,
        separation,
        similarity,
        num_steps,
        top_k,
        dropout,
    ):
        super().__init__()
        num_heads = positive_int("num_heads", num_heads)
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})."
            )
        head_dim = hidden_size // num_heads
        num_steps = positive_int("num_steps", num_steps)
        if separation not in SEPARATIONS:
            raise ValueError(f"separation must be one of {SEPARATIONS}, got {separation!r}.")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}.")
        if separation == "topk":
            top_k = positive_int("top_k", top_k)
        dropout = fraction("dropout", dropout)
        beta = positive_number("beta", beta, allow_none=True)
        if beta is None:
            beta = 1.0 / math.sqrt(head_dim)
        # float32 whatever the default dtype, so a model does not depend on the caller's
        log_beta = torch.tensor(math.log(beta), dtype=torch.float32)
        if learn_beta:
            self.log_beta = nn.Parameter(log_beta)
        else:
            self.register_buffer("log_beta", log_beta)
        self.num_heads = num_heads
        self.separation = separation
        self.similarity = similarity
        self.num_steps = num_steps
        self.top_k = top_k
        self.dropout = float(dropout)

    @property
    def beta(self):
        """Inverse temperature (a positive scalar tensor)."""
        return self.log_beta.exp()

    def _split(self, x):
        # (..., n, H * hd) -> (..., H, n, hd)
        *lead, n, hidden = x.shape
        return x.reshape(*lead, n, self.num_heads, hidden // self.num_heads).transpose(-3, -2)

    def _merge(self, x):
        # (..., H, n, hd) -> (..., n, H * hd)
        x = x.transpose(-3, -2)
        return x.reshape(*x.shape[:-2], -1)

    def _retrieve(self, q, k, v, mask, return_attention):
        # the hot path: shapes were checked by the caller, values are not
        # (no finiteness scan, no read-back of beta to the host)
        result = _retrieve(
            q,
            k,
            v,
            beta=self.beta,
            similarity=self.similarity,
            separation=self.separation,
            num_steps=self.num_steps,
            mask=mask,
            top_k=self.top_k,
            dropout_p=self.dropout,
            training=self.training,
            return_attention=return_attention,
        )
        return result if return_attention else (result, None)


def _check_input(name, x, size, ndim):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}.")
    if x.shape[-1] != size:
        raise ValueError(
            f"{name} must have {size} features in its last dimension, got {x.shape[-1]}."
        )


def _padding_mask(name, mask, batch, length):
    """(batch, length) bool, True = padding -> (batch, 1, 1, length)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = padding).")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"{name} must have shape ({batch}, {length}), got {tuple(mask.shape)}.")
    return mask[:, None, None, :]


class Hopfield(Rebuildable, nn.Module):
    """Association of two sets: state patterns retrieve from stored patterns.

    ``output = W_o [ V  sep(beta * sim(K, Q)) ]`` with ``Q = W_q query``,
    ``K = W_k stored``, ``V = W_v values`` (``values`` defaults to
    ``stored``), computed per head.

    Parameters
    ----------
    input_size : int
        Features of the state patterns (queries).
    stored_size : int, optional
        Features of the stored patterns; defaults to ``input_size``.
    hidden_size : int, optional
        Size of the projected space, split over the heads; defaults to
        ``input_size``. Must be divisible by ``num_heads``.
    output_size : int, optional
        Features of the output; defaults to ``input_size``.
    num_heads : int, default=1
    beta : float, optional
        Inverse temperature; defaults to ``1 / sqrt(hidden_size / num_heads)``.
    learn_beta : bool, default=False
        Learn ``log(beta)`` as a parameter.
    normalize : bool, default=False
        Layer-normalise state and stored patterns before projection.
    dropout : float, default=0.0
        Dropout on the attention weights in training mode.
    separation, similarity, num_steps, top_k
        As in :func:`skhop.nn.functional.hopfield_retrieve`.
    batch_first : bool, default=True
        Inputs are ``(batch, length, dim)``; else ``(length, batch, dim)``.
    bias : bool, default=True
        Bias in the projections.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn import Hopfield
    >>> layer = Hopfield(input_size=8, num_heads=2)
    >>> out, attn = layer(torch.randn(4, 5, 8), torch.randn(4, 7, 8), return_attention=True)
    >>> out.shape, attn.shape
    (torch.Size([4, 5, 8]), torch.Size([4, 2, 5, 7]))
    """

    def __init__(
        self,
        input_size,
        stored_size=None,
        hidden_size=None,
        output_size=None,
        *,
        num_heads=1,
        beta=None,
        learn_beta=False,
        normalize=False,
        dropout=0.0,
        separation="softmax",
        similarity="dot",
        num_steps=1,
        top_k=None,
        batch_first=True,
        bias=True,
    ):
        super().__init__()
        settings = dict(
            beta=beta,
            learn_beta=learn_beta,
            separation=separation,
            similarity=similarity,
            num_steps=num_steps,
            top_k=top_k,
            dropout=dropout,
        )
        positive_int("input_size", input_size)
        for name, v in (
            ("stored_size", stored_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        ):
            positive_int(name, v, allow_none=True)
        stored_size = stored_size or input_size
        hidden_size = hidden_size or input_size
        output_size = output_size or input_size
        self.core = _HopfieldCore(hidden_size, num_heads, **settings)
        self.input_size, self.stored_size = input_size, stored_size
        self.hidden_size, self.output_size = hidden_size, output_size
        self.batch_first = bool(batch_first)
        self.norm_query = nn.LayerNorm(input_size) if normalize else nn.Identity()
        self.norm_stored = nn.LayerNorm(stored_size) if normalize else nn.Identity()
        self.q_proj = nn.Linear(input_size, hidden_size, bias=bias)
        self.k_proj = nn.Linear(stored_size, hidden_size, bias=bias)
        self.v_proj = nn.Linear(stored_size, hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, output_size, bias=bias)

    def forward(
        self,
        query,
        stored,
        values=None,
        key_padding_mask=None,
        attn_mask=None,
        return_attention=False,
    ):
        """Retrieve for every state pattern.

        Parameters
        ----------
        query : Tensor of shape (batch, L, input_size)
        stored : Tensor of shape (batch, M, stored_size)
        values : Tensor of shape (batch, M, stored_size), optional
            Patterns read out; defaults to ``stored``.
        key_padding_mask : bool Tensor of shape (batch, M), optional
            ``True`` marks padding among the stored patterns (zero weight).
        attn_mask : bool Tensor of shape (L, M), optional
            ``True`` forbids a query to attend to a stored pattern.
        return_attention : bool, default=False

        Returns
        -------
        output : Tensor of shape (batch, L, output_size)
        attention : Tensor of shape (batch, num_heads, L, M)
            Only with ``return_attention=True``.
        """
        if not self.batch_first:
            query, stored = query.transpose(0, 1), stored.transpose(0, 1)
            values = None if values is None else values.transpose(0, 1)
        _check_input("query", query, self.input_size, 3)
        _check_input("stored", stored, self.stored_size, 3)
        if values is None:
            values = stored
        else:
            _check_input("values", values, self.stored_size, 3)
            if values.shape[:2] != stored.shape[:2]:
                raise ValueError("values must have the same batch and length as stored.")
        if query.shape[0] != stored.shape[0]:
            raise ValueError(
                f"query and stored have different batch sizes: {query.shape[0]} "
                f"and {stored.shape[0]}."
            )
        B, L, M = query.shape[0], query.shape[1], stored.shape[1]
        mask = _padding_mask("key_padding_mask", key_padding_mask, B, M)
        if attn_mask is not None:
            if not isinstance(attn_mask, torch.Tensor) or attn_mask.dtype != torch.bool:
                raise TypeError("attn_mask must be a bool tensor (True = forbidden).")
            if tuple(attn_mask.shape) != (L, M):
                raise ValueError(
                    f"attn_mask must have shape ({L}, {M}), got {tuple(attn_mask.shape)}."
                )
            mask = attn_mask if mask is None else mask | attn_mask
        c = self.core
        q = c._split(self.q_proj(self.norm_query(query)))
        k = c._split(self.k_proj(self.norm_stored(stored)))
        v = c._split(self.v_proj(self.norm_stored(values)))
        out, attn = c._retrieve(q, k, v, mask, return_attention)
        out = self.out_proj(c._merge(out))
        if not self.batch_first:
            out = out.transpose(0, 1)
        return (out, attn) if return_attention else out


class HopfieldPooling(Rebuildable, nn.Module):
    """Pool a set of patterns with learned state patterns (queries).

    The stored patterns are the (projected) instances of the set; the state
    patterns are ``num_queries`` learned vectors. Each query retrieves a
    weighted mix of the instances, so the attention says which instances the
    pooled vector is made of.

    Parameters
    ----------
    input_size : int
        Features of an instance.
    hidden_size : int, optional
        Projected size, split over heads; defaults to ``input_size``.
    output_size : int, optional
        Features per query in the output; defaults to ``hidden_size``.
    num_heads : int, default=1
    num_queries : int, default=1
        Number of learned state patterns.
    flatten : bool, default=True
        Return ``(batch, num_queries * output_size)``; else
        ``(batch, num_queries, output_size)``.
    beta, learn_beta, normalize, dropout, separation, similarity, num_steps, top_k, bias
        As in :class:`Hopfield`.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn import HopfieldPooling
    >>> pool = HopfieldPooling(input_size=6, num_queries=2)
    >>> bags = torch.randn(3, 10, 6)
    >>> padding = torch.zeros(3, 10, dtype=torch.bool)
    >>> padding[0, 4:] = True  # the first bag has 4 instances
    >>> out, attn = pool(bags, key_padding_mask=padding, return_attention=True)
    >>> out.shape, attn.shape, float(attn[0, 0, 0, 4:].sum().detach())
    (torch.Size([3, 12]), torch.Size([3, 1, 2, 10]), 0.0)
    """

    def __init__(
        self,
        input_size,
        hidden_size=None,
        output_size=None,
        *,
        num_heads=1,
        num_queries=1,
        flatten=True,
        beta=None,
        learn_beta=False,
        normalize=False,
        dropout=0.0,
        separation="softmax",
        similarity="dot",
        num_steps=1,
        top_k=None,
        bias=True,
    ):
        super().__init__()
        settings = dict(
            beta=beta,
            learn_beta=learn_beta,
            separation=separation,
            similarity=similarity,
            num_steps=num_steps,
            top_k=top_k,
            dropout=dropout,
        )
        positive_int("input_size", input_size)
        positive_int("hidden_size", hidden_size, allow_none=True)
        positive_int("output_size", output_size, allow_none=True)
        positive_int("num_queries", num_queries)
        hidden_size = hidden_size or input_size
        output_size = output_size or hidden_size
        self.core = _HopfieldCore(hidden_size, num_heads, **settings)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.num_queries, self.flatten = num_queries, bool(flatten)
        self.query = nn.Parameter(torch.empty(num_queries, hidden_size))
        self.norm = nn.LayerNorm(input_size) if normalize else nn.Identity()
        self.k_proj = nn.Linear(input_size, hidden_size, bias=bias)
        self.v_proj = nn.Linear(input_size, hidden_size, bias=bias)
        self.out_proj = nn.Linear(hidden_size, output_size, bias=bias)
        nn.init.normal_(self.query, std=1.0 / math.sqrt(hidden_size))

    def forward(self, input, key_padding_mask=None, return_attention=False):
        """Pool each set of the batch.

        Parameters
        ----------
        input : Tensor of shape (batch, n_instances, input_size)
        key_padding_mask : bool Tensor of shape (batch, n_instances), optional
            ``True`` marks padding; padded instances get exactly zero weight,
            so a set's output does not depend on how much it was padded.
        return_attention : bool, default=False

        Returns
        -------
        output : Tensor of shape (batch, num_queries * output_size)
            Or ``(batch, num_queries, output_size)`` when ``flatten=False``.
        attention : Tensor of shape (batch, num_heads, num_queries, n_instances)
            Only with ``return_attention=True``.
        """
        _check_input("input", input, self.input_size, 3)
        B, N = input.shape[:2]
        mask = _padding_mask("key_padding_mask", key_padding_mask, B, N)
        c = self.core
        x = self.norm(input)
        k = c._split(self.k_proj(x))
        v = c._split(self.v_proj(x))
        q = c._split(self.query.unsqueeze(0))
        out, attn = c._retrieve(q, k, v, mask, return_attention)
        out = self.out_proj(c._merge(out))
        if self.flatten:
            out = out.reshape(B, -1)
        return (out, attn) if return_attention else out


class HopfieldLayer(Rebuildable, nn.Module):
    """A layer with learned stored patterns and learned targets.

    ``output = mean_h T^T sep(beta * sim(W_h Y, W_h x))``: the stored patterns
    ``Y`` live in input space, each head compares them with the input through
    its own projection ``W_h`` (shared by input and stored patterns, so a
    stored pattern initialised from a data point is matched by that point),
    and the learned targets ``T`` are read out. With ``hidden_size=None``
    there is no projection and one head compares raw inputs with ``Y``.

    Parameters
    ----------
    input_size : int
    num_memories : int
        Number of learned stored patterns.
    output_size : int, optional
        Size of a target; defaults to ``input_size``.
    hidden_size : int, optional
        Projected size, split over the heads; ``None`` for no projection.
    num_heads : int, default=1
    beta, learn_beta, normalize, dropout, separation, similarity, num_steps, top_k
        As in :class:`Hopfield` (``num_steps`` updates the state in projected
        space before the read-out of the targets).

    Examples
    --------
    >>> import torch
    >>> from skhop.nn import HopfieldLayer
    >>> layer = HopfieldLayer(input_size=4, num_memories=16, output_size=3)
    >>> layer(torch.randn(8, 4)).shape
    torch.Size([8, 3])
    """

    def __init__(
        self,
        input_size,
        num_memories,
        output_size=None,
        hidden_size=None,
        *,
        num_heads=1,
        beta=None,
        learn_beta=False,
        normalize=False,
        dropout=0.0,
        separation="softmax",
        similarity="dot",
        num_steps=1,
        top_k=None,
    ):
        super().__init__()
        settings = dict(
            beta=beta,
            learn_beta=learn_beta,
            separation=separation,
            similarity=similarity,
            num_steps=num_steps,
            top_k=top_k,
            dropout=dropout,
        )
        positive_int("input_size", input_size)
        positive_int("num_memories", num_memories)
        positive_int("output_size", output_size, allow_none=True)
        positive_int("hidden_size", hidden_size, allow_none=True)
        output_size = output_size or input_size
        if hidden_size is None and num_heads != 1:
            raise ValueError("num_heads > 1 needs a hidden_size (one projection per head).")
        self.core = _HopfieldCore(hidden_size or input_size, num_heads, **settings)
        self.input_size, self.num_memories = input_size, num_memories
        self.output_size, self.hidden_size = output_size, hidden_size
        self.norm = nn.LayerNorm(input_size) if normalize else nn.Identity()
        self.proj = nn.Identity() if hidden_size is None else nn.Linear(input_size, hidden_size)
        self.stored = nn.Parameter(torch.empty(num_memories, input_size))
        self.targets = nn.Parameter(torch.empty(num_memories, output_size))
        nn.init.normal_(self.stored)
        nn.init.normal_(self.targets, std=1.0 / math.sqrt(num_memories))

    @torch.no_grad()
    def init_memories_(self, patterns, targets=None):
        """Set the stored patterns (and optionally the targets) from data.

        Parameters
        ----------
        patterns : Tensor of shape (num_memories, input_size)
        targets : Tensor of shape (num_memories, output_size), optional
        """
        if tuple(patterns.shape) != tuple(self.stored.shape):
            raise ValueError(
                f"patterns must have shape {tuple(self.stored.shape)}, got {tuple(patterns.shape)}."
            )
        self.stored.copy_(patterns)
        if targets is not None:
            if tuple(targets.shape) != tuple(self.targets.shape):
                raise ValueError(
                    f"targets must have shape {tuple(self.targets.shape)}, "
                    f"got {tuple(targets.shape)}."
                )
            self.targets.copy_(targets)
        return self

    def forward(self, input, return_attention=False):
        """Read out the targets for each input.

        Parameters
        ----------
        input : Tensor of shape (..., input_size)
            Any leading dimensions, e.g. ``(batch, input_size)`` or
            ``(batch, length, input_size)``.
        return_attention : bool, default=False

        Returns
        -------
        output : Tensor of shape (..., output_size)
        attention : Tensor of shape (..., num_heads, num_memories)
            Only with ``return_attention=True``.
        """
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}.")
        if input.dim() < 1 or input.shape[-1] != self.input_size:
            raise ValueError(
                f"input must have {self.input_size} features in its last "
                f"dimension, got shape {tuple(input.shape)}."
            )
        lead = input.shape[:-1]
        c = self.core
        x = input.reshape(1, -1, self.input_size)  # (1, N, in)
        q = c._split(self.proj(self.norm(x)))  # (1, H, N, hd)
        k = c._split(self.proj(self.norm(self.stored)).unsqueeze(0))  # (1, H, M, hd)
        v = self.targets.to(q.dtype)
        out, attn = c._retrieve(q, k, v, None, return_attention)  # (1, H, N, out)
        out = out.mean(dim=1).reshape(*lead, self.output_size)
        if return_attention:
            attn = attn[0].transpose(0, 1).reshape(*lead, c.num_heads, self.num_memories)
            return out, attn
        return out
