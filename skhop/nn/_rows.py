"""A Hopfield layer whose stored patterns are data rows and whose targets are their labels.

The "store raw input data" use of Ramsauer et al. (2020): the training rows,
embedded by a learned map, are the stored patterns; their one-hot labels are
what a retrieval reads out, so the output is a soft vote of the training
rows a query retrieves. Trained with each row left out of its own retrieval,
this is the neighbourhood-component design of ModernNCA (Ye et al., 2024)
and the retrieval part of TabR (Gorishniy et al., 2023).
"""

import math

import torch
from torch import nn

from ._embeddings import PeriodicEmbedding
from .functional import AUTO_CHUNK_ELEMENTS, _retrieve, similarity_scores
from .modules import HopfieldLayer

__all__ = ["RowHopfieldLayer"]

# Outputs of each feature's map in the periodic embedding, and the factor on the
# learning rate of the periodic embedding (both RealMLP's choices), which the
# residual branch learns at too.
_EMBEDDING_SIZE = 4
_SLOW_LR_FACTOR = 0.1


class RowHopfieldLayer(HopfieldLayer):
    """:class:`HopfieldLayer` whose stored patterns are data rows and targets their classes.

    ``P_h(c | x) = sum_j m_j [y_j = c] exp(beta_h sim(W_h x_j, W_h x)) /
    sum_j m_j exp(beta_h sim(W_h x_j, W_h x))`` over the stored rows ``x_j``
    with labels ``y_j`` and non-negative masses ``m_j`` (sample weights): a
    retrieval in the embedding of head ``h`` whose read-out is the label.
    The embedding ``W`` (a linear map, optionally after a periodic embedding
    of each feature, plus an optional nonlinear residual branch) and
    ``beta`` are learned; the stored rows are buffers set by
    :meth:`store_`. The heads' probabilities are averaged, floored at
    ``floor / num_classes`` so that no class has probability zero.

    Parameters
    ----------
    input_size : int
        Number of features of a row.
    num_memories : int
        Number of stored rows.
    num_classes : int
        Number of classes.
    hidden_size : int, default=64
        Embedding size of each head.
    num_heads : int, default=1
        Independent embeddings (heads) whose probabilities are averaged.
    mlp_size : int or None, default=None
        Width of the ReLU hidden layer of a residual branch: the embedding
        is ``W x + V relu(U x + c)``, with ``V`` initialised to zero and the
        branch learning at a tenth of the rate (:meth:`parameter_groups`),
        so that training starts from the linear embedding ``W x`` and bends
        it only where the data pay for it; ``None`` for a linear embedding.
    num_frequencies : int, default=0
        Periodic functions of each feature in a :class:`PeriodicEmbedding`
        before the hidden layer (RealMLP's PBLD embedding); 0 for none.
    frequency_scale : float, default=0.1
        Scale of the periodic embedding's initial frequencies, for
        standardised inputs.
    beta : float, optional
        Initial inverse temperature; ``1 / sqrt(hidden_size)`` by default.
    learn_beta : bool, default=True
    similarity : {"neg_l2", "cosine", "dot"}, default="neg_l2"
    floor : float, default=1e-3
        Share of the probability spread uniformly over the classes.
    dtype : {"float32", "float64"}, default="float32"
        Dtype of every parameter and buffer, whatever torch's default dtype.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn import RowHopfieldLayer
    >>> layer = RowHopfieldLayer(input_size=4, num_memories=10, num_classes=3)
    >>> layer = layer.store_(torch.randn(10, 4), torch.arange(10) % 3)
    >>> layer.log_proba(torch.randn(5, 4)).exp().sum(-1)
    tensor([1.0000, 1.0000, 1.0000, 1.0000, 1.0000], grad_fn=<SumBackward1>)
    """

    def __init__(
        self,
        input_size,
        num_memories,
        num_classes,
        hidden_size=64,
        *,
        num_heads=1,
        mlp_size=None,
        num_frequencies=0,
        frequency_scale=0.1,
        beta=None,
        learn_beta=True,
        similarity="neg_l2",
        floor=1e-3,
        dtype="float32",
    ):
        if num_frequencies < 0:
            raise ValueError(f"num_frequencies must be >= 0, got {num_frequencies!r}.")
        # the width the projection and the residual branch see
        width = input_size * (_EMBEDDING_SIZE + 1) if num_frequencies else input_size
        # the parent's own draws (its projection and patterns, replaced below) are made
        # off the caller's RNG: their count depends on torch's default dtype
        with torch.random.fork_rng(devices=[]):
            super().__init__(
                width,
                1,  # one learned pattern, replaced below by the stored rows
                output_size=num_classes,
                hidden_size=hidden_size * num_heads,
                num_heads=num_heads,
                beta=1.0 / math.sqrt(hidden_size) if beta is None else beta,
                learn_beta=learn_beta,
                similarity=similarity,
            )
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor!r}.")
        self.input_size, self.num_classes, self.floor = input_size, num_classes, float(floor)
        self.num_memories = num_memories
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
        # every tensor in an explicit dtype: the caller's default dtype is not used
        dtype = getattr(torch, dtype)
        self.proj = nn.Linear(width, hidden_size * num_heads, dtype=dtype)
        log_beta = self.core.log_beta.detach().to(dtype)
        del self.core.log_beta
        if learn_beta:
            self.core.log_beta = nn.Parameter(log_beta)
        else:
            self.core.register_buffer("log_beta", log_beta)
        # the stored rows and their labels are data, not parameters
        del self.stored, self.targets
        self.register_buffer("stored", torch.zeros(num_memories, input_size, dtype=dtype))
        self.register_buffer("labels", torch.zeros(num_memories, dtype=torch.long))
        self.register_buffer("mass", torch.ones(num_memories, dtype=dtype))
        self.hidden = (
            PeriodicEmbedding(
                input_size, num_frequencies, _EMBEDDING_SIZE, frequency_scale, dtype=dtype
            )
            if num_frequencies
            else nn.Identity()
        )
        self.residual = None
        if mlp_size is not None:
            self.residual = nn.Sequential(
                nn.Linear(width, mlp_size, dtype=dtype),
                nn.ReLU(),
                nn.Linear(mlp_size, hidden_size * num_heads, bias=False, dtype=dtype),
            )
            # the branch starts silent: the first steps train the linear embedding
            nn.init.zeros_(self.residual[-1].weight)
        # rows embedded at once outside training: the periodic features stay bounded
        per_row = input_size * max(num_frequencies, 1) + width + (mlp_size or 0)
        self._block = max(1, AUTO_CHUNK_ELEMENTS // per_row)

    @torch.no_grad()
    def store_(self, rows, labels, mass=None):
        """Set the stored rows, their labels and their masses.

        Parameters
        ----------
        rows : Tensor of shape (num_memories, input_size)
        labels : LongTensor of shape (num_memories,)
            Class indices in ``[0, num_classes)``.
        mass : Tensor of shape (num_memories,), optional
            Positive weight of each row; 1 by default.

        Returns
        -------
        self : RowHopfieldLayer
        """
        if tuple(rows.shape) != tuple(self.stored.shape):
            raise ValueError(
                f"rows must have shape {tuple(self.stored.shape)}, got {tuple(rows.shape)}."
            )
        self.stored.copy_(rows)
        self.labels.copy_(labels)
        self.mass.copy_(torch.ones_like(self.mass) if mass is None else mass)
        return self

    def embed(self, x):
        """Embed rows in every head.

        Parameters
        ----------
        x : Tensor of shape (n, input_size)

        Returns
        -------
        embedded : Tensor of shape (num_heads, n, hidden_size)
        """
        h = self.hidden(x)
        out = self.proj(h)
        if self.residual is not None:
            out = out + self.residual(h)
        return self.core._split(out)

    def parameter_groups(self, learning_rate):
        """Optimizer parameter groups: the periodic embedding and the residual branch learn slower.

        They learn at a tenth of ``learning_rate``, so the linear embedding
        is learned first and the nonlinear parts bend it only where the
        gradient keeps pointing the same way.

        Parameters
        ----------
        learning_rate : float

        Returns
        -------
        groups : list of dict
            ``{"params": [...], "lr": ...}`` for every trainable parameter.
        """
        slow = list(self.hidden.parameters())
        if self.residual is not None:
            slow += list(self.residual.parameters())
        slow = [p for p in slow if p.requires_grad]
        ids = {id(p) for p in slow}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "lr": learning_rate}]
        if slow:
            groups.append({"params": slow, "lr": learning_rate * _SLOW_LR_FACTOR})
        return groups

    def _embed_blocks(self, x):
        """:meth:`embed` block by block of rows, so no intermediate outgrows a block."""
        if x.shape[0] <= self._block:
            return self.embed(x)
        return torch.cat([self.embed(b) for b in x.split(self._block)], dim=1)

    def _floored(self, p):
        """``log((1 - floor) p + floor / num_classes)`` of the heads' probabilities ``p`` averaged.

        In probability space, where the floor keeps the log away from 0 (its
        gradient finite); without a floor, probabilities are clamped at the
        smallest normal float.
        """
        p = p[0] if p.shape[0] == 1 else p.mean(dim=0)
        if self.floor > 0:
            return p.mul(1 - self.floor).add_(self.floor / self.num_classes).log()
        return p.clamp_min(torch.finfo(p.dtype).tiny).log()

    def scores(self, query, keys, log_mass):
        """``beta * sim(key, query) + log(mass)``, up to a per-query constant.

        For ``"neg_l2"``, ``-|q - k|^2 / 2 = q.k - |k|^2 / 2 - |q|^2 / 2`` and the
        last term is the same for every key, so the softmax over keys does not
        see it: one matrix product with a per-key bias gives the scores.

        Parameters
        ----------
        query : Tensor of shape (num_heads, n, hidden_size)
        keys : Tensor of shape (num_heads, m, hidden_size)
        log_mass : Tensor of shape (m,)

        Returns
        -------
        scores : Tensor of shape (num_heads, n, m)
        """
        beta = self.core.beta
        if self.core.similarity == "neg_l2":
            bias = (log_mass - 0.5 * beta * (keys * keys).sum(-1)).unsqueeze(-2)
            return torch.baddbmm(bias, query * beta, keys.mT)
        return beta * similarity_scores(query, keys, self.core.similarity) + log_mass

    def log_proba_from(self, query, keys, labels, log_mass, mask=None, diagonal=None):
        """Class log-probabilities of embedded queries given embedded keys, differentiable.

        Parameters
        ----------
        query : Tensor of shape (num_heads, n, hidden_size)
        keys : Tensor of shape (num_heads, m, hidden_size)
        labels : LongTensor of shape (m,)
        log_mass : Tensor of shape (m,)
            Log of each key's mass (``-inf`` drops a key).
        mask : Tensor of shape (n, m), optional
            Added to the scores, e.g. the log of the share of a key's mass a
            query sees (``-inf`` leaves a row out of its own retrieval).
        diagonal : Tensor of shape (n,), optional
            Added to the score of query ``i`` for key ``i`` (queries that are
            the first ``n`` keys): the cheap form of a mask on the diagonal.

        Returns
        -------
        log_proba : Tensor of shape (n, num_classes)
        """
        scores = self.scores(query, keys, log_mass)
        if mask is not None:
            scores = scores + mask
        if diagonal is not None:
            scores.diagonal(dim1=-2, dim2=-1).add_(diagonal)
        # a query that sees no key (every key it may see left out by a draw) reads the
        # uniform distribution; its scores are set finite so that no NaN reaches the
        # gradient. torch.softmax rather than exp(scores - max): CPU exp takes a slow
        # path for the many arguments below float32's underflow (about -87)
        seen = scores.amax(dim=-1, keepdim=True) > float("-inf")
        weights = torch.softmax(scores.masked_fill(~seen, 0.0), dim=-1)  # (heads, n, m)
        onehot = nn.functional.one_hot(labels, self.num_classes).to(weights.dtype)
        return self._floored(torch.where(seen, weights @ onehot, 1.0 / self.num_classes))

    def training_loss(
        self, idx, labels, weights, own, *, key_share=1.0, groups=None, label_smoothing=0.0
    ):
        """Weighted negative log-likelihood of stored rows ``idx``, each left out of its own read.

        Parameters
        ----------
        idx : long Tensor of shape (batch,)
            Stored rows whose labels are predicted from the others.
        labels, weights : Tensor of shape (batch,)
            Their labels and sample weights.
        own : Tensor of shape (num_memories,)
            Log of the share of a row's mass it may see of itself: ``-inf``
            leaves it out entirely, ``log((c - 1) / c)`` keeps the other copies
            of a row stored ``c`` times.
        key_share : float in (0, 1], default=1.0
            Share of the stored rows the step retrieves from, drawn afresh
            at each call (the stochastic neighbour sampling of ModernNCA, a
            regulariser as well as a saving); 1 for all of them. The draw
            keeps each group of rows with probability ``key_share``; when it
            keeps none, every row is kept.
        groups : long Tensor of shape (num_memories,), optional
            Group of each stored row, ids in ``[0, num_groups)``: the rows of
            a group are kept or left out together. Give copies of a row one
            group, and the copies act as one row of their total mass. Each
            row is its own group by default.
        label_smoothing : float, default=0.0

        Returns
        -------
        loss : Tensor of shape ()
        """
        n = self.stored.shape[0]
        log_mass = self.mass.log()
        if key_share >= 1:
            keys = self.embed(self.stored)
            if idx.shape[0] == n:  # full batch: row i is key i
                log_p = self.log_proba_from(keys, keys, self.labels, log_mass, diagonal=own)
            else:
                mask = keys.new_zeros(idx.shape[0], n)
                mask[torch.arange(idx.shape[0], device=idx.device), idx] = own[idx]
                query = keys[:, idx]
                log_p = self.log_proba_from(query, keys, self.labels, log_mass, mask)
        else:
            keys_idx = self._draw_keys(key_share, groups)
            if idx.shape[0] == n:  # full batch: embed every row once
                query = self.embed(self.stored)
                keys = query[:, keys_idx]
            else:  # queries and keys embedded in one call: half the small kernels
                both = self.embed(self.stored[torch.cat([idx, keys_idx])])
                query, keys = both[:, : idx.shape[0]], both[:, idx.shape[0] :]
            same = idx[:, None] == keys_idx[None, :]
            mask = torch.where(same, own[idx][:, None], keys.new_zeros(()))
            log_p = self.log_proba_from(
                query, keys, self.labels[keys_idx], log_mass[keys_idx], mask
            )
        nll = -log_p.gather(1, labels[:, None])[:, 0]
        if label_smoothing > 0:
            nll = (1 - label_smoothing) * nll - label_smoothing * log_p.mean(dim=1)
        return nll.dot(weights) / weights.sum()

    def _draw_keys(self, key_share, groups):
        """Indices of the stored rows of the groups a fresh draw keeps (all if it keeps none)."""
        n = self.stored.shape[0]
        device = self.stored.device
        if groups is None:
            groups = torch.arange(n, device=device)
        num_groups = int(groups.max()) + 1
        # float32 draws whatever the default dtype, so the draw does not follow it
        draw = torch.rand(num_groups, device=device, dtype=torch.float32)
        kept = (draw < key_share)[groups]
        keys_idx = kept.nonzero()[:, 0]
        return keys_idx if keys_idx.numel() else torch.arange(n, device=device)

    def accuracy(self, x, labels, weights):
        """Weighted accuracy of the predictions for rows ``x`` (a validation score).

        Parameters
        ----------
        x : Tensor of shape (n, input_size)
        labels, weights : Tensor of shape (n,)

        Returns
        -------
        accuracy : Tensor of shape ()
        """
        pred = self.log_proba(x).argmax(dim=1)
        return ((pred == labels).to(weights.dtype) * weights).sum() / weights.sum()

    def log_proba(self, x, chunk_size=None):
        """Class log-probabilities of rows against every stored row.

        An exact retrieval by :func:`~skhop.nn.functional.hopfield_retrieve`,
        streamed over the stored rows in chunks of ``chunk_size`` (automatic
        when ``None``), so memory stays bounded for any number of stored rows.

        Parameters
        ----------
        x : Tensor of shape (n, input_size)
        chunk_size : int, optional
            Stored rows per chunk of the retrieval.

        Returns
        -------
        log_proba : Tensor of shape (n, num_classes)
        """
        q = self._embed_blocks(x)
        k = self._embed_blocks(self.stored)
        mass = self.mass.to(q.dtype)
        # a key's mass multiplies its value: the read-out of [m_j onehot_j, m_j]
        # divided by its last entry is the mass-weighted retrieval
        onehot = nn.functional.one_hot(self.labels, self.num_classes).to(q.dtype)
        values = torch.cat([onehot * mass[:, None], mass[:, None]], dim=1)
        out = _retrieve(
            q,
            k,
            values,
            beta=self.core.beta.to(q.dtype),
            similarity=self.core.similarity,
            chunk_size=chunk_size,
        )  # (heads, n, classes + 1)
        return self._floored(out[..., :-1].clamp_min(0) / out[..., -1:])

    def forward(self, input):
        """Class log-probabilities of ``input``; see :meth:`log_proba`.

        Parameters
        ----------
        input : Tensor of shape (n, input_size)

        Returns
        -------
        log_proba : Tensor of shape (n, num_classes)
        """
        return self.log_proba(input)
