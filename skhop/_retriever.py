"""KernelHopfieldRetriever: associative memory in a learned kernel space.

Stage I (optional) fits a linear feature map ``Phi`` that separates the
stored patterns (U-Hop, U-Hop+; see :mod:`skhop.nn.kernel`); Stage II retrieves
with the modern Hopfield update, comparing ``Phi(query)`` with
``Phi(memory)`` and reading out the stored patterns in input space.
"""

import functools
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import (
    VersionedStateMixin,
    check_n_threads,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
    validate_data,
)
from ._docs import shared_parameters
from ._kernel import SEPARATION_LOSSES, fit_feature_map
from .nn._separation import CHUNKABLE, SEPARATIONS
from .nn.ann import IVFIndex, resolve_index
from .nn.memory import HopfieldMemory, RetrievalSettings

__all__ = ["KernelHopfieldRetriever"]

# largest absolute entry of the stored patterns (and, above, of the queries) supported:
# float32 squared norms stay normal numbers with room for sums and products
SCALE_RANGE = (1e-15, 1e15)


@shared_parameters(
    device="Fitted values stay on the CPU.",
    n_threads="fitting and retrieving (faiss's threads too)",
    verbose="one line per Stage I epoch",
    random_state="Stage I (initialisation, batches) and the approximate index's training sample",
)
class KernelHopfieldRetriever(
    VersionedStateMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
    """Associative memory: retrieve stored patterns from corrupted or partial queries.

    ``fit(X)`` stores the rows of ``X``; ``transform(Q)`` runs the modern
    Hopfield update ``x_new = X^T sep(beta * sim(Phi(X), Phi(q)))``, in input
    space. ``Phi`` is a linear feature map: the identity by default, or one
    fitted by Stage I to separate the stored patterns (U-Hop, U-Hop+). NaN
    marks the unobserved entries of a query.

    Parameters
    ----------
    feature_dim : int or None, default=None
        Dimension of the feature space; ``None`` means the input dimension.
        A smaller value makes retrieval cheaper.
    separation_loss : {"lse", "uniformity", "min_sep"} or None, default=None
        Stage I loss on the pairwise cosines of the stored features:
        ``"lse"`` (U-Hop+, a temperature-``tau`` smooth maximum),
        ``"uniformity"`` (U-Hop, averaged per pattern), ``"min_sep"`` (the
        hard maximum). ``None`` skips Stage I: ``Phi`` is the identity when
        ``feature_dim`` is the input dimension, else the projection on the
        memories' top principal directions.
    tau : float, default=0.1
        Temperature of the ``"lse"`` and ``"uniformity"`` losses.
    max_iter : int, default=100
        Stage I epochs.
    learning_rate : float, default=0.01
        Stage I AdamW learning rate.
    similarity : {"auto", "cosine", "dot", "neg_l2"}, default="auto"
        Cosine, dot product or minus half the squared Euclidean distance of
        the features. Cosine suits occluded (zero-filled) or dimmed queries,
        ``"neg_l2"`` additive noise; ``"auto"`` chooses per query by a
        likelihood-ratio test (Notes, :meth:`query_similarity`).
    separation : {"softmax", "softmax1", "sparsemax", "entmax15", "topk"}, \
default="softmax"
        Separation function of the update (see :func:`skhop.nn.separate`).
        ``"softmax1"`` lets a query attend to nothing when every scaled score
        is well below 0; as ``"neg_l2"`` scores never exceed 0, with it the
        read-out shrinks to nearly zero.
    top_k : int or None, default=None
        Number of memories kept by ``separation="topk"`` (required there).
    beta : float or "auto", default="auto"
        Inverse temperature (with ``similarity="auto"`` a number is used by
        both models, whose scores differ in scale). ``"auto"`` takes the rule of
        :func:`skhop.nn.kernel.auto_beta`: large enough that a stored
        pattern keeps all but 0.1% of the attention on itself, from the
        smallest margin between a stored pattern and its nearest rival, and
        capped at ``1e4 / score range``. Near-duplicates (a margin below
        ``log((M - 1) / 0.001) * 1e-4`` of the score range) reach the cap
        and share their attention: exact duplicates half each.
    n_steps : int, default=1
        Number of Hopfield updates (the last one is the read-out).
    index : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"`` streams the whole memory through the update in chunks.
        ``"approximate"`` takes ``n_candidates`` memories per query from a
        faiss inverted-file index (4-bit product-quantised codes) and runs the
        exact update over their features. ``"auto"``: ``"approximate"`` from
        200,000 stored patterns on when faiss is installed.
    n_candidates : int, default=32
        Candidates per query of the approximate index (at least ``top_k``
        are taken with ``separation="topk"``).
    n_lists : int or "auto", default="auto"
        Inverted lists of the approximate index; ``"auto"`` is
        ``2 * sqrt(n_memories)``. Never more than ``n_memories / 39`` (faiss
        wants about 39 training rows per list).
    n_probe : int, default=64
        Lists the approximate index visits per query. More lists, slower
        search, better agreement with exact retrieval (see
        ``benchmarks/results/retrieval_speed.md`` and
        ``retrieval_speed_ann.md``).
    chunk_size : int or None, default=None
        Memories per chunk of the exact streamed update (bounded memory);
        ``None`` chooses from the query count.
    %(device)s
    %(n_threads)s
    %(verbose)s
    %(random_state)s

    Attributes
    ----------
    memories_ : ndarray of shape (n_memories, n_features), dtype float32
        The stored patterns.
    feature_map_ : torch.nn.Module
        The feature map ``Phi`` (a linear map on the CPU, in eval mode).
    beta_ : float or dict
        The inverse temperature used in feature space; with
        ``similarity="auto"`` a dict ``{"neg_l2": ..., "cosine": ...}`` with
        the inverse temperature of each model.
    separation_loss_curve_ : list of float
        Stage I loss per epoch (empty without Stage I).
    n_iter_ : int
        Stage I epochs run.
    min_separation_ : float
        Smallest pairwise angle (radians) between the normalised stored
        features: the spherical-code figure; larger is better separated.
        Exact up to 4,096 memories, estimated from 4,096 sampled anchors
        beyond (the true value can only be smaller).
    index_ : str
        ``"exact"`` or ``"approximate"``, as resolved from ``index``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen in ``fit``, when they are all strings.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : Hard nearest-neighbour search.
    skhop.HopfieldImputer : Fills NaN entries from stored rows.

    Notes
    -----
    Partial queries (NaN entries) are compared on their observed entries in
    *input* space, with ``beta`` from the same rule applied to the raw
    memories, always by the exact streamed update; ``transform`` returns the
    whole retrieved pattern (:class:`skhop.HopfieldImputer` fills only the
    gaps). A row with no observed entry is refused, naming the rows.

    ``similarity="auto"`` weighs two explanations of a query ``q`` by a
    stored ``m``: noise, ``q = m + e``, which ranks as ``"neg_l2"``, and
    scaled, ``q = s m + e`` with a free ``s >= 0`` (occluded, zero-filled,
    dimmed), which ranks as ``"cosine"``. The scaled model is chosen when
    the likelihood-ratio statistic exceeds the 0.999 quantile of its law
    under the noise model (:func:`skhop.nn.kernel.scale_statistic`; about
    one noisy query in a thousand goes to cosine; see the user guide). The
    query is retrieved, in every update, with the chosen similarity and its
    ``beta_``; ``kneighbors`` ranks it so and reports Euclidean distances.
    With ``index="approximate"`` the candidates of both models are the most
    cosine-similar memories.

    Read at fit: ``similarity``, ``beta``, ``index``, ``n_lists``, the
    Stage I parameters, ``random_state``; changing them after fit has no
    effect until the next fit. Read at every call (predict-time knobs):
    ``separation``, ``top_k``, ``n_steps``, ``n_candidates``, ``n_probe``,
    ``chunk_size``, ``device``, ``n_threads``.

    The stored patterns are held once (``memories_``; under the identity map
    also the keys). Each call reads the fitted state once, and a fit
    publishes it in one step (after sklearn's ``n_features_in_``): calls from
    several threads are safe, and one running while another thread refits
    (same width) answers wholly with the old or the new model.

    Results do not depend on the unit of the data: scaling ``X`` and the
    queries by ``c`` scales ``transform`` by ``c`` and ``beta_`` by
    ``1 / c**2`` (``"dot"``, ``"neg_l2"``), exactly for powers of two, within
    float32 rounding otherwise, while the largest absolute entry of the
    stored patterns is in ``[1e-15, 1e15]`` and that of the queries at most
    ``1e15``; beyond, float32 squared norms leave the normal range, and the
    data is refused with an error naming ``X`` and its scale.

    References
    ----------
    .. [1] Wu, Hu, Hsiao, Liu. "Uniform Memory Retrieval with Larger Capacity
       for Modern Hopfield Models." ICML 2024, arXiv:2404.03827.
    .. [2] Hu, Wu, Liu. "Provably Optimal Memory Capacity for Modern Hopfield
       Models." NeurIPS 2024, arXiv:2410.23126.
    .. [3] Ramsauer et al. "Hopfield Networks is All You Need." ICLR 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop import KernelHopfieldRetriever
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(100, 20)
    >>> Q = X[:5].copy()
    >>> Q[:, :10] = np.nan  # half of each query unknown
    >>> ret = KernelHopfieldRetriever().fit(X)
    >>> ret.kneighbors(Q, return_distance=False).ravel()
    array([0, 1, 2, 3, 4])
    >>> ret.score(Q, [0, 1, 2, 3, 4])  # each retrieval nearest to its source
    1.0
    """

    _parameter_constraints: dict = {
        "feature_dim": [Interval(Integral, 1, None, closed="left"), None],
        "separation_loss": [StrOptions(set(SEPARATION_LOSSES)), None],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "similarity": [StrOptions({"auto", "cosine", "dot", "neg_l2"})],
        "separation": [StrOptions(set(SEPARATIONS))],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "beta": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "index": [StrOptions({"auto", "exact", "approximate"})],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "n_lists": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_probe": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "device": "no_validation",
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        feature_dim=None,
        separation_loss=None,
        tau=0.1,
        max_iter=100,
        learning_rate=0.01,
        similarity="auto",
        separation="softmax",
        top_k=None,
        beta="auto",
        n_steps=1,
        index="auto",
        n_candidates=32,
        n_lists="auto",
        n_probe=64,
        chunk_size=None,
        device="cpu",
        n_threads=1,
        verbose=0,
        random_state=None,
    ):
        self.feature_dim = feature_dim
        self.separation_loss = separation_loss
        self.tau = tau
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.similarity = similarity
        self.separation = separation
        self.top_k = top_k
        self.beta = beta
        self.n_steps = n_steps
        self.index = index
        self.n_candidates = n_candidates
        self.n_lists = n_lists
        self.n_probe = n_probe
        self.chunk_size = chunk_size
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # in queries; stored patterns must be complete
        tags.non_deterministic = False
        return tags

    def _settings(self):
        """The predict-time knobs, checked, and the device."""
        check_n_threads(self.n_threads)
        if self.separation == "topk" and self.top_k is None:
            raise ValueError("separation='topk' needs top_k (the number of memories kept).")
        if self.chunk_size is not None and self.separation not in CHUNKABLE:
            raise ValueError(
                f"chunk_size is supported for separations {CHUNKABLE}, not "
                f"{self.separation!r}; leave chunk_size=None."
            )
        knobs = {name: getattr(self, name) for name in RetrievalSettings.__dataclass_fields__}
        return RetrievalSettings(**knobs), resolve_device(self.device)

    @staticmethod
    def _check_scale(X, what):
        """Refuse data whose unit float32 arithmetic cannot carry (see the class notes)."""
        scale = max(float(np.nanmax(X)), -float(np.nanmin(X))) if X.size else 0.0
        low = SCALE_RANGE[0] if what == "patterns" else 0.0
        if scale > SCALE_RANGE[1] or 0.0 < scale < low:
            raise ValueError(
                f"X ({what}) has scale {scale:.3g} (its largest absolute entry), outside the "
                f"supported [{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}], where float32 squared "
                "norms stay finite and normal: rescale X, e.g. by its largest absolute entry."
            )

    def _validate_memories(self, X, reset):
        X = validate_data(
            self, X, reset=reset, dtype=[np.float32, np.float64], ensure_all_finite=False
        )
        if not np.isfinite(X).all():
            raise ValueError(
                "X (the patterns to store) contains NaN or infinity; stored "
                "patterns must be complete (NaN is allowed in queries only)."
            )
        self._check_scale(X, "patterns")
        return np.array(X, dtype=np.float32, order="C")

    def _validate_queries(self, Q):
        Q = validate_data(
            self, Q, reset=False, dtype=[np.float32, np.float64], ensure_all_finite="allow-nan"
        )
        if np.isinf(Q).any():
            raise ValueError("X contains infinity; use NaN to mark unobserved entries.")
        empty = np.flatnonzero(np.isnan(Q).all(axis=1)) if Q.shape[1] else np.array([], int)
        if empty.size:
            shown = ", ".join(str(int(i)) for i in empty[:10])
            more = f" and {empty.size - 10} more" if empty.size > 10 else ""
            raise ValueError(
                f"X has {empty.size} row(s) with no observed entry (all NaN): rows {shown}"
                f"{more}. Such a query matches no stored pattern; drop these rows."
            )
        self._check_scale(Q, "queries")
        return Q

    @property
    def beta_(self):  # stored once, in the fitted memory
        memory = check_is_fitted(self) or self._memory_
        return dict(memory.betas) if memory.similarity == "auto" else [*memory.betas.values()][0]

    def _prepare(self, X):
        """The fitted state (read once), the validated queries, the knobs and the device."""
        check_is_fitted(self)
        memory = self._memory_
        return (memory, self._validate_queries(X), *self._settings())

    # ------------------------------------------------------------------ fit

    def _store(self, X, fmap, identity, curve, n_iter, device):
        seed = seed_from(self.random_state)
        index = resolve_index(self.index, X.shape[0])
        weight = None if identity else np.ascontiguousarray(fmap.weight.detach().cpu().numpy())
        make_index = None
        if index == "approximate":
            make_index = functools.partial(
                IVFIndex.for_similarity,
                similarity=self.similarity,
                n_lists=self.n_lists,
                seed=seed,
                n_threads=self.n_threads,
            )
        with seeded(seed, device):
            memory, min_sep = HopfieldMemory.fit(
                X, weight, self.similarity, self.beta, device, make_index
            )
        # every fitted attribute in one step: a reader never sees half of a refit
        self.__dict__.update(
            memories_=memory.values,
            feature_map_=fmap,
            separation_loss_curve_=curve,
            n_iter_=n_iter,
            min_separation_=min_sep,
            index_=index,
            _memory_=memory,
        )
        return self

    def _fit_new(self, X):
        _, device = self._settings()
        identity = self.separation_loss is None and self.feature_dim in (None, X.shape[1])
        seed = seed_from(self.random_state)
        with torch_threads(self.n_threads), seeded(seed, device):
            fmap, curve = fit_feature_map(
                torch.from_numpy(X).to(device),
                feature_dim=self.feature_dim,
                separation_loss=self.separation_loss,
                tau=self.tau,
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                verbose=self.verbose,
            )
        with torch_threads(self.n_threads):
            return self._store(X, fmap.cpu(), identity, curve, len(curve), device)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the rows of ``X`` and run Stage I.

        Parameters
        ----------
        X : array-like of shape (n_memories, n_features)
            Patterns to store (finite).
        y : None
            Ignored.

        Returns
        -------
        self : KernelHopfieldRetriever
            The fitted retriever.
        """
        X = self._validate_memories(X, reset=True)
        return self._fit_new(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add the rows of ``X`` to the stored patterns.

        The first call fits; later calls keep the feature map, append the
        patterns and recompute the rest of the fitted state.

        Parameters
        ----------
        X : array-like of shape (n_new, n_features)
            Patterns to add (finite).
        y : None
            Ignored.

        Returns
        -------
        self : KernelHopfieldRetriever
            The updated retriever.
        """
        first = not hasattr(self, "memories_")
        X = self._validate_memories(X, reset=first)
        if first:
            return self._fit_new(X)
        _, device = self._settings()
        memory = self._memory_
        X_all = np.concatenate([memory.values, X], axis=0)
        with torch_threads(self.n_threads):
            return self._store(
                X_all,
                self.feature_map_,
                memory.weight is None,
                self.separation_loss_curve_,
                self.n_iter_,
                device,
            )

    def query_similarity(self, X):
        """The similarity each query is retrieved with (see the class notes).

        With ``similarity="auto"`` at fit, ``"neg_l2"`` or ``"cosine"`` per
        query; otherwise the fitted similarity for every query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries; NaN marks unobserved entries.

        Returns
        -------
        similarity : ndarray of str, shape (n_queries,)
            ``"neg_l2"``, ``"cosine"`` or ``"dot"``, per query.
        """
        memory, Q, cfg, device = self._prepare(X)
        with torch_threads(self.n_threads):
            return memory.query_similarity(Q, cfg, device)

    def transform(self, X):
        """Retrieve a stored pattern (or a mix of them) for each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries; NaN marks unobserved entries.

        Returns
        -------
        X_new : ndarray of shape (n_queries, n_features)
            The retrieved patterns in input space, in the queries' float dtype.
        """
        memory, Q, cfg, device = self._prepare(X)
        with torch_threads(self.n_threads):
            out = memory.retrieve(Q, cfg, device)
        return out.numpy().astype(Q.dtype, copy=False)

    def kneighbors(self, X, n_neighbors=1, return_distance=True):
        """The stored patterns that receive the most attention.

        The read-out attention is monotone in the similarity, so these are
        the memories most similar to the final state (after ``n_steps - 1``
        updates) in feature space; partial queries compare their observed
        entries in input space. With ``similarity="auto"`` each query is
        ranked by the similarity it is retrieved with
        (:meth:`query_similarity`), and every distance is Euclidean.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries; NaN marks unobserved entries.
        n_neighbors : int, default=1
            Number of memories per query, at most ``n_memories``.
        return_distance : bool, default=True
            Also return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            Ascending, between the final state ``f`` and the stored features
            ``k``. With ``similarity="auto"``, Euclidean for every query:
            ``|f - k|`` (queries retrieved with ``"neg_l2"``) or
            ``min_{s >= 0} |f - s k|``, the distance to the pattern's ray
            (``"cosine"``). Else ``1 - cosine``, ``-dot`` or ``|f - k|``.
            Partial queries: observed entries, rescaled by
            ``n_features / n_observed`` (as
            :func:`sklearn.metrics.pairwise.nan_euclidean_distances`).
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices into ``memories_``, most attended first; ties go to the
            lower index.
        """
        memory, Q, cfg, device = self._prepare(X)
        M = memory.n_memories
        if (
            not isinstance(n_neighbors, Integral)
            or isinstance(n_neighbors, bool)
            or n_neighbors < 1
        ):
            raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors!r}.")
        if n_neighbors > M:
            raise ValueError(
                f"n_neighbors={n_neighbors} exceeds the number of stored patterns ({M})."
            )
        with torch_threads(self.n_threads):
            dist, ind = memory.kneighbors(Q, int(n_neighbors), cfg, device)
        return (dist, ind) if return_distance else ind

    def score(self, X, y):
        """Fraction of queries whose retrieval is nearest to the memory ``y`` names.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries; NaN marks unobserved entries.
        y : array-like of shape (n_queries,)
            Index (into ``memories_``) of the pattern each query should retrieve.

        Returns
        -------
        score : float
            Share of queries whose retrieved pattern is closer (Euclidean, in
            input space) to ``memories_[y]`` than to any other stored pattern.
        """
        memory, Q, cfg, device = self._prepare(X)
        y = np.asarray(y)
        M = memory.n_memories
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError("y must be a 1-d array of integer memory indices.")
        if y.size and (y.min() < 0 or y.max() >= M):
            raise ValueError(
                f"y must hold indices in [0, {M}), got values in [{y.min()}, {y.max()}]."
            )
        if Q.shape[0] != y.shape[0]:
            raise ValueError(f"X has {Q.shape[0]} queries but y has {y.shape[0]} entries.")
        with torch_threads(self.n_threads):
            nearest = memory.nearest(memory.retrieve(Q, cfg, device))
        return float((nearest.numpy() == y).mean())

    def energy(self, X):
        """Hopfield energy of each query in feature space.

        The energy of the similarity each query is retrieved with
        (:meth:`query_similarity`) and its ``beta_``; see
        :func:`skhop.nn.hopfield_energy` (for ``"cosine"``, of the normalised
        features). With ``"auto"``, energies of queries retrieved with
        different similarities are not on one scale.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Complete queries.

        Returns
        -------
        energy : ndarray of shape (n_queries,)
        """
        memory, Q, cfg, device = self._prepare(X)
        if np.isnan(Q).any():
            raise ValueError("energy needs complete queries; X contains NaN.")
        with torch_threads(self.n_threads):
            return memory.energy(Q, cfg, device)
