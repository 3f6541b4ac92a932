"""KernelHopfieldRetriever: associative memory in a learned kernel space.

Stage I (optional) fits a linear feature map ``Phi`` that separates the
stored patterns (U-Hop, U-Hop+; see :mod:`skhop._kernel`); Stage II retrieves
with the modern Hopfield update, comparing ``Phi(query)`` with
``Phi(memory)`` and reading out the stored patterns in input space.
"""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
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
from ._kernel import (
    SEPARATION_LOSSES,
    auto_beta,
    fit_feature_map,
    min_separation,
    nearest_rival,
    scale_statistic,
    scale_threshold,
)
from .nn._separation import CHUNKABLE, SEPARATIONS, blockwise_topk, stable_topk
from .nn.functional import (
    AUTO_CHUNK_ELEMENTS,
    hopfield_energy,
    hopfield_retrieve,
    similarity_scores,
)

__all__ = ["KernelHopfieldRetriever"]

# index="auto" uses the approximate index from this many stored patterns on
AUTO_APPROXIMATE_MIN = 200_000


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "index='approximate' needs faiss; install it with `pip install skhop[faiss]` "
            "(or `pip install faiss-cpu`)."
        ) from None
    return faiss


class KernelHopfieldRetriever(
    VersionedStateMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Associative memory: retrieve stored patterns from corrupted or partial queries.

    ``fit(X)`` stores the rows of ``X``; ``transform(Q)`` runs the modern
    Hopfield update ``x_new = X^T sep(beta * sim(Phi(X), Phi(q)))`` and returns
    the retrieved patterns in input space. ``Phi`` is a linear feature map:
    the identity by default, or one fitted by Stage I so that the stored
    patterns are well separated in feature space (U-Hop, U-Hop+). NaN entries
    of a query mark unobserved entries: the query is compared on its
    observed entries only.

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
        Similarity of the features of query and memory: cosine, dot product,
        or minus half the squared Euclidean distance. Cosine is the robust
        choice for occluded (zero-filled) or dimmed queries; ``"neg_l2"`` is
        the better one for additive Gaussian noise. ``"auto"`` chooses per
        query between these two by a likelihood-ratio test (see the Notes
        and :meth:`query_similarity`), each with its own ``beta``.
    separation : {"softmax", "softmax1", "sparsemax", "entmax15", "topk"}, \
default="softmax"
        Separation function of the Hopfield update (see :func:`skhop.nn.separate`).
        ``"softmax1"`` lets a query attend to nothing when every scaled score
        is well below 0; the ``"neg_l2"`` scores never exceed 0, so with it (and
        for the queries ``"auto"`` retrieves with it) the read-out shrinks
        to nearly zero.
    top_k : int or None, default=None
        Number of memories kept by ``separation="topk"`` (required there).
    beta : float or "auto", default="auto"
        Inverse temperature (with ``similarity="auto"`` a number is used by
        both models, whose scores differ in scale). ``"auto"`` takes the rule of
        :func:`skhop._kernel.auto_beta`: large enough that every stored
        pattern keeps all but 0.1% of the attention on itself, computed from
        the smallest margin between a stored pattern and its nearest rival.
    n_steps : int, default=1
        Number of Hopfield updates (the last one is the read-out).
    index : {"auto", "exact", "approximate"}, default="auto"
        ``"exact"`` streams the whole memory through the update in chunks.
        ``"approximate"`` finds ``n_candidates`` candidate memories per query
        with a faiss inverted-file index (inner product on the features,
        4-bit product-quantised codes scanned with SIMD) and runs the exact
        update over the candidates' features only. ``"auto"`` is
        ``"approximate"`` from 200,000 stored patterns on when faiss is
        installed, ``"exact"`` otherwise.
    n_candidates : int, default=32
        Candidates per query of the approximate index (at least ``top_k``
        are taken with ``separation="topk"``).
    n_lists : int or "auto", default="auto"
        Inverted lists of the approximate index; ``"auto"`` is
        ``2 * sqrt(n_memories)``. Never more than ``n_memories / 39`` (faiss
        wants about 39 training rows per list).
    n_probe : int, default=64
        Lists the approximate index visits per query. More lists, slower
        search, better agreement with exact retrieval: at one million
        memories (``benchmarks/results/retrieval_speed.md``) 64 lists give
        99.8% agreement for mildly noisy queries, and very noisy ones need
        256 for 99.2%.
    chunk_size : int or None, default=None
        Memories per chunk of the exact streamed update (bounded memory);
        ``None`` chooses from the query count.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        Where to compute; fitted values stay on the CPU.
    n_threads : int or None, default=1
        Torch (and faiss) threads while fitting and retrieving; ``None``
        leaves the libraries' settings alone.
    verbose : int, default=0
        Print one line per Stage I epoch when > 0.
    random_state : int, RandomState instance or None, default=None
        Seeds Stage I's initialisation and batches and the sampling of the
        approximate index's training rows. Global RNGs are left untouched.

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
    Partial queries: a row with NaN entries is compared with the memories on
    its observed entries only, in *input* space (masked similarity of
    :func:`skhop.nn.functional.hopfield_retrieve`), with ``beta`` from the
    same rule applied to the raw memories when ``beta="auto"``; such rows
    always use the exact streamed update. A linear ``Phi`` of a partial
    query is not defined, and filling the gaps before mapping biases the
    comparison towards memories that resemble the filling. ``transform``
    returns the whole retrieved pattern (observed entries included); to keep
    the observed entries and fill only the gaps use
    :class:`skhop.HopfieldImputer`.

    ``similarity="auto"`` weighs two explanations of a query ``q`` by a
    stored feature vector ``m``: *noise*, ``q = m + e``, and *scaled*,
    ``q = s m + e`` with a free scale ``s >= 0`` (an occluded, zero-filled
    or dimmed query). Their smallest residuals over the memory,
    ``r_noise = min |q - m|^2`` and ``r_scaled = min (|q|^2 - max(<q, m>, 0)^2
    / |m|^2)``, rank memories exactly as ``"neg_l2"`` and ``"cosine"`` do.
    The scaled model has one parameter more, so it is chosen only when the
    likelihood-ratio statistic ``n log(r_noise / r_scaled)`` (``n`` the
    number of compared coordinates: the feature dimension, or the observed
    entries of a partial query) exceeds the 0.999 quantile of its law under
    the noise model, from the F test with ``(1, n - 1)`` degrees of freedom
    (11.09 for ``n=64``, 10.85 for ``n=784``, the chi-square(1) quantile
    10.83 in the limit; never below two coordinates): about one noisy query
    in a thousand is retrieved with cosine. Occluded images
    score far above it (95% of the half-occluded ones over 250 on MNIST,
    over 16 on sklearn's digits).
    The query is then retrieved with the chosen similarity and its own
    ``beta_``, in every update when ``n_steps > 1``; ``kneighbors`` ranks
    and measures it the same way. The test costs one more streamed pass
    over the stored features (one matrix product, two running maxima), and
    the stored features are kept unnormalised (the noise model needs their
    norms). With ``index="approximate"`` the candidates of both models are
    the most cosine-similar memories (an inner-product index on the
    normalised features), and the test and the update run over them.
    ``energy`` gives each query the energy of the similarity it is
    retrieved with.

    With ``"cosine"`` the features are normalised once in ``fit``, so one
    exact update costs two matrix products and one exponential per
    (query, memory) pair, streamed with an online log-sum-exp.

    What the benchmarks show (``benchmarks/results/retrieval.md``, MNIST and
    digits, up to 10,000 stored images): cosine retrieval (auto beta)
    matches cosine Hopfield with the best beta of a grid on occluded
    queries, within half a point, but trails exact Euclidean 1-NN by 1 to 3
    points under additive Gaussian noise, where ``"neg_l2"`` matches it and
    fails on occluded queries. The default ``"auto"`` retrieved 98% to 100%
    of the half-occluded images with cosine and 99.6% or more of the noisy
    ones with ``"neg_l2"``: in every cell it matched the better of the two
    fixed similarities or came within 0.1 point (one query). Stage I (U-Hop's and
    U-Hop+'s losses) lowered accuracy in every measured setting: separating
    the stored patterns stretches the directions in which queries are
    corrupted. It is therefore off by default. A smaller ``feature_dim``
    (principal directions) makes the comparison cheaper, but the read-out
    still mixes full patterns, so retrieval gets at most about 2x faster,
    and accuracy drops on occluded queries. Telling the model which entries
    are unknown (NaN) is worth far more than any kernel: 100% of the
    half-occluded MNIST queries are recovered at every memory size.

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
        tags.input_tags.allow_nan = True  # in queries; stored patterns must be finite
        tags.non_deterministic = False
        return tags

    @property
    def _n_features_out(self):
        # output names are retriever0, retriever1, ...: one per input feature
        return self.memories_.shape[1]

    # ------------------------------------------------------------------ helpers

    def _check_settings(self):
        check_n_threads(self.n_threads)
        if self.separation == "topk" and self.top_k is None:
            raise ValueError("separation='topk' needs top_k (the number of memories kept).")
        if self.chunk_size is not None and self.separation not in CHUNKABLE:
            raise ValueError(
                f"chunk_size is supported for separations {CHUNKABLE}, not "
                f"{self.separation!r}; leave chunk_size=None."
            )
        return resolve_device(self.device)

    def _validate_memories(self, X, reset):
        X = validate_data(
            self, X, reset=reset, dtype=[np.float32, np.float64], ensure_all_finite=False
        )
        if not np.isfinite(X).all():
            raise ValueError(
                "X (the patterns to store) contains NaN or infinity; stored "
                "patterns must be complete (NaN is allowed in queries only)."
            )
        return np.array(X, dtype=np.float32, order="C")

    def _validate_queries(self, Q):
        Q = validate_data(
            self, Q, reset=False, dtype=[np.float32, np.float64], ensure_all_finite="allow-nan"
        )
        if np.isinf(Q).any():
            raise ValueError("X contains infinity; use NaN to mark unobserved entries.")
        return Q

    def _resolve_index(self, n_memories):
        if self.index != "auto":
            if self.index == "approximate":
                _import_faiss()
            return self.index
        if n_memories >= AUTO_APPROXIMATE_MIN:
            try:
                _import_faiss()
            except ImportError:
                return "exact"
            return "approximate"
        return "exact"

    def _keys_from(self, X, fmap, identity):
        """Stored features, normalised for cosine (numpy float32, M x k)."""
        if identity:
            keys = X
        else:
            w = fmap.weight.detach().cpu().numpy()
            keys = X @ w.T
        if self.similarity == "cosine":
            keys = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(keys, dtype=np.float32)

    def _stats(self, X_t, keys_t, identity):
        """Per model: beta in feature space and for partial queries (input space); min sep."""
        # with "cosine" the keys are unit rows already: their dot product is the cosine
        # (and no normalised copy of the memory is made)
        sim = "dot" if self.similarity == "cosine" else "cosine"
        cos_rival = nearest_rival(keys_t, sim) if keys_t.shape[0] > 1 else None
        betas, betas_in = {}, {}
        for model in self._models():
            if self.beta == "auto":
                rival = cos_rival if model == "cosine" else None
                betas[model] = float(auto_beta(keys_t, model, rival=rival))
                betas_in[model] = betas[model] if identity else float(auto_beta(X_t, model))
            else:
                betas[model] = betas_in[model] = float(self.beta)
        return betas, betas_in, min_separation(keys_t, rival=cos_rival)

    def _build_ann(self, keys, seed):
        """Inverted lists with 4-bit product-quantised codes (faiss fast scan).

        The codes only rank candidates: the Hopfield update then runs on the
        exact features of the ``n_candidates`` best, so quantisation error
        matters only when it pushes the best memory out of the candidates.
        """
        faiss = _import_faiss()
        M, k = keys.shape
        n_lists = int(2 * math.sqrt(M)) if self.n_lists == "auto" else self.n_lists
        n_lists = int(max(1, min(n_lists, M // 39)))
        n_sub = k // 2 if k % 2 == 0 else k
        metric = faiss.METRIC_L2 if self.similarity == "neg_l2" else faiss.METRIC_INNER_PRODUCT
        if self.similarity == "auto":
            # candidates of both models by cosine: the keys are unit rows for the index only
            keys = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
        ann = faiss.index_factory(k, f"IVF{n_lists},PQ{n_sub}x4fs", metric)
        rng = np.random.RandomState(seed)
        n_train = min(M, 40 * max(n_lists, 64))
        sample = keys if n_train == M else keys[np.sort(rng.choice(M, n_train, replace=False))]
        ivf = faiss.extract_index_ivf(ann)
        ivf.cp.seed = int(seed % (2**31 - 1))
        ann.train(np.ascontiguousarray(sample))
        ann.add(keys)
        return ann

    def _faiss_threads(self):
        faiss = _import_faiss()
        old = faiss.omp_get_max_threads()

        class _Ctx:
            def __enter__(ctx):
                if self.n_threads is not None:
                    faiss.omp_set_num_threads(self.n_threads)

            def __exit__(ctx, *exc):
                if self.n_threads is not None:
                    faiss.omp_set_num_threads(old)

        return _Ctx()

    def _ann_index(self):
        ann = self.__dict__.get("_ann")
        if ann is None and self._ann_bytes_ is not None:
            faiss = _import_faiss()
            ann = faiss.deserialize_index(self._ann_bytes_)
            self.__dict__["_ann"] = ann
        return ann

    def __getstate__(self):
        state = super().__getstate__()
        ann = state.pop("_ann", None)
        if ann is not None and state.get("_ann_bytes_") is None:
            faiss = _import_faiss()
            state["_ann_bytes_"] = faiss.serialize_index(ann)
        return state

    # ------------------------------------------------------------------ fit

    def _store(self, X, fmap, identity, curve, n_iter, device):
        seed = seed_from(self.random_state)
        keys = self._keys_from(X, fmap, identity)
        with torch.no_grad(), seeded(seed, device):
            X_t = torch.from_numpy(X).to(device)
            k_t = torch.from_numpy(keys).to(device)
            betas, betas_in, min_sep = self._stats(X_t, k_t, identity)
        index = self._resolve_index(X.shape[0])
        ann = self._build_ann(keys, seed) if index == "approximate" else None
        # fitted attributes, all at once
        self.memories_ = X
        self.feature_map_ = fmap
        self.separation_loss_curve_ = curve
        self.n_iter_ = n_iter
        self.beta_ = betas if self.similarity == "auto" else betas[self.similarity]
        self._betas_ = betas
        self._betas_partial_ = betas_in
        self.min_separation_ = float(min_sep)
        self.index_ = index
        self._identity_ = identity
        self._keys_ = keys
        self._ann_bytes_ = None
        self.__dict__.pop("_ann", None)
        if ann is not None:
            self.__dict__["_ann"] = ann
        return self

    def _fit_new(self, X):
        device = self._check_settings()
        identity = self.separation_loss is None and self.feature_dim in (None, X.shape[1])
        seed = seed_from(self.random_state)
        with torch_threads(self.n_threads), seeded(seed, device):
            X_t = torch.from_numpy(X).to(device)
            fmap, curve = fit_feature_map(
                X_t,
                feature_dim=self.feature_dim,
                separation_loss=self.separation_loss,
                tau=self.tau,
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                verbose=self.verbose,
            )
        fmap = fmap.cpu()
        with torch_threads(self.n_threads):
            return self._store(X, fmap, identity, curve, len(curve), device)

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

        The first call fits (Stage I included); later calls keep the feature
        map, append the patterns and recompute ``beta_`` (when ``"auto"``),
        ``min_separation_`` and the approximate index.

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
        device = self._check_settings()
        X_all = np.concatenate([self.memories_, X], axis=0)
        with torch_threads(self.n_threads):
            return self._store(
                X_all,
                self.feature_map_,
                self._identity_,
                self.separation_loss_curve_,
                self.n_iter_,
                device,
            )

    # ------------------------------------------------------------------ retrieval

    def _models(self):
        """The similarities queries are retrieved with: both models for ``"auto"``."""
        return ("neg_l2", "cosine") if self.similarity == "auto" else (self.similarity,)

    def _unit_keys(self, sim):
        # the stored features are unit rows with similarity="cosine" only ("auto" keeps them
        # raw: the noise model needs their norms)
        return sim == "cosine" and self.similarity == "cosine"

    def _map(self, Q_t, device):
        """Features of complete queries (not normalised)."""
        if self._identity_:
            return Q_t
        return Q_t @ self.feature_map_.weight.detach().to(device).mT

    def _normalise_for(self, F, sim):
        if self._unit_keys(sim):
            return F / F.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return F

    def _core_kwargs(self, sim, n_steps=None, partial=False):
        n_steps = self.n_steps if n_steps is None else n_steps
        similarity = sim
        if not partial and self._unit_keys(sim) and n_steps == 1:
            similarity = "dot"  # unit keys and query features: one cosine step is a dot step
        return dict(
            similarity=similarity, separation=self.separation, n_steps=n_steps, top_k=self.top_k
        )

    def _query_blocks(self, Q, device):
        """(rows, queries, partial) for the complete and for the partial (NaN) queries."""
        partial = np.isnan(Q).any(axis=1)
        for is_partial in (False, True):
            rows = np.flatnonzero(partial == is_partial)
            if rows.size:
                Q_t = torch.from_numpy(np.asarray(Q[rows], dtype=np.float32)).to(device)
                yield torch.from_numpy(rows), Q_t, is_partial

    def _n_candidates(self, at_least=1):
        return min(max(self.n_candidates, self.top_k or 1, at_least), self.memories_.shape[0])

    def _groups(self, F, keys, observed=None, idx=None):
        """(rows, similarity) pairs: which queries are retrieved with which similarity.

        With ``"auto"``, the likelihood-ratio test of :func:`skhop._kernel.scale_statistic`
        against the stored features (``idx``: against each query's candidates only).
        """
        if self.similarity != "auto":
            return [(slice(None), self.similarity)]
        if idx is None:
            stat = scale_statistic(F, keys, observed=observed, block_size=self.chunk_size)
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
        scaled = stat > scale_threshold(n).to(stat)
        rows = torch.arange(F.shape[0], device=F.device)
        return [
            (rows[sel], sim)
            for sel, sim in ((~scaled, "neg_l2"), (scaled, "cosine"))
            if bool(sel.any())
        ]

    def _exact(self, F, keys, values, beta, sim_kwargs, query_mask=None):
        """Exact update, memory streamed by the core; query blocks for dense separations."""
        if self.separation in CHUNKABLE:
            return hopfield_retrieve(
                F,
                keys,
                values,
                beta=beta,
                query_mask=query_mask,
                chunk_size=self.chunk_size,
                **sim_kwargs,
            )
        M = keys.shape[0]
        step = max(1, AUTO_CHUNK_ELEMENTS // max(M, 1))
        outs = []
        for s in range(0, F.shape[0], step):
            qm = (
                query_mask if not isinstance(query_mask, torch.Tensor) else query_mask[s : s + step]
            )
            outs.append(
                hopfield_retrieve(
                    F[s : s + step], keys, values, beta=beta, query_mask=qm, **sim_kwargs
                )
            )
        return torch.cat(outs) if outs else F.new_zeros((0, values.shape[1]))

    def _candidates(self, F, n):
        ann = self._ann_index()
        faiss = _import_faiss()
        ivf = faiss.extract_index_ivf(ann)
        ivf.nprobe = min(self.n_probe, ivf.nlist)
        if self.similarity in ("cosine", "auto"):
            # an inner-product index on unit keys: unit queries make it rank by cosine
            F = F / F.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        with self._faiss_threads():
            _, idx = ann.search(np.ascontiguousarray(F.cpu().numpy(), dtype=np.float32), n)
        return torch.from_numpy(idx).to(F.device)

    def _approximate(self, F, keys, values, beta, sim_kwargs, idx=None):
        n = self._n_candidates()
        if idx is None:
            idx = self._candidates(F, n)
        missing = idx < 0
        idx = idx.clamp_min(0)
        outs = []
        step = max(1, AUTO_CHUNK_ELEMENTS // (n * (keys.shape[1] + values.shape[1])))
        for s in range(0, F.shape[0], step):
            i = idx[s : s + step]
            kwargs = dict(sim_kwargs)
            if self.separation == "topk":
                kwargs["top_k"] = min(self.top_k, n)
            out = hopfield_retrieve(
                F[s : s + step, None, :],
                keys[i],
                values[i],
                beta=beta,
                mask=missing[s : s + step, None, :],
                **kwargs,
            )
            outs.append(out[:, 0, :])
        return torch.cat(outs) if outs else F.new_zeros((0, values.shape[1]))

    def _route(self, Q_t, keys, values, partial, device):
        """(features, groups, candidates) of one block of complete or of partial queries.

        Partial queries stay in input space, NaN included (see the class
        notes); ``groups`` as in :meth:`_groups`; candidates with the
        approximate index only.
        """
        if partial:
            observed = (~torch.isnan(Q_t)).to(Q_t.dtype)
            return (
                Q_t,
                self._groups(torch.nan_to_num(Q_t, nan=0.0), values, observed=observed),
                None,
            )
        F = self._map(Q_t, device)
        idx = self._candidates(F, self._n_candidates()) if self.index_ == "approximate" else None
        return F, self._groups(F, keys, idx=idx), idx

    def _retrieve_block(self, Q_t, keys, values, partial, device):
        """Retrieved patterns for one block of complete or of partial queries."""
        out = torch.empty((Q_t.shape[0], values.shape[1]), dtype=values.dtype, device=device)
        F, groups, idx = self._route(Q_t, keys, values, partial, device)
        for rows, sim in groups:
            if partial:
                out[rows] = self._exact(
                    F[rows],
                    values,
                    values,
                    self._betas_partial_[sim],
                    self._core_kwargs(sim, partial=True),
                    query_mask="nan",
                )
            elif idx is not None:
                out[rows] = self._approximate(
                    self._normalise_for(F[rows], sim),
                    keys,
                    values,
                    self._betas_[sim],
                    self._core_kwargs(sim),
                    idx=idx[rows],
                )
            else:
                out[rows] = self._exact(
                    self._normalise_for(F[rows], sim),
                    keys,
                    values,
                    self._betas_[sim],
                    self._core_kwargs(sim),
                )
        return out

    def _retrieve(self, Q):
        """Retrieved patterns (float32 tensor on the CPU) for validated queries ``Q``."""
        device = resolve_device(self.device)
        out = torch.empty((Q.shape[0], self.memories_.shape[1]), dtype=torch.float32)
        with torch.no_grad():
            values = torch.from_numpy(self.memories_).to(device)
            keys = torch.from_numpy(self._keys_).to(device)
            for rows, Q_t, partial in self._query_blocks(Q, device):
                out[rows] = self._retrieve_block(Q_t, keys, values, partial, device).cpu()
        return out

    def query_similarity(self, X):
        """The similarity each query is retrieved with.

        With ``similarity="auto"``, ``"neg_l2"`` for the queries the noise
        model explains and ``"cosine"`` for those the scaled model explains
        significantly better (see the class notes); otherwise the fixed
        similarity for every query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries; NaN marks unobserved entries.

        Returns
        -------
        similarity : ndarray of str, shape (n_queries,)
            ``"neg_l2"``, ``"cosine"`` or ``"dot"``, per query.
        """
        check_is_fitted(self)
        Q = self._validate_queries(X)
        out = np.empty(Q.shape[0], dtype="<U6")
        if self.similarity != "auto":
            out[:] = self.similarity
            return out
        device = resolve_device(self.device)
        with torch_threads(self.n_threads), torch.no_grad():
            values = torch.from_numpy(self.memories_).to(device)
            keys = torch.from_numpy(self._keys_).to(device)
            for rows, Q_t, partial in self._query_blocks(Q, device):
                _, groups, _ = self._route(Q_t, keys, values, partial, device)
                for sub, sim in groups:
                    out[rows[sub.cpu()].numpy()] = sim
        return out

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
        check_is_fitted(self)
        Q = self._validate_queries(X)
        with torch_threads(self.n_threads):
            out = self._retrieve(Q)
        return out.numpy().astype(Q.dtype, copy=False)

    def kneighbors(self, X, n_neighbors=1, return_distance=True):
        """The stored patterns that receive the most attention.

        The read-out attention is monotone in the similarity, so these are
        the memories most similar to the final state (after ``n_steps - 1``
        updates) in feature space; partial queries compare their observed
        entries in input space. With ``similarity="auto"`` each query is
        ranked by the similarity it is retrieved with
        (:meth:`query_similarity`).

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
            ``1 - cosine`` (similarity ``"cosine"``), the negative dot
            product (``"dot"``) or the Euclidean distance (``"neg_l2"``)
            between the final state and each memory, ascending; with
            ``"auto"``, per query in the units of its similarity. Only when
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices into ``memories_``, most attended first.
        """
        check_is_fitted(self)
        M = self.memories_.shape[0]
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
        Q = self._validate_queries(X)
        device = resolve_device(self.device)
        dist = np.empty((Q.shape[0], n_neighbors), dtype=np.float64)
        ind = np.empty((Q.shape[0], n_neighbors), dtype=np.intp)
        with torch_threads(self.n_threads), torch.no_grad():
            values = torch.from_numpy(self.memories_).to(device)
            keys = torch.from_numpy(self._keys_).to(device)
            for rows, Q_t, partial in self._query_blocks(Q, device):
                _, groups, _ = self._route(Q_t, keys, values, partial, device)
                for sub, sim in groups:
                    v, i = self._neighbors(
                        Q_t[sub], keys, values, n_neighbors, partial, device, sim
                    )
                    r = rows[sub.cpu() if isinstance(sub, torch.Tensor) else sub].numpy()
                    dist[r] = self._distance(v, sim).cpu().numpy()
                    ind[r] = i.cpu().numpy()
        return (dist, ind) if return_distance else ind

    @staticmethod
    def _distance(scores, sim):
        if sim == "cosine":
            return 1.0 - scores
        if sim == "dot":
            return -scores
        return (-2.0 * scores).clamp_min(0.0).sqrt()

    def _neighbors(self, Q_t, keys, values, n, is_partial, device, sim):
        M = keys.shape[0]
        block = self.chunk_size or max(256, AUTO_CHUNK_ELEMENTS // max(Q_t.shape[0], 1))
        if is_partial:
            # partial rows live in input space (see the class notes)
            if self.n_steps > 1:
                kwargs = self._core_kwargs(sim, n_steps=self.n_steps - 1, partial=True)
                state = self._exact(
                    Q_t, values, values, self._betas_partial_[sim], kwargs, query_mask="nan"
                )
                observed = None
            else:
                observed = (~torch.isnan(Q_t)).to(Q_t.dtype)
                state = torch.nan_to_num(Q_t, nan=0.0)
            return blockwise_topk(
                lambda a, b: similarity_scores(state, values[a:b], sim, observed), M, n, block
            )
        # unit keys (similarity="cosine"): the dot product of unit rows is the cosine
        score_sim = "dot" if self._unit_keys(sim) else sim
        F = self._normalise_for(self._map(Q_t, device), sim)
        if self.n_steps > 1:
            kwargs = self._core_kwargs(sim, n_steps=self.n_steps - 1)
            run = self._exact if self.index_ == "exact" else self._approximate
            F = self._normalise_for(run(F, keys, keys, self._betas_[sim], kwargs), sim)
        if self.index_ == "approximate":
            c = self._n_candidates(at_least=n)
            idx = self._candidates(F, c)
            s = similarity_scores(F[:, None, :], keys[idx.clamp_min(0)], score_sim)[:, 0, :]
            s = s.masked_fill(idx < 0, float("-inf"))
            v, j = stable_topk(s, n)
            return v, idx.gather(1, j)
        return blockwise_topk(lambda a, b: similarity_scores(F, keys[a:b], score_sim), M, n, block)

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
        check_is_fitted(self)
        y = np.asarray(y)
        M = self.memories_.shape[0]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError("y must be a 1-d array of integer memory indices.")
        if y.size and (y.min() < 0 or y.max() >= M):
            raise ValueError(
                f"y must hold indices in [0, {M}), got values in [{y.min()}, {y.max()}]."
            )
        R = self.transform(X)
        if R.shape[0] != y.shape[0]:
            raise ValueError(f"X has {R.shape[0]} queries but y has {y.shape[0]} entries.")
        with torch_threads(self.n_threads), torch.no_grad():
            R_t = torch.from_numpy(np.asarray(R, dtype=np.float32))
            mem = torch.from_numpy(self.memories_)
            xx = (mem * mem).sum(1)
            block = max(256, AUTO_CHUNK_ELEMENTS // max(R_t.shape[0], 1))
            _, idx = blockwise_topk(lambda a, b: 2 * R_t @ mem[a:b].mT - xx[a:b], M, 1, block)
        return float((idx[:, 0].numpy() == y).mean())

    def energy(self, X):
        """Hopfield energy of each query in feature space.

        For ``"dot"`` and ``"cosine"``,
        ``E(q) = -lse(beta, K f) + 0.5 |f|^2 + log(M) / beta + 0.5 max_i |k_i|^2``
        with ``f`` the query's features and ``K`` the stored features (both
        normalised for ``"cosine"``); for ``"neg_l2"``,
        ``E(q) = -lse(beta, -0.5 |f - k_i|^2) + log(M) / beta``; see
        :func:`skhop.nn.hopfield_energy`. With ``"auto"`` each query gets the
        energy of the similarity it is retrieved with
        (:meth:`query_similarity`), with that similarity's ``beta``: energies
        of queries retrieved with different similarities are not on one
        scale.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Complete queries.

        Returns
        -------
        energy : ndarray of shape (n_queries,)
        """
        check_is_fitted(self)
        Q = self._validate_queries(X)
        if np.isnan(Q).any():
            raise ValueError("energy needs complete queries; X contains NaN.")
        device = resolve_device(self.device)
        with torch_threads(self.n_threads), torch.no_grad():
            Q_t = torch.from_numpy(np.asarray(Q, np.float32)).to(device)
            keys = torch.from_numpy(self._keys_).to(device)
            values = torch.from_numpy(self.memories_).to(device)
            F, groups, _ = self._route(Q_t, keys, values, False, device)
            e = torch.empty(Q_t.shape[0], dtype=keys.dtype, device=device)
            for rows, sim in groups:
                # unit keys already hold the cosine: its energy is the dot energy
                energy_sim = "dot" if self._unit_keys(sim) else sim
                e[rows] = hopfield_energy(
                    self._normalise_for(F[rows], sim),
                    keys,
                    beta=self._betas_[sim],
                    chunk_size=self.chunk_size,
                    similarity=energy_sim,
                )
        return e.cpu().numpy().astype(np.float64)
