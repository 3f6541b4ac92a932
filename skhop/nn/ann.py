"""Approximate candidate search for large memories: a faiss inverted-file index.

The index only proposes candidates: the Hopfield update then runs on the
exact features of the best ``n`` of them (:mod:`skhop.nn.memory`), so the
quantisation error matters only when it pushes the best memory out of the
candidates. faiss is optional; :func:`import_faiss` says how to install it.
"""

import math

import numpy as np
import torch

from ._threads import limit_threads

__all__ = ["import_faiss", "resolve_index", "faiss_threads", "IVFIndex"]

# index="auto" uses the approximate index from this many stored patterns on
AUTO_APPROXIMATE_MIN = 200_000
# rows normalised and added to the index at a time (no normalised copy of the bank)
_ADD_ROWS = 65536


def import_faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "index='approximate' needs faiss; install it with `pip install skhop[faiss]` "
            "(or `pip install faiss-cpu`)."
        ) from None
    return faiss


def resolve_index(index, n_memories):
    """``"exact"`` or ``"approximate"`` for ``index`` in {"auto", "exact", "approximate"}.

    ``"auto"`` is ``"approximate"`` from :data:`AUTO_APPROXIMATE_MIN` stored
    patterns on when faiss is installed. ``"approximate"`` without faiss raises.
    """
    if index != "auto":
        if index == "approximate":
            import_faiss()
        return index
    if n_memories < AUTO_APPROXIMATE_MIN:
        return "exact"
    try:
        import_faiss()
    except ImportError:
        return "exact"
    return "approximate"


def faiss_threads(n_threads):
    """:func:`limit_threads` for faiss's OpenMP threads."""
    faiss = import_faiss()
    return limit_threads(faiss.omp_get_max_threads, faiss.omp_set_num_threads, n_threads)


def _unit(rows):
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), np.finfo(rows.dtype).tiny)


class IVFIndex:
    """Inverted lists with 4-bit product-quantised codes (faiss fast scan).

    Parameters
    ----------
    keys : ndarray of shape (M, k), float32
        The stored features the index ranks.
    metric : {"ip", "l2"}
        Inner product or Euclidean distance.
    normalise : bool
        Index the unit rows (and normalise queries): with ``metric="ip"``
        candidates are then the most cosine-similar rows.
    n_lists : int or "auto"
        Inverted lists; ``"auto"`` is ``2 sqrt(M)``, never more than
        ``M / 39`` (faiss wants about 39 training rows per list).
    seed : int
        Seeds the choice of training rows and faiss's k-means.
    n_threads : int or None
        faiss threads while building.

    Notes
    -----
    The index holds ``k / 2`` bytes per stored row (the codes), not a copy of
    the keys. A pickle holds the serialised index; it is deserialised on
    first use.
    """

    def __init__(self, keys, *, metric, normalise, n_lists, seed, n_threads=None):
        faiss = import_faiss()
        M, k = keys.shape
        n_lists = int(2 * math.sqrt(M)) if n_lists == "auto" else int(n_lists)
        n_lists = int(max(1, min(n_lists, M // 39)))
        n_sub = k // 2 if k % 2 == 0 else k
        faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.index_factory(k, f"IVF{n_lists},PQ{n_sub}x4fs", faiss_metric)
        rng = np.random.RandomState(seed)
        n_train = min(M, 40 * max(n_lists, 64))
        rows = np.arange(M) if n_train == M else np.sort(rng.choice(M, n_train, replace=False))
        sample = np.ascontiguousarray(keys[rows], dtype=np.float32)
        if normalise:
            sample = _unit(sample)
        faiss.extract_index_ivf(index).cp.seed = int(seed % (2**31 - 1))
        with faiss_threads(n_threads):
            index.train(sample)
            for start in range(0, M, _ADD_ROWS):
                block = np.ascontiguousarray(keys[start : start + _ADD_ROWS], dtype=np.float32)
                index.add(_unit(block) if normalise else block)
        self.normalise = bool(normalise)
        self._index = index
        self._blob = None

    @classmethod
    def for_similarity(cls, keys, *, similarity, n_lists, seed, n_threads=None):
        """The index whose candidates suit ``similarity``: Euclidean for ``"neg_l2"``,
        inner product for ``"dot"``, cosine (unit rows) for ``"cosine"`` and
        ``"auto"`` (one candidate list for both of its models)."""
        return cls(
            keys,
            metric="l2" if similarity == "neg_l2" else "ip",
            normalise=similarity in ("cosine", "auto"),
            n_lists=n_lists,
            seed=seed,
            n_threads=n_threads,
        )

    @property
    def index(self):
        if self._index is None:
            self._index = import_faiss().deserialize_index(self._blob)
        return self._index

    def search(self, F, n, *, n_probe, n_threads=None):
        """Indices (int64 tensor on ``F``'s device, -1 where fewer) of ``n`` candidates per row."""
        faiss = import_faiss()
        index = self.index
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = min(n_probe, ivf.nlist)
        q = np.ascontiguousarray(F.detach().cpu().numpy(), dtype=np.float32)
        if self.normalise:
            q = _unit(q)
        with faiss_threads(n_threads):
            _, idx = index.search(q, n)
        return torch.from_numpy(idx).to(F.device)

    def __getstate__(self):
        blob = self._blob
        if blob is None:
            blob = import_faiss().serialize_index(self._index)
        return {"normalise": self.normalise, "_blob": blob, "_index": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
