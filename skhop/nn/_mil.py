"""Multiple-instance networks on packed bags.

A batch of bags is a list of 2-D tensors ``(n_instances_i, input_size)``.
The instances of all bags are read as one stream, cut into pieces of at most
``chunk_size`` instances (a piece may hold many small bags or a slice of a
large one), and every reduction over a bag is a segment reduction over the
instances of that bag (``index_add_`` / ``scatter_reduce_``): work and memory
grow with the number of instances, never with ``n_bags * max_bag_size``, and
no bag is padded. Each piece gives, per bag it touches, the partials of the
online log-sum-exp (running maximum, sum of exponentials, weighted sum of
values) and of the plain poolings; partials of the pieces of one bag merge
exactly, so a bag of any size is pooled in bounded memory. While training,
pieces are checkpointed (recomputed in the backward pass) when a batch has
more than one, so the gradient of a bag of 100,000 instances also needs only
one piece's activations at a time.

``num_members`` networks are trained side by side as one module: their weights
are stacked along a leading member axis and applied with batched matrix
products, so an ensemble costs one pass, not ``num_members``.
"""

import bisect
import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ._quantile import quantile_normal
from ._rebuild import Rebuildable
from ._scores import exp

__all__ = ["MILNet", "MemberLinear", "drop_instances", "sample_instances", "POOLINGS"]

POOLINGS = ("mean", "max", "min")
DTYPE = torch.float32
# Instances per piece: about 8 KB of autograd state each with the defaults.
CHUNK_SIZE = 8192


class MemberLinear(nn.Module):
    """``num_members`` independent linear maps applied in one batched product.

    ``forward(x)`` takes ``(num_members, n, in_features)``, or ``(n,
    in_features)`` shared by every member, and returns ``(num_members, n,
    out_features)``. Each member is initialised as ``torch.nn.Linear`` is.
    """

    def __init__(self, num_members, in_features, out_features):
        super().__init__()
        self.num_members = num_members
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        w = torch.empty(num_members, in_features, out_features, dtype=DTYPE).uniform_(-bound, bound)
        b = torch.empty(num_members, 1, out_features, dtype=DTYPE).uniform_(-bound, bound)
        self.weight, self.bias = nn.Parameter(w), nn.Parameter(b)

    def forward(self, x):
        if x.dim() == 2:  # one input for all members: a single wide product
            k, d, o = self.weight.shape
            wide = self.weight.permute(1, 0, 2).reshape(d, k * o)
            return (x @ wide).reshape(-1, k, o).transpose(0, 1) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


def drop_instances(lengths, num_members, rate, device=None):
    """Bool ``(sum(lengths), num_members)``: which instances each member keeps.

    A random ``rate`` of each bag's instances is dropped for each member
    independently, never all of a bag: where every instance of a bag would
    go, the one with the largest draw stays.
    """
    lengths = torch.as_tensor(lengths, device=device)
    bag = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
    u = torch.rand((len(bag), num_members), dtype=DTYPE, device=device)
    keep = u >= rate
    kept = torch.zeros((len(lengths), num_members), dtype=torch.long, device=device)
    kept.index_add_(0, bag, keep.long())
    emptied = kept == 0
    if bool(emptied.any()):
        top = torch.full((len(lengths), num_members), -1.0, dtype=DTYPE, device=device)
        top.scatter_reduce_(0, bag[:, None].expand_as(u), u, "amax", include_self=False)
        keep |= emptied[bag] & (u == top[bag])
    return keep


def sample_instances(bags, max_instances):
    """Each bag longer than ``max_instances`` cut to that many of its instances, drawn anew.

    The instances are drawn without replacement (in their original order);
    shorter bags are returned as they are. A training step then costs at
    most ``max_instances`` instances per bag, whatever the bag sizes (the
    subsampling of DeepRC, Widrich et al. 2020, for bags of 1e5 sequences).
    """
    if max_instances is None:
        return bags
    return [
        b
        if len(b) <= max_instances
        else b[torch.randperm(len(b), device=b.device)[:max_instances].sort().values]
        for b in bags
    ]


def _segment_max(values, index, n, fill):
    out = torch.full((n, *values.shape[1:]), fill, dtype=values.dtype, device=values.device)
    idx = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    return out.scatter_reduce(0, idx, values, "amax", include_self=False)


def _segment_min(values, index, n, fill):
    out = torch.full((n, *values.shape[1:]), fill, dtype=values.dtype, device=values.device)
    idx = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    return out.scatter_reduce(0, idx, values, "amin", include_self=False)


def _segment_sum(values, index, n):
    out = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add(0, index, values)


class MILNet(Rebuildable, nn.Module):
    """Instance encoder, Hopfield pooling of each bag and a linear head, ``num_members`` times.

    Every instance (through the quantile-normal map of each feature when
    ``num_knots`` is set, see :meth:`init_quantiles_`) is encoded by
    ``num_layers`` ReLU layers of width
    ``hidden_size``; ``num_queries`` learned state patterns retrieve from the
    (layer-normalised) encoded instances of a bag with ``num_heads`` heads
    (softmax with inverse temperature ``beta``), the mean / max / min of the
    encoded instances (``pooling``) are appended, and a linear layer maps
    the bag vector to class scores. The members' log-probabilities are
    averaged.

    Parameters
    ----------
    input_size, num_classes, hidden_size, num_layers, num_heads, num_queries : int
    beta : float or None
        ``None`` means ``1 / sqrt(hidden_size / num_heads)``.
    learn_beta, normalize : bool
    dropout, attention_dropout : float
    pooling : tuple of {"mean", "max", "min"}
    num_members : int, default=1
    num_memories : int, default=0
        Stored instances (see :meth:`init_memories_`); each adds to the bag
        vector the similarity ``exp(-d^2 / input_size)`` of the bag's
        instance nearest to it (MILES' bag embedding, the large-beta limit
        of retrieving the bag with the stored instance as the query).
    num_knots : int, default=0
        Knots of the quantile-normal map of each input feature (see
        :meth:`init_quantiles_`); 0 reads the inputs as they are.

    Examples
    --------
    >>> import torch
    >>> from skhop.nn import MILNet
    >>> net = MILNet(5, 2, 8, 1, 2, 2, None, False, True, 0.0, 0.0, ("mean",)).eval()
    >>> bags = [torch.randn(3, 5), torch.randn(40, 5)]
    >>> scores, attention = net(bags, return_attention=True)
    >>> scores.shape, attention.shape
    (torch.Size([2, 2]), torch.Size([43]))
    >>> torch.allclose(net(bags[1:]), scores[1:], atol=1e-6)
    True
    """

    def __init__(
        self,
        input_size,
        num_classes,
        hidden_size,
        num_layers,
        num_heads,
        num_queries,
        beta,
        learn_beta,
        normalize,
        dropout,
        attention_dropout,
        pooling,
        num_members=1,
        num_memories=0,
        num_knots=0,
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})."
            )
        pooling = tuple(pooling)
        if any(p not in POOLINGS for p in pooling) or len(set(pooling)) != len(pooling):
            raise ValueError(f"pooling must be distinct names from {POOLINGS}, got {pooling!r}.")
        k = num_members
        self.num_members, self.num_heads, self.num_queries = k, num_heads, num_queries
        self.pooling, self.dropout, self.attention_dropout = pooling, dropout, attention_dropout
        self.input_size = input_size
        width = input_size
        self.encoder = nn.ModuleList()
        for _ in range(num_layers):
            self.encoder.append(MemberLinear(k, width, hidden_size))
            width = hidden_size
        self.width = width
        if normalize:
            self.norm_weight = nn.Parameter(torch.ones(k, 1, width, dtype=DTYPE))
            self.norm_bias = nn.Parameter(torch.zeros(k, 1, width, dtype=DTYPE))
        else:
            self.norm_weight = self.norm_bias = None
        self.k_proj = MemberLinear(k, width, hidden_size)
        self.v_proj = MemberLinear(k, width, hidden_size)
        self.out_proj = MemberLinear(k, hidden_size, hidden_size)
        query = torch.randn(k, num_queries, hidden_size, dtype=DTYPE) / math.sqrt(hidden_size)
        self.query = nn.Parameter(query)
        if beta is None:
            beta = 1.0 / math.sqrt(hidden_size // num_heads)
        log_beta = torch.tensor(math.log(beta), dtype=DTYPE)
        if learn_beta:
            self.log_beta = nn.Parameter(log_beta)
        else:
            self.register_buffer("log_beta", log_beta)
        # stored instances (set by init_memories_): a bag is also described by how
        # close it comes to each, the large-beta limit of a Hopfield retrieval
        self.register_buffer("memories", torch.zeros(num_memories, input_size, dtype=DTYPE))
        # the quantile-normal map of the inputs (set by init_quantiles_)
        self.num_knots = num_knots
        self.register_buffer("knots", torch.zeros(input_size, num_knots, dtype=DTYPE))
        self.register_buffer("levels", torch.full((input_size, num_knots), 0.5, dtype=DTYPE))
        self.kinds = pooling + (("memory",) if num_memories else ())
        n_in = num_queries * hidden_size + len(pooling) * width + num_memories
        self.head = MemberLinear(k, n_in, num_classes)

    def init_quantiles_(self, knots, levels):
        """Set the distribution function each input feature is read through.

        An input ``x_f`` becomes ``Phi^-1(F_f(x_f))``, with ``F_f`` linear
        between the knots and ``Phi^-1`` the standard normal quantile
        function (:func:`skhop.nn._quantile.quantile_normal`).

        Parameters
        ----------
        knots, levels : array-like of shape (input_size, num_knots)
            Non-decreasing values of each feature (distinct but for a
            repeated last one) and the distribution function at them.

        Returns
        -------
        self : MILNet
        """
        with torch.no_grad():
            self.knots.copy_(torch.as_tensor(knots, dtype=DTYPE))
            self.levels.copy_(torch.as_tensor(levels, dtype=DTYPE))
        return self

    def init_memories_(self, patterns):
        """Store instances as the memory the bags are compared with.

        Parameters
        ----------
        patterns : array-like of shape (num_memories, input_size)
            Instances as the network's input receives them (before the
            quantile-normal map, which is applied to them too).

        Returns
        -------
        self : MILNet
        """
        with torch.no_grad():
            self.memories.copy_(torch.as_tensor(patterns, dtype=DTYPE))
        return self

    # ------------------------------------------------------------ pieces

    def _inputs(self, x):
        """The instances as the encoder reads them: float32, through the quantile map if set."""
        x = x.to(DTYPE)
        return quantile_normal(x, self.knots, self.levels) if self.num_knots else x

    def map_bags(self, bags, chunk_size=None):
        """The bags as the encoder reads them, for training on them many times.

        The quantile-normal map (when set) is applied once to all instances,
        ``chunk_size`` at a time; :meth:`member_logits` and
        :meth:`training_loss` with ``mapped=True`` then skip it. The result
        is a float32 copy of the instances: for data that fit in memory twice.

        Parameters
        ----------
        bags : list of Tensor of shape (n_instances_i, input_size)
        chunk_size : int, optional
            Instances mapped at a time (8192 by default).

        Returns
        -------
        mapped : list of Tensor of shape (n_instances_i, input_size)
        """
        x = torch.cat(bags)
        chunk = max(1, int(chunk_size or CHUNK_SIZE))
        with torch.no_grad():
            z = torch.cat([self._inputs(p) for p in x.split(chunk)])
        return list(z.split([len(b) for b in bags]))

    def _encode(self, x):
        """Read inputs ``(n, input_size)`` -> encoded ``(K, n, width)``, scores, values.

        The keys are never formed: a query's score against the key
        ``z W_k + b_k`` of head ``h`` is ``z (W_k q)_h + (b_k q)_h``, so the
        queries are folded into the key projection once per call.
        """
        k, heads = self.num_members, self.num_heads
        h = x
        if not self.encoder:
            h = h.unsqueeze(0).expand(k, -1, -1)
        for layer in self.encoder:
            h = F.dropout(F.relu(layer(h)), self.dropout, self.training)
        z = h
        if self.norm_weight is not None:
            z = F.layer_norm(h, (self.width,)) * self.norm_weight + self.norm_bias
        q = self.query.unflatten(-1, (heads, -1)) * self.log_beta.exp()  # (K, Q, H, hd)
        wk = self.k_proj.weight.unflatten(-1, (heads, -1))  # (K, width, H, hd)
        bk = self.k_proj.bias.unflatten(-1, (heads, -1))  # (K, 1, H, hd)
        fold = torch.einsum("kwhd,kqhd->kwhq", wk, q).flatten(2)
        shift = torch.einsum("kwhd,kqhd->kwhq", bk, q).flatten(2)
        scores = torch.baddbmm(shift, z, fold).transpose(0, 1).unflatten(-1, (heads, -1))
        values = self.v_proj(z).unflatten(-1, (heads, -1)).transpose(0, 1)  # (n, K, H, hd)
        return h, scores, values

    def _piece(self, x, index, n, keep, mapped=False):
        """Partials of one piece: ``index`` gives each instance's bag in ``range(n)``."""
        x = x if mapped else self._inputs(x)
        h, s, values = self._encode(x)
        if keep is not None:
            s = s.masked_fill(~keep[:, :, None, None], -math.inf)
        top = _segment_max(s.detach(), index, n, -math.inf)
        shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # all hidden: e = 0
        e = exp(s - shift[index])
        if self.training and self.attention_dropout > 0:
            e = F.dropout(e, self.attention_dropout, True)
        total = _segment_sum(e, index, n)
        acc = _segment_sum(e.unsqueeze(-1) * values.unsqueeze(-2), index, n)  # (n, K, H, Q, hd)
        parts = [top, total, acc]
        ht = h.transpose(0, 1)  # (n, K, width)
        kept = None if keep is None else keep.unsqueeze(-1)
        for kind in self.kinds:
            if kind == "memory":  # minus the squared distance to the nearest instance
                with torch.no_grad():
                    m = self._inputs(self.memories)
                    d2 = (x.square().sum(1, keepdim=True) - 2 * x @ m.T) + m.square().sum(1)
                    w = (-d2).unsqueeze(1).expand(-1, self.num_members, -1)
                    if kept is not None:
                        w = w.masked_fill(~kept, -math.inf)
                    parts.append(_segment_max(w, index, n, -math.inf))
            elif kind == "mean":
                w = ht if kept is None else ht * kept.to(ht.dtype)
                parts.append(_segment_sum(w, index, n))
            elif kind == "max":
                w = ht if kept is None else ht.masked_fill(~kept, -math.inf)
                parts.append(_segment_max(w, index, n, -math.inf))
            else:
                w = ht if kept is None else ht.masked_fill(~kept, math.inf)
                parts.append(_segment_min(w, index, n, math.inf))
        return tuple(parts)

    def _merge(self, parts, index, n):
        """Merge the partials of several pieces (rows with bag ``index``) into ``n`` bags."""
        tops, total, acc, *pools = parts
        top = _segment_max(tops, index, n, -math.inf)
        w = torch.exp(tops - top[index])  # a piece that saw none of a bag (-inf) weighs 0
        merged = [
            top,
            _segment_sum(total * w, index, n),
            _segment_sum(acc * w.unsqueeze(-1), index, n),
        ]
        for kind, p in zip(self.kinds, pools, strict=True):
            if kind == "mean":
                merged.append(_segment_sum(p, index, n))
            elif kind in ("max", "memory"):
                merged.append(_segment_max(p, index, n, -math.inf))
            else:
                merged.append(_segment_min(p, index, n, math.inf))
        return merged

    def _pool(self, bags, keep, chunk_size, mapped=False):
        """Merged partials ``(n_bags, ...)`` of a list of bags, piece by piece."""
        plan = _Plan(bags, chunk_size)
        grad = torch.is_grad_enabled() and len(plan.pieces) > 1
        outs, piece_bags = [], []
        for piece in plan.pieces:

            def run(keep_p, piece=piece):
                x, idx, n = plan.gather(piece)
                return self._piece(x, idx, n, keep_p, mapped)

            a, b, first, last = piece
            keep_p = None if keep is None else keep[a:b]
            outs.append(checkpoint(run, keep_p, use_reentrant=False) if grad else run(keep_p))
            piece_bags.append(torch.arange(first, last + 1, device=plan.device))
        if len(outs) == 1:
            return list(outs[0]), plan
        parts = [torch.cat(p) for p in zip(*outs, strict=True)]
        return self._merge(parts, torch.cat(piece_bags), len(bags)), plan

    def _logits(self, pooled, plan, keep, n_bags):
        lengths = plan.lengths
        top, total, acc, *pools = pooled
        out = acc / total.clamp_min(torch.finfo(total.dtype).tiny).unsqueeze(-1)  # (B,K,H,Q,hd)
        k = self.num_members
        out = out.permute(1, 0, 3, 2, 4).reshape(k, n_bags * self.num_queries, -1)
        out = self.out_proj(out).reshape(k, n_bags, -1)
        feats = [out]
        for kind, p in zip(self.kinds, pools, strict=True):
            if kind == "memory":  # similarity exp(-d^2 / input_size) of the nearest instance
                p = torch.exp(p.clamp_max(0.0) / self.input_size)
            elif kind == "mean":
                if keep is None:
                    count = lengths.to(p.dtype)[:, None, None]
                else:
                    bag = torch.repeat_interleave(torch.arange(n_bags, device=keep.device), lengths)
                    count = _segment_sum(keep.to(p.dtype), bag, n_bags).unsqueeze(-1)
                p = p / count
            feats.append(p.transpose(0, 1))
        bag_vec = F.dropout(torch.cat(feats, dim=-1), self.dropout, self.training)
        return self.head(bag_vec)  # (K, B, num_classes)

    # ------------------------------------------------------------ public

    def member_logits(self, bags, keep=None, chunk_size=None, mapped=False):
        """Each member's logits, for training.

        Parameters
        ----------
        bags : list of Tensor of shape (n_instances_i, input_size)
        keep : bool Tensor of shape (sum of n_instances_i, num_members), optional
            Which instances each member sees (instances in bag order), as
            ``drop_instances`` draws them; all by default.
        chunk_size : int, optional
            Instances per piece (8192 by default); results do not depend on
            it beyond float rounding.
        mapped : bool, default=False
            The bags come from :meth:`map_bags` (the input map is skipped).

        Returns
        -------
        logits : Tensor of shape (num_members, n_bags, num_classes)
        """
        pooled, plan = self._pool(bags, keep, chunk_size, mapped)
        return self._logits(pooled, plan, keep, len(bags))

    def training_loss(
        self, bags, labels, weights, max_instances=None, bag_dropout=0.0, mapped=False
    ):
        """Weighted cross-entropy of every member on one batch of bags.

        Parameters
        ----------
        bags : list of Tensor of shape (n_instances_i, input_size)
        labels : long Tensor of shape (n_bags,)
        weights : Tensor of shape (n_bags,)
            Sample weights; the loss is their weighted mean over bags and members.
        max_instances : int, optional
            Each bag is read through at most this many of its instances,
            drawn anew without replacement (:func:`sample_instances`).
        bag_dropout : float, default=0.0
            Share of instances each member does not see (:func:`drop_instances`).
        mapped : bool, default=False
            The bags come from :meth:`map_bags` (the input map is skipped).

        Returns
        -------
        loss : Tensor of shape ()
        """
        sel = sample_instances(bags, max_instances)
        keep = None
        if bag_dropout > 0:
            lengths = [len(b) for b in sel]
            keep = drop_instances(lengths, self.num_members, bag_dropout, labels.device)
        logits = self.member_logits(sel, keep, mapped=mapped)  # (num_members, n_bags, classes)
        loss = F.cross_entropy(
            logits.flatten(0, 1), labels.repeat(self.num_members), reduction="none"
        ).view(self.num_members, -1)
        return (loss * weights).sum() / (weights.sum() * self.num_members)

    def validation_score(self, bags, labels, weights):
        """Weighted mean log-likelihood of the labels (higher is better).

        Parameters
        ----------
        bags : list of Tensor of shape (n_instances_i, input_size)
        labels : long Tensor of shape (n_bags,)
        weights : Tensor of shape (n_bags,)

        Returns
        -------
        score : Tensor of shape ()
        """
        loss = F.nll_loss(self(bags), labels, reduction="none")
        return -(loss * weights).sum() / weights.sum()

    def forward(self, bags, return_attention=False, chunk_size=None):
        """Class scores of a list of bags.

        Parameters
        ----------
        bags : list of Tensor of shape (n_instances_i, input_size)
        return_attention : bool, default=False
            Also return each instance's pooling weight.
        chunk_size : int, optional
            Instances per piece (8192 by default); results do not depend on
            it beyond float rounding.

        Returns
        -------
        scores : Tensor of shape (n_bags, num_classes)
            The members' mean log-probabilities.
        attention : Tensor of shape (sum of n_instances_i,)
            Only with ``return_attention``: each instance's weight in the
            Hopfield pooling, in bag order, averaged over heads, queries
            and members (it sums to 1 over a bag).
        """
        pooled, plan = self._pool(bags, None, chunk_size)
        logits = self._logits(pooled, plan, None, len(bags))
        scores = F.log_softmax(logits, dim=-1).mean(dim=0)
        if not return_attention:
            return scores
        top, total = pooled[0], pooled[1]
        att = []
        for piece in plan.pieces:  # the scores again, normalised by the merged partials
            x, idx, _ = plan.gather(piece)
            i = idx + piece[2]
            s = self._encode(self._inputs(x))[1]
            att.append((exp(s - top[i]) / total[i]).mean(dim=(1, 2, 3)))
        return scores, torch.cat(att)


class _Plan:
    """The pieces of a list of bags: ``(start, stop, first_bag, last_bag)`` of the stream."""

    def __init__(self, bags, chunk_size):
        self.bags = bags
        self.device = bags[0].device
        lengths = [len(b) for b in bags]
        self.ends = list(itertools.accumulate(lengths))
        self.starts = [e - n for e, n in zip(self.ends, lengths, strict=True)]
        self.lengths = torch.tensor(lengths, device=self.device)
        self._ends_t = torch.tensor(self.ends, device=self.device)
        chunk = max(1, int(chunk_size or CHUNK_SIZE))
        total = self.ends[-1]
        cuts = list(range(0, total, chunk)) + [total]
        self.pieces = [
            (a, b, bisect.bisect_right(self.ends, a), bisect.bisect_right(self.ends, b - 1))
            for a, b in zip(cuts[:-1], cuts[1:], strict=True)
        ]

    def gather(self, piece):
        """The instances ``(n, input_size)`` of a piece and their bag in the piece."""
        a, b, first, last = piece
        st = self.starts
        if first == 0 and last == len(self.bags) - 1 and b - a == self.ends[-1]:  # all bags
            x = self.bags[0] if len(self.bags) == 1 else torch.cat(self.bags)
            n = len(self.bags)
            return x, torch.repeat_interleave(torch.arange(n, device=x.device), self.lengths), n
        xs = [self.bags[i][max(a - st[i], 0) : b - st[i]] for i in range(first, last + 1)]
        x = xs[0] if len(xs) == 1 else torch.cat(xs)
        stream = torch.arange(a, b, device=self.device)
        idx = torch.searchsorted(self._ends_t[first : last + 1], stream, right=True)
        return x, idx, last - first + 1
