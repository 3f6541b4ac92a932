"""A fitted Hopfield memory: exact streamed retrieval, candidate retrieval, the auto router.

:class:`HopfieldMemory` holds what a fit decided (the stored patterns, the
feature map's weight, the similarity, the inverse temperatures, the optional
candidate index) and answers queries with it. The stored patterns are held
once: with the identity feature map they are also the keys. Each call
places the bank on its device once and streams it in chunks.

Complete queries are compared in feature space; a query with NaN entries
is compared on its observed entries in input space (a linear map of a
partial query is not defined). With ``similarity="auto"`` each query is
routed to ``"neg_l2"`` or ``"cosine"`` by the likelihood-ratio test of
:func:`skhop.nn.kernel.scale_statistic`.
"""

from dataclasses import dataclass

import numpy as np
import torch

from ._separation import CHUNKABLE, blockwise_topk, merge_topk, stable_topk
from .functional import AUTO_CHUNK_ELEMENTS, _retrieve, hopfield_energy
from .kernel import (
    auto_beta,
    likelihood_ratio,
    min_separation,
    nearest_rival,
    scale_statistic,
    scale_threshold,
)

__all__ = ["RetrievalSettings", "HopfieldMemory", "routed_models"]


def routed_models(similarity):
    """The similarities queries are retrieved with: both models for ``"auto"``."""
    return ("neg_l2", "cosine") if similarity == "auto" else (similarity,)


@dataclass(frozen=True)
class RetrievalSettings:
    """The knobs read at every call (none of them changes what a fit stored)."""

    separation: str = "softmax"
    top_k: int | None = None
    n_steps: int = 1
    chunk_size: int | None = None
    n_candidates: int = 32
    n_probe: int = 64
    n_threads: int | None = None


@dataclass(frozen=True)
class _Bank:
    """The memory's tensors on one device, for one call."""

    values: torch.Tensor
    keys: torch.Tensor
    weight: torch.Tensor | None

    def features(self, Q_t):
        return Q_t if self.weight is None else Q_t @ self.weight.mT


class HopfieldMemory:
    """Stored patterns with the state a fit derived from them, and retrieval over them.

    Parameters
    ----------
    values : ndarray of shape (M, d), float32, C-contiguous
        The stored patterns (read out in input space). Held, not copied.
    weight : ndarray of shape (k, d) or None
        The linear feature map; ``None`` is the identity (the keys are then
        ``values`` itself, no second copy).
    similarity : {"auto", "cosine", "dot", "neg_l2"}
        The similarity fixed at fit.
    betas : dict
        Inverse temperature per routed similarity, in feature space.
    betas_partial : dict or None
        The same for partial queries, compared in input space; ``None`` when
        it is ``betas`` (the identity map, or a fixed ``beta``).
    ann : IVFIndex or None
        Candidate index over the keys; ``None`` retrieves exactly.
    """

    def __init__(self, values, weight, similarity, betas, betas_partial, ann=None):
        self.values = values
        self.weight = weight
        self.keys = (
            values if weight is None else np.ascontiguousarray(values @ weight.T, dtype=np.float32)
        )
        self.similarity = similarity
        self.betas = dict(betas)
        self.betas_partial = None if betas_partial is None else dict(betas_partial)
        self.ann = ann

    @classmethod
    def fit(cls, values, weight, similarity, beta, device, make_index=None):
        """Derive the inverse temperatures (``beta="auto"``) and the index; also min separation.

        Returns ``(memory, min_separation)``. ``make_index(keys)`` builds the
        candidate index, or is ``None`` for exact retrieval. Seed torch
        around the call (beyond 4,096 memories the statistics sample anchors).
        """
        partial = beta == "auto" and weight is not None
        memory = cls(values, weight, similarity, {}, {} if partial else None)
        with torch.no_grad():
            bank = memory._bank(device)
            keys = bank.keys
            rival = nearest_rival(keys, "cosine") if keys.shape[0] > 1 else None
            for model in routed_models(similarity):
                if beta == "auto":
                    own = rival if model == "cosine" else None
                    memory.betas[model] = float(auto_beta(keys, model, rival=own))
                else:
                    memory.betas[model] = float(beta)
                if partial:
                    memory.betas_partial[model] = float(auto_beta(bank.values, model))
            min_sep = min_separation(keys, rival=rival)
        if make_index is not None:
            memory.ann = make_index(memory.keys)
        return memory, float(min_sep)

    # ------------------------------------------------------------------ plumbing

    @property
    def n_memories(self):
        return self.values.shape[0]

    def _bank(self, device):
        values = torch.from_numpy(self.values).to(device)
        keys = values if self.weight is None else torch.from_numpy(self.keys).to(device)
        weight = None if self.weight is None else torch.from_numpy(self.weight).to(device)
        return _Bank(values, keys, weight)

    def _blocks(self, Q, device):
        """(rows, queries, partial) for the complete and for the partial (NaN) queries."""
        partial = np.isnan(Q).any(axis=1)
        for is_partial in (False, True):
            rows = np.flatnonzero(partial == is_partial)
            if rows.size:
                Q_t = torch.from_numpy(np.asarray(Q[rows], dtype=np.float32)).to(device)
                yield torch.from_numpy(rows), Q_t, is_partial

    def _partial_beta(self, sim):
        return (self.betas if self.betas_partial is None else self.betas_partial)[sim]

    def _n_candidates(self, cfg, at_least=1):
        return min(max(cfg.n_candidates, cfg.top_k or 1, at_least), self.n_memories)

    def _kwargs(self, sim, cfg, num_steps=None):
        return dict(
            similarity=sim,
            separation=cfg.separation,
            num_steps=cfg.n_steps if num_steps is None else num_steps,
            top_k=cfg.top_k,
        )

    # ------------------------------------------------------------------ routing

    def _groups(self, F, keys, cfg, observed=None, idx=None):
        """(rows, similarity) pairs: which queries are retrieved with which similarity."""
        if self.similarity != "auto":
            return [(slice(None), self.similarity)]
        if idx is None:
            stat = scale_statistic(F, keys, observed=observed, block_size=cfg.chunk_size)
        else:
            # each query against its own candidates, in blocks of queries (bounded memory)
            step = max(1, AUTO_CHUNK_ELEMENTS // (idx.shape[1] * keys.shape[1]))
            parts = []
            for s in range(0, F.shape[0], step):
                i = idx[s : s + step]
                parts.append(
                    scale_statistic(
                        F[s : s + step, None, :], keys[i.clamp_min(0)], exclude=(i < 0)[:, None, :]
                    )[:, 0]
                )
            stat = torch.cat(parts)
        n = F.shape[-1] if observed is None else observed.sum(-1)
        return _route_groups(stat, n)

    def _route(self, bank, Q_t, partial, cfg):
        """(compared rows, groups, candidates) of one block of complete or partial queries."""
        if partial:
            observed = (~torch.isnan(Q_t)).to(Q_t.dtype)
            groups = self._groups(torch.nan_to_num(Q_t, nan=0.0), bank.values, cfg, observed)
            return Q_t, groups, None
        F = bank.features(Q_t)
        idx = None
        if self.ann is not None:
            idx = self.ann.search(
                F, self._n_candidates(cfg), n_probe=cfg.n_probe, n_threads=cfg.n_threads
            )
        return F, self._groups(F, bank.keys, cfg, idx=idx), idx

    # ------------------------------------------------------------------ updates

    def _exact(self, F, keys, values, beta, kwargs, cfg, query_mask=None):
        """Exact update, memory streamed by the core; query blocks for dense separations."""
        if cfg.separation in CHUNKABLE:
            return _retrieve(
                F,
                keys,
                values,
                beta=beta,
                query_mask=query_mask,
                chunk_size=cfg.chunk_size,
                **kwargs,
            )
        step = max(1, AUTO_CHUNK_ELEMENTS // max(keys.shape[0], 1))
        outs = []
        for s in range(0, F.shape[0], step):
            qm = (
                query_mask if not isinstance(query_mask, torch.Tensor) else query_mask[s : s + step]
            )
            outs.append(
                _retrieve(F[s : s + step], keys, values, beta=beta, query_mask=qm, **kwargs)
            )
        return torch.cat(outs) if outs else F.new_zeros((0, values.shape[1]))

    def _approximate(self, F, keys, values, beta, kwargs, idx):
        """The update over each query's candidates only (``idx``: -1 pads)."""
        n = idx.shape[1]
        missing = idx < 0
        idx = idx.clamp_min(0)
        kwargs = dict(kwargs)
        if kwargs["separation"] == "topk":
            kwargs["top_k"] = min(kwargs["top_k"], n)
        outs = []
        step = max(1, AUTO_CHUNK_ELEMENTS // (n * (keys.shape[1] + values.shape[1])))
        for s in range(0, F.shape[0], step):
            i = idx[s : s + step]
            out = _retrieve(
                F[s : s + step, None, :],
                keys[i],
                values[i],
                beta=beta,
                mask=missing[s : s + step, None, :],
                **kwargs,
            )
            outs.append(out[:, 0, :])
        return torch.cat(outs) if outs else F.new_zeros((0, values.shape[1]))

    def _run(self, bank, F, sim, cfg, idx=None, num_steps=None):
        """Retrieve complete queries' features ``F`` with ``sim`` (read-out: the keys' values)."""
        kwargs = self._kwargs(sim, cfg, num_steps)
        values = bank.values if num_steps is None else bank.keys
        if idx is not None:
            return self._approximate(F, bank.keys, values, self.betas[sim], kwargs, idx)
        return self._exact(F, bank.keys, values, self.betas[sim], kwargs, cfg)

    # ------------------------------------------------------------------ answers

    def retrieve(self, Q, cfg, device):
        """Retrieved patterns (float32 tensor on the CPU) for the validated queries ``Q``."""
        out = torch.empty((Q.shape[0], self.values.shape[1]), dtype=torch.float32)
        with torch.no_grad():
            bank = self._bank(device)
            for rows, Q_t, partial in self._blocks(Q, device):
                F, groups, idx = self._route(bank, Q_t, partial, cfg)
                block = torch.empty(
                    (Q_t.shape[0], bank.values.shape[1]), dtype=bank.values.dtype, device=device
                )
                for sub, sim in groups:
                    if partial:
                        kwargs = self._kwargs(sim, cfg)
                        block[sub] = self._exact(
                            F[sub],
                            bank.values,
                            bank.values,
                            self._partial_beta(sim),
                            kwargs,
                            cfg,
                            query_mask="nan",
                        )
                    else:
                        block[sub] = self._run(
                            bank, F[sub], sim, cfg, idx=None if idx is None else idx[sub]
                        )
                out[rows] = block.cpu()
        return out

    def query_similarity(self, Q, cfg, device):
        """The similarity each query is retrieved with (ndarray of str)."""
        out = np.empty(Q.shape[0], dtype="<U6")
        if self.similarity != "auto":
            out[:] = self.similarity
            return out
        with torch.no_grad():
            bank = self._bank(device)
            for rows, Q_t, partial in self._blocks(Q, device):
                _, groups, _ = self._route(bank, Q_t, partial, cfg)
                for sub, sim in groups:
                    out[rows[sub.cpu()].numpy()] = sim
        return out

    def kneighbors(self, Q, n, cfg, device):
        """(distances float64, indices intp) of the ``n`` most attended memories per query.

        Distances: ``1 - cosine``, ``-dot`` or Euclidean for a fixed
        similarity; with ``"auto"`` always Euclidean: ``|q - m|`` for the
        ``"neg_l2"`` queries, ``min_{s >= 0} |q - s m|`` (the distance to the
        memory's ray, monotone in the cosine) for the ``"cosine"`` ones.
        Partial queries use observed entries, rescaled by ``d / n_observed``.
        With one step and exact retrieval, the routing test and the ranking
        share one streamed pass (one product per block of memories).
        """
        dist = np.empty((Q.shape[0], n), dtype=np.float64)
        ind = np.empty((Q.shape[0], n), dtype=np.intp)
        models = routed_models(self.similarity)
        with torch.no_grad():
            bank = self._bank(device)
            for rows, Q_t, partial in self._blocks(Q, device):
                if partial:
                    observed = (~torch.isnan(Q_t)).to(Q_t.dtype)
                    F, keys = torch.nan_to_num(Q_t, nan=0.0), bank.values
                else:
                    observed, F, keys = None, bank.features(Q_t), bank.keys
                if cfg.n_steps == 1 and (partial or self.ann is None):
                    best = self._scan(keys, F, n, models, cfg, observed)
                    found = [
                        (sub, sim, F[sub], None if observed is None else observed[sub], *top)
                        for sub, sim in self._split(best, F, observed)
                        for top in [(best[sim][0][sub], best[sim][1][sub])]
                    ]
                else:
                    _, groups, _ = self._route(bank, Q_t, partial, cfg)
                    found = [
                        (sub, sim, *self._state_neighbors(bank, Q_t[sub], n, partial, sim, cfg))
                        for sub, sim in groups
                    ]
                for sub, sim, state, obs, v, i in found:
                    r = rows[sub.cpu() if isinstance(sub, torch.Tensor) else sub].numpy()
                    dist[r] = self._distance(v, sim, state, obs).cpu().numpy()
                    ind[r] = i.cpu().numpy()
        return dist, ind

    @staticmethod
    def _ranking(F, k, models, observed=None):
        """Per model, a score of (query, memory) that ranks as its similarity, from one product.

        ``"neg_l2"``: ``<f, k> - |k|^2 / 2`` (``-|f - k|^2 / 2`` plus a
        per-query constant); ``"cosine"``: ``<f, k> / |k|``; ``"dot"``:
        ``<f, k>``. With ``observed``, ``|k|^2`` over the observed coordinates.
        """
        dot = F @ k.mT
        if "neg_l2" in models or "cosine" in models:
            kk = k * k
            hk = 0.5 * (kk.sum(-1).unsqueeze(-2) if observed is None else observed @ kk.mT)
        out = {}
        if "neg_l2" in models:
            out["neg_l2"] = dot - hk
        if "cosine" in models:
            # in place: the product is not needed any more
            out["cosine"] = dot.mul_((2.0 * hk).clamp_min(torch.finfo(dot.dtype).tiny).rsqrt())
        if "dot" in models:
            out["dot"] = dot
        return out

    def _scan(self, keys, F, n, models, cfg, observed=None):
        """One streamed pass over ``keys``: ``{model: (values, indices)}`` of the top ``n``."""
        M = keys.shape[0]
        block = cfg.chunk_size or max(256, AUTO_CHUNK_ELEMENTS // max(F.shape[0], 1))
        best = dict.fromkeys(models)
        for start in range(0, M, block):
            stop = min(start + block, M)
            scores = self._ranking(F, keys[start:stop], models, observed)
            for model, s in scores.items():
                v, i = stable_topk(s, min(n, stop - start))
                best[model] = merge_topk(best[model], (v, i + start), n)
        return best

    def _split(self, best, F, observed):
        """(rows, similarity) from a scan's best scores: the routing test with ``"auto"``."""
        if self.similarity != "auto":
            return [(slice(None), self.similarity)]
        qq = (F * F).sum(-1)
        n = F.new_tensor(float(F.shape[-1])) if observed is None else observed.sum(-1)
        stat = likelihood_ratio(qq, best["neg_l2"][0][:, 0], best["cosine"][0][:, 0], n)
        return _route_groups(stat, n)

    def _distance(self, v, sim, F, observed):
        """Distances from the ranking scores ``v`` of :meth:`_ranking` (see :meth:`kneighbors`)."""
        qq = (F * F).sum(-1, keepdim=True)
        scale = 1.0
        if observed is not None:
            scale = F.shape[-1] / observed.sum(-1, keepdim=True).clamp_min(1.0)
        if sim == "neg_l2":
            return (scale * (qq - 2.0 * v)).clamp_min(0.0).sqrt()
        if sim == "dot":
            return -scale * v
        if self.similarity != "auto":
            return 1.0 - v / qq.sqrt().clamp_min(torch.finfo(v.dtype).tiny)
        # the scaled model's residual |f|^2 - max(<f, k>, 0)^2 / |k|^2, in the data's units
        return (scale * (qq - v.clamp_min(0.0).square())).clamp_min(0.0).sqrt()

    def _state_neighbors(self, bank, Q_t, n, partial, sim, cfg):
        """(final state, observed, scores, indices) after ``n_steps - 1`` updates."""
        if partial:
            kwargs = self._kwargs(sim, cfg, cfg.n_steps - 1)
            beta = self._partial_beta(sim)
            state = self._exact(Q_t, bank.values, bank.values, beta, kwargs, cfg, "nan")
            v, i = self._scan(bank.values, state, n, (sim,), cfg)[sim]
            return state, None, v, i
        F = bank.features(Q_t)
        if cfg.n_steps > 1:
            idx = None
            if self.ann is not None:
                idx = self.ann.search(
                    F, self._n_candidates(cfg), n_probe=cfg.n_probe, n_threads=cfg.n_threads
                )
            F = self._run(bank, F, sim, cfg, idx=idx, num_steps=cfg.n_steps - 1)
        if self.ann is None:
            v, i = self._scan(bank.keys, F, n, (sim,), cfg)[sim]
            return F, None, v, i
        c = self._n_candidates(cfg, at_least=n)
        idx = self.ann.search(F, c, n_probe=cfg.n_probe, n_threads=cfg.n_threads)
        s = self._ranking(F[:, None, :], bank.keys[idx.clamp_min(0)], (sim,))[sim][:, 0, :]
        v, j = stable_topk(s.masked_fill(idx < 0, float("-inf")), n)
        return F, None, v, idx.gather(1, j)

    def nearest(self, R):
        """Index of the stored pattern nearest (Euclidean, input space) to each row of ``R``."""
        with torch.no_grad():
            mem = torch.from_numpy(self.values)
            xx = (mem * mem).sum(1)
            block = max(256, AUTO_CHUNK_ELEMENTS // max(R.shape[0], 1))
            _, idx = blockwise_topk(
                lambda a, b: 2 * R @ mem[a:b].mT - xx[a:b], mem.shape[0], 1, block
            )
        return idx[:, 0]

    def energy(self, Q, cfg, device):
        """Hopfield energy (float64 ndarray) of complete queries, each with its similarity."""
        with torch.no_grad():
            bank = self._bank(device)
            Q_t = torch.from_numpy(np.asarray(Q, np.float32)).to(device)
            F, groups, _ = self._route(bank, Q_t, False, cfg)
            e = torch.empty(Q_t.shape[0], dtype=bank.keys.dtype, device=device)
            for rows, sim in groups:
                e[rows] = hopfield_energy(
                    F[rows],
                    bank.keys,
                    beta=self.betas[sim],
                    chunk_size=cfg.chunk_size,
                    similarity=sim,
                )
        return e.cpu().numpy().astype(np.float64)


def _route_groups(stat, n):
    """``[(rows, similarity)]``: the rows whose statistic passes the threshold go to cosine."""
    scaled = stat > scale_threshold(n).to(stat)
    rows = torch.arange(stat.shape[0], device=stat.device)
    return [
        (rows[sel], sim)
        for sel, sim in ((~scaled, "neg_l2"), (scaled, "cosine"))
        if bool(sel.any())
    ]
