"""HopfieldClassifier: the training rows as the stored patterns of a modern Hopfield layer.

The sklearn face of :class:`skhop.nn.RowHopfieldLayer`: it validates and
scales the input, stores the training rows with their labels and weights in
the layer, trains the embedding and ``beta`` with each row left out of its
own retrieval, and predicts by an exact retrieval over every training row.
"""

import copy
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from ._base import (
    VersionedStateMixin,
    check_n_threads,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
    validate_data,
)
from ._columns import code_columns as _code_columns
from ._columns import codes as _codes
from ._columns import encode as _encode
from ._columns import frame_categories as _frame_categories
from ._docs import shared_parameters
from ._quantile import quantile_fit, quantile_normal, weighted_scaling
from ._supervised import TRAINING_CONSTRAINTS, NeuralClassifierMixin, row_groups
from ._training import cut_short_schedule, train
from .nn import RowHopfieldLayer
from .nn._optim import fused_adamw

__all__ = ["HopfieldClassifier"]

# Rows per retrieval at predict time; the stored rows are streamed in chunks as well.
_PREDICT_CHUNK = 2048
# With n_memories="auto", a training step retrieves from this share of the
# stored rows, drawn afresh each step, and from at most _AUTO_MEMORIES of them.
_AUTO_SHARE = 0.5
_AUTO_MEMORIES = 2048
# Fits whose score matrix work (rows x keys x heads x hidden_dim) is at most this
# train in float64.
_FLOAT64_WORK = 1 << 22
# Buffers of the layer that hold the stored rows, not learned weights.
_DATA = ("stored", "labels", "mass")
# Attributes a fit publishes, all in one step at its end.
_FITTED = (
    "classes_",
    "module_",
    "n_iter_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "n_memories_",
    "center_",
    "scale_",
    "quantiles_",
    "n_features_in_",
    "feature_names_in_",
    "categories_",
    "code_columns_",
)


@shared_parameters(
    device="The fitted module is moved back to the CPU.",
    n_threads="fitting and predicting",
    verbose="one line per epoch (loss, validation score, time)",
    random_state=(
        "the initial weights, the validation split and the sampling of batches and memories"
    ),
)
class HopfieldClassifier(
    VersionedStateMixin, NeuralClassifierMixin, ClassifierMixin, BaseEstimator
):
    """Classifier whose stored patterns are the training rows themselves.

    Every training row, embedded by a learned map, is a stored pattern of a
    modern Hopfield layer and its label the value read out: a query
    retrieves ``softmax(beta * sim(W x_j, W x))`` over the training rows
    ``x_j`` and its class probabilities are the retrieved share of each
    class (the "store raw input data" use of the Hopfield layer of Ramsauer
    et al., 2020; the design of ModernNCA and of TabR's retrieval). The
    embedding ``W`` and ``beta`` are trained on the cross-entropy with each
    row left out of its own retrieval, so training measures how well the
    other rows predict it. Prediction is an exact retrieval over all
    training rows, streamed in chunks, so memory stays bounded for any
    training size. With ``n_heads > 1`` several embeddings are trained side
    by side and their probabilities averaged.

    Parameters
    ----------
    n_memories : int, float or "auto", default="auto"
        Stored rows a training row retrieves from in one gradient step,
        drawn afresh each step (ModernNCA's stochastic neighbour sampling:
        a regulariser, and it bounds the cost of a step): about that many
        (int), that share of them (float in (0, 1]), or ``"auto"``: 50% of
        them, at most 2048. Copies of a row are drawn or left out
        together. Prediction always retrieves from every training row.
    beta : float or None, default=None
        Initial inverse temperature of the retrieval softmax; ``None`` means
        ``1 / sqrt(hidden_dim)``. Learned when ``learn_beta``.
    learn_beta : bool, default=True
        Train ``log(beta)`` with the embedding.
    similarity : {"neg_l2", "cosine", "dot"}, default="neg_l2"
        How embedded rows are compared (``"neg_l2"``: minus half the squared
        Euclidean distance).
    n_heads : int, default=1
        Independent embeddings whose probabilities are averaged.
    hidden_dim : int, default=64
        Size of each head's embedding.
    mlp_dim : int or None, default=64
        Width of the ReLU hidden layer of a residual branch added to the
        linear embedding (``W x + V relu(U x + c)``, ``V`` starting at
        zero and the branch learning at a tenth of ``learning_rate``, so
        training starts from the linear embedding and bends it where the
        data pay for it: thresholds and codes of single features,
        interactions); ``None`` for a linear embedding.
    categorical_features : {"auto", "from_dtype"}, default="auto"
        Columns one-hot encoded inside the estimator. ``"from_dtype"``: the
        non-numeric columns of a DataFrame (category, object or string
        dtype). ``"auto"``: those, and the numeric columns that read as
        codes: 3 to 8 distinct values among the rows of positive weight
        (the integer or ordinal codes of categories that many tables
        store), when the training set keeps at least 5 rows (summed sample
        weight) per input column after the encoding. An unseen or missing
        category, or a code value not seen in ``fit``, encodes as all zeros.
    scaling : {"quantile", "standard"}, default="quantile"
        Input transform before the weighted standardisation: each feature
        mapped to a standard normal through its weighted empirical
        distribution (``"quantile"``, the rank-Gauss transform TabR and
        ModernNCA use), or none (``"standard"``).
    n_frequencies : int, default=0
        Periodic functions of each feature learned before the embedding
        (the PBLD numerical embedding of RealMLP): each standardised feature
        ``x_f`` enters as ``[x_f, L_f(cos(2 pi w_f x_f + b_f))]`` with learned
        frequencies ``w_f``, phases ``b_f`` and a 4-output linear map
        ``L_f``, so the embedding can follow thresholds and codes of a
        single feature; its parameters learn at a tenth of
        ``learning_rate``. 0 for the features as they are.
    frequency_scale : float, default=0.1
        Scale of the initial frequencies, in units of a feature's standard
        deviation.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy, in [0, 1).
    learning_rate : float, default=0.01
        AdamW learning rate, annealed to 0 over ``max_iter`` epochs by a
        cosine schedule.
    weight_decay : float, default=0.01
        AdamW decoupled weight decay.
    batch_size : int, default=128
        Query rows per gradient step (each retrieves from all stored rows,
        or from ``n_memories`` of them). With a fixed number of epochs, the
        number of steps grows with the training set: few on small tables,
        which overfit quickly, more on larger ones.
    max_iter : int, default=30
        Number of epochs of the schedule.
    tol : float, default=1e-4
        Training stops before ``max_iter`` when the loss (or, with early
        stopping, the validation accuracy) has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs. A fit that reaches
        ``max_iter`` while its loss still fell markedly (over the last fifth
        of the epochs, a falling trend that Kendall's rank test finds at the
        1% level, by a median slope steeper than ``10 * tol`` an epoch) was
        cut short and warns (``ConvergenceWarning``).
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data,
        stop when its accuracy stops improving, and keep the best epoch.
        The held-out rows are not stored.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied with
        ``sample_weight``; ``"balanced"`` weighs classes inversely to their
        frequency.
    warm_start : bool, default=False
        Continue from the previous fit's embedding instead of starting anew
        (the data must have the same features and classes); the new rows
        are stored, the optimiser starts afresh.
    %(device)s
    %(n_threads)s
    %(verbose)s
    %(random_state)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    module_ : skhop.nn.RowHopfieldLayer
        The trained layer with the stored (scaled) training rows, on the CPU.
    n_memories_ : int
        Number of stored rows (training rows of positive weight).
    quantiles_ : tuple of two ndarrays of shape (n_features_in_, 256), or None
        Knots of each feature and its weighted distribution function there
        (``scaling="quantile"``), the input's first transform.
    center_, scale_ : ndarray of shape (n_features_in_,)
        The weighted mean and standard deviation the (transformed) input is
        scaled by.
    n_iter_ : int
        Epochs run by the last ``fit`` (summed over warm starts).
    loss_curve_ : list of float
        Training loss (weighted mean cross-entropy) after each epoch.
    validation_scores_ : list of float or None
        Validation accuracy after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        Best validation accuracy, whose weights were kept (``early_stopping``
        only).
    code_columns_ : dict
        ``{column position: values}`` of the numeric columns one-hot encoded
        as codes (``categorical_features="auto"``); empty when none.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    sklearn.neighbors.KNeighborsClassifier : Vote of the nearest training rows.
    sklearn.neural_network.MLPClassifier : A multi-layer perceptron.

    Notes
    -----
    Each feature is mapped to a standard normal through its weighted
    empirical distribution (by default) and then scaled by its weighted mean
    and standard deviation, inside the estimator; the non-numeric columns of a DataFrame
    (category, object or string dtype) are one-hot encoded, an unseen or
    missing category as all zeros, and so are numeric columns that read as
    codes (``categorical_features``). A row's mass, in the loss and in every
    retrieval, is its sample weight times its class weight: a row of
    sample weight 2 counts as two copies of it, and sees the other copy of
    itself in its own retrieval; a class weight scales the prior share of
    its class in every retrieval. When every step sees all rows
    (``batch_size`` at least the number of rows), weights and repetitions give the same model up to
    rounding; with mini-batches they differ only by the batches drawn.
    Rows of weight 0 are not stored. Small fits (up to about 4 million
    score entries per epoch) train in float64, larger ones in float32.

    Prediction runs in float64 in blocks of rows: a row's probabilities
    equal those it gets in any other batch up to float64 rounding (about
    1e-15 relative), not bit for bit. A fitted estimator may be read by
    several threads; a refit publishes its fitted attributes in one step at
    its end, so a concurrent reader sees the old model or the new one.

    An epoch costs ``O(n_samples * min(n_samples, n_memories) *
    n_heads * hidden_dim)``; a prediction ``O(n_queries * n_samples *
    n_heads * hidden_dim)``; with ``n_frequencies`` the embedding adds
    ``O(n_features * n_frequencies)`` per row. The defaults were chosen on the *tune* half of
    the UCI datasets of ``benchmarks/uci.py`` and checked on the *confirm*
    half.

    References
    ----------
    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021.
    H.-J. Ye et al., "Revisiting Nearest Neighbor for Tabular Data: A Deep
    Tabular Baseline Two Decades Later" (ModernNCA), ICLR 2025.
    Y. Gorishniy et al., "TabR: Tabular Deep Learning Meets Nearest
    Neighbors", ICLR 2024.
    D. Holzmüller et al., "Better by Default: Strong Pre-Tuned MLPs and
    Boosted Trees on Tabular Data" (RealMLP), NeurIPS 2024.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skhop import HopfieldClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = HopfieldClassifier(random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _fitted_state = tuple(k for k in _FITTED if k != "feature_names_in_")

    _parameter_constraints = {
        "n_memories": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
            StrOptions({"auto"}),
        ],
        "beta": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "learn_beta": ["boolean"],
        "similarity": [StrOptions({"neg_l2", "cosine", "dot"})],
        "n_heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "mlp_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "categorical_features": [StrOptions({"auto", "from_dtype"})],
        "scaling": [StrOptions({"standard", "quantile"})],
        "n_frequencies": [Interval(numbers.Integral, 0, None, closed="left")],
        "frequency_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_memories="auto",
        *,
        beta=None,
        learn_beta=True,
        similarity="neg_l2",
        n_heads=1,
        hidden_dim=64,
        mlp_dim=64,
        categorical_features="auto",
        scaling="quantile",
        n_frequencies=0,
        frequency_scale=0.1,
        label_smoothing=0.0,
        learning_rate=0.01,
        weight_decay=0.01,
        batch_size=128,
        max_iter=30,
        tol=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        class_weight=None,
        warm_start=False,
        device="cpu",
        n_threads=1,
        verbose=0,
        random_state=None,
    ):
        self.n_memories = n_memories
        self.beta = beta
        self.learn_beta = learn_beta
        self.similarity = similarity
        self.n_heads = n_heads
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.categorical_features = categorical_features
        self.scaling = scaling
        self.n_frequencies = n_frequencies
        self.frequency_scale = frequency_scale
        self.label_smoothing = label_smoothing
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense).
        y : array-like of shape (n_samples,)
            Class labels (any hashable type); at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: a row's mass in the loss and in every
            retrieval (weight 2 counts as two copies of the row).

        Returns
        -------
        self : HopfieldClassifier
            The fitted classifier.
        """
        check_n_threads(self.n_threads)
        warm = self.warm_start and hasattr(self, "module_")
        # validated on a shallow copy, so the new feature count and names are
        # published with the rest of the fitted attributes, not before
        shell = copy.copy(self)
        categories = self.categories_ if warm else _frame_categories(X)
        X = _codes(X, categories)
        X, y = validate_data(shell, X, y, dtype=np.float64, reset=not warm)
        copies = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if warm:
            code_columns = self.code_columns_
        elif self.categorical_features == "auto":
            code_columns = _code_columns(X, copies, categories)
        else:
            code_columns = {}
        X = _encode(X, categories, code_columns)
        classes, y_enc = self._encode_targets(y, warm)
        device = resolve_device(self.device)
        # a row's mass, in the loss and in every retrieval: sample_weight times class_weight
        mass = self._sample_weights(classes, y_enc, sample_weight)
        seed = seed_from(self.random_state)
        train_idx, val_idx = self._validation_split(y_enc, np.random.RandomState(seed))
        # rows of weight 0 are neither stored nor trained on
        train_idx = train_idx[(copies[train_idx] > 0) & (mass[train_idx] > 0)]
        if len(train_idx) == 0:
            raise ValueError("sample_weight: no training row has a positive weight.")
        if warm:
            quantiles, center, scale = self.quantiles_, self.center_, self.scale_
        else:
            quantiles = None
            if self.scaling == "quantile":
                quantiles = quantile_fit(X[train_idx], copies[train_idx])
            center, scale = weighted_scaling(_transform(X[train_idx], quantiles), copies[train_idx])
        Z = (_transform(X, quantiles) - center) / scale

        Z_train = Z[train_idx]
        n = len(train_idx)
        share = self._key_share(n)
        work = n * n * share * self.n_heads * self.hidden_dim
        # small fits train in float64: as cheap there, and free of float32 rounding
        # (weights and repetitions then give the same model to ~1e-12)
        dtype = torch.float64 if work <= _FLOAT64_WORK else torch.float32
        with torch_threads(self.n_threads), seeded(seed, device):
            module = self._new_module(n, X.shape[1], len(classes), warm, dtype)
            module.store_(
                torch.as_tensor(Z_train, dtype=dtype),
                torch.as_tensor(y_enc[train_idx], dtype=torch.long),
                torch.as_tensor(mass[train_idx], dtype=dtype),
            )
            module = module.to(device)
            # a row sees the other copies of itself: (c - 1) / c of its mass for c copies
            c = copies[train_idx]
            own = np.full(len(c), -np.inf)  # one copy: the row is left out entirely
            own[c > 1] = np.log((c[c > 1] - 1) / c[c > 1])
            own = torch.as_tensor(own, dtype=dtype, device=device)
            groups = None  # every step sees every row: nothing is drawn
            if share < 1:
                # identical rows (features and label) form one group, drawn or left out together
                inverse = row_groups(Z_train, y_enc[train_idx])
                groups = torch.as_tensor(inverse, device=device)
            result = self._train(
                module,
                own,
                groups,
                share,
                y_enc[train_idx],
                mass[train_idx],
                Z,
                y_enc,
                val_idx,
            )
            module = module.cpu().eval()

        cut_short = cut_short_schedule(result, self.max_iter, self.tol)
        if cut_short:
            warnings.warn(
                f"{type(self).__name__}: the training loss still fell by more than "
                f"10 * tol = {10 * self.tol:g} an epoch in the last fifth of the "
                f"max_iter={self.max_iter} epochs; the fit was cut short, raise max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        fitted = {
            "classes_": classes,
            "module_": module,
            "n_iter_": (self.n_iter_ if warm else 0) + result.n_iter,
            "loss_curve_": (list(self.loss_curve_) if warm else []) + result.loss_curve,
            "validation_scores_": result.validation_scores if self.early_stopping else None,
            "best_validation_score_": (
                result.best_validation_score if self.early_stopping else None
            ),
            "n_memories_": len(train_idx),
            "center_": center,
            "scale_": scale,
            "quantiles_": quantiles,
            "n_features_in_": shell.n_features_in_,
            "categories_": categories,
            "code_columns_": code_columns,
        }
        if hasattr(shell, "feature_names_in_"):
            fitted["feature_names_in_"] = shell.feature_names_in_
        state = {k: v for k, v in self.__dict__.items() if k not in _FITTED}
        self.__dict__ = {**state, **fitted}  # one step: readers see one model or the other
        return self

    def _new_module(self, n_memories, n_features, n_classes, warm, dtype):
        """A fresh layer for ``n_memories`` stored rows, or the previous fit's weights."""
        net = RowHopfieldLayer(
            int(n_features),
            int(n_memories),
            int(n_classes),
            int(self.hidden_dim),
            num_heads=int(self.n_heads),
            mlp_size=None if self.mlp_dim is None else int(self.mlp_dim),
            num_frequencies=int(self.n_frequencies),
            frequency_scale=float(self.frequency_scale),
            beta=None if self.beta is None else float(self.beta),
            learn_beta=bool(self.learn_beta),
            similarity=str(self.similarity),
            dtype=str(dtype).removeprefix("torch."),
        )
        if warm:
            old = {k: v.to(dtype) for k, v in self.module_.state_dict().items() if k not in _DATA}
            net.load_state_dict(old, strict=False)
        return net

    def _key_share(self, n):
        """Share of the ``n`` stored rows a training step retrieves from."""
        if self.n_memories == "auto":
            return min(_AUTO_SHARE, _AUTO_MEMORIES / n)
        if isinstance(self.n_memories, numbers.Integral):
            return min(1.0, self.n_memories / n)
        return float(self.n_memories)

    def _train(self, module, own, groups, share, y_train, w_train, Z, y_enc, val_idx):
        """Train ``module`` in place on its stored rows; returns the ``TrainResult``."""
        device = module.stored.device
        n = module.stored.shape[0]
        smoothing = float(self.label_smoothing)

        def batch_loss(net, idx, yb, wb):
            return net.training_loss(
                idx, yb, wb, own, key_share=share, groups=groups, label_smoothing=smoothing
            )

        def val_score(net, xv, yv, wv):
            return net.accuracy(xv, yv, wv)

        tensors = (
            torch.arange(n, device=device),
            torch.as_tensor(y_train, dtype=torch.long, device=device),
            torch.as_tensor(w_train, dtype=module.stored.dtype, device=device),
        )
        validation = None
        if val_idx is not None:
            validation = (
                torch.as_tensor(Z[val_idx], dtype=module.stored.dtype, device=device),
                torch.as_tensor(y_enc[val_idx], dtype=torch.long, device=device),
                torch.ones(len(val_idx), dtype=module.stored.dtype, device=device),
            )
        batch = min(n, int(self.batch_size))
        result = train(
            module,
            batch_loss,
            tensors,
            max_iter=self.max_iter,
            optimizer=fused_adamw(
                module.parameter_groups(self.learning_rate), self.learning_rate, self.weight_decay
            ),
            batch_size=batch,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            validation=validation,
            validation_score=val_score if validation else None,
            verbose=self.verbose,
            name=type(self).__name__,
            lr_schedule="cosine",
        )
        return result

    # -------------------------------------------------------------- predict

    def _log_proba(self, X):
        check_is_fitted(self)
        # one model throughout, even if another thread refits meanwhile
        state = self.__dict__
        module, center, scale = state["module_"], state["center_"], state["scale_"]
        quantiles = state["quantiles_"]
        categories, code_columns = state["categories_"], state["code_columns_"]
        X = validate_data(self, _codes(X, categories), dtype=np.float64, reset=False)
        X = _encode(X, categories, code_columns)
        net = copy.deepcopy(module).double().eval()
        out = np.empty((X.shape[0], len(self.classes_)))
        with torch_threads(self.n_threads), torch.no_grad():
            # scaled block by block: no scaled copy of the whole input
            for s in range(0, X.shape[0], _PREDICT_CHUNK):
                block = _transform(X[s : s + _PREDICT_CHUNK], quantiles)
                Z = torch.from_numpy((block - center) / scale)
                out[s : s + _PREDICT_CHUNK] = net.log_proba(Z, chunk_size=_PREDICT_CHUNK).numpy()
        return out


def _transform(X, quantiles):
    """``X`` through the fitted quantile-normal transform, or as it is (``None``)."""
    return X if quantiles is None else quantile_normal(X, *quantiles)
