"""HopfieldImputer: fill missing entries by Hopfield retrieval over the training rows.

Every training row is a stored pattern, with its own missing entries marked.
A row to complete is the state pattern: it is compared with each stored
pattern over the coordinates observed in both (nan-Euclidean, masked cosine
or rescaled dot product), the scores go through the separation function
(softmax by default), and each missing entry is read out as the
attention-weighted mean of that feature over the stored patterns that
observe it, so a missing memory entry never votes. All of it is matrix work
over blocks of rows.

The core's :func:`skhop.nn.functional.hopfield_retrieve` masks the query
only; the scores here also mask the stored rows (and weigh the features),
and reduce to the core's masked-query retrieval when the stored rows are
complete and the weights uniform (tested).
"""

import math
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, MissingValues, StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted

from . import _impute_fit, _mixed
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
from .nn import masked

__all__ = ["HopfieldImputer"]


def _is_nan(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)


@shared_parameters(
    device="Fitted values stay on the CPU.",
    n_threads="fitting and transforming",
    verbose="the chosen ``beta`` and one line per training epoch",
    random_state="the choice of ``beta``, the training and Stage I, and the posterior draws",
)
class HopfieldImputer(VersionedStateMixin, TransformerMixin, BaseEstimator):
    """Impute missing values by modern Hopfield retrieval over the training rows.

    Every training row is stored as a pattern, with its missing entries
    marked. A row to complete is the state pattern: it is compared with
    every stored pattern over the entries observed in both, the scores
    ``beta * sim`` go through the separation function (softmax by default),
    and each missing entry is filled with the attention-weighted mean of that
    feature over the stored patterns that observe it. A missing entry of a
    stored pattern therefore never votes, and no stored pattern needs to be
    complete. It is a drop-in replacement for
    :class:`~sklearn.impute.KNNImputer` in which the hard choice of
    ``n_neighbors`` equally weighted donors becomes a smooth, distance-weighted
    attention, whose temperature and per-feature weights are fitted to the
    training data by self-supervision: observed entries are hidden and
    filled back from the other rows.

    Parameters
    ----------
    missing_values : int, float or np.nan, default=np.nan
        The placeholder for the missing values; all its occurrences are
        imputed.
    beta : float or "auto", default="auto"
        Inverse temperature: the scores are ``beta * sim``. ``"auto"``
        chooses it from the training data by self-supervision: one observed
        entry of each of up to 512 sampled training rows (twice over) is
        hidden and filled back from the other rows at every
        ``beta = a / u`` with ``a`` in ``2**-2 ... 2**10`` and ``u`` the
        median absolute score; the ``beta`` with the smallest mean squared
        error is kept. The same search decides on *sharpening* (see Notes).
        With learned ``feature_weights`` the training then refines ``beta``
        together with the weights. No target values and no test data are
        used. A number is used as given, without sharpening or training of
        ``beta``.
    similarity : {"neg_l2", "cosine", "dot"}, default="neg_l2"
        Comparison over the entries observed in both rows: ``"neg_l2"`` is
        ``-0.5 * d / n * sum (q_c - x_c)**2`` over the ``n`` common entries
        of the ``d`` features (the scaling of
        :func:`~sklearn.metrics.pairwise.nan_euclidean_distances`),
        ``"cosine"`` the cosine of the two rows restricted to the common
        entries, ``"dot"`` their dot product times ``d / n``.
    separation : {"softmax", "sparsemax", "entmax15", "topk"}, default="softmax"
        Map from scores to retrieval weights (see :func:`skhop.nn.separate`).
        ``"topk"`` with ``top_k=k`` is a softmax over the ``k`` best stored
        rows that observe the feature being filled.
    top_k : int or None, default=None
        Number of stored rows kept by ``separation="topk"`` (required there).
    n_steps : int, default=1
        Retrieval steps. After the first, the completed row is the new state
        and is compared with the stored rows over all its entries; observed
        entries are never changed.
    feature_weights : {"auto", "learned", "uniform"}, default="auto"
        Weights of the features in the similarity. ``"learned"`` fits one
        positive weight per feature, together with ``beta``, by
        self-supervision: observed training entries are hidden one per row
        and filled back from the other rows, and the weights and ``beta``
        take AdamW steps on the squared error (``max_iter`` steps, each on
        a random batch of 256 rows, with ``learning_rate``; at most 4,096
        training rows take part). Features that help to predict the others gain weight,
        noise features lose it. ``"uniform"`` weighs every feature alike
        (the metric of :class:`~sklearn.impute.KNNImputer`). ``"auto"`` is
        ``"learned"`` unless a Stage I feature map is used (``feature_dim``
        or ``separation_loss`` set), where it is ``"uniform"``.
    standardize : bool, default=True
        Compare rows after scaling each feature to zero mean and unit
        variance with the statistics of its observed training entries, so
        that no feature dominates the similarity by its unit alone. The
        filled values are returned in the original units.
    feature_dim : int or None, default=None
        Dimension of a linear feature map ``Phi`` (Stage I, shared with
        :class:`~skhop.KernelHopfieldRetriever`). When ``feature_dim`` or
        ``separation_loss`` is set, rows are compared as
        ``sim(Phi(q), Phi(x))`` with their missing entries held at the
        column mean (and, after the first step, at the current completion);
        ``None`` with ``separation_loss=None`` compares the observed entries
        directly, which is the default.
    separation_loss : {"lse", "uniformity", "min_sep"} or None, default=None
        Stage I loss that separates the stored rows in feature space (see
        :class:`~skhop.KernelHopfieldRetriever`).
    tau : float, default=0.1
        Temperature of the ``"lse"`` and ``"uniformity"`` losses.
    max_iter : int, default=50
        Length of the training in ``fit``: steps of the feature weights
        (one per epoch, training stops early once the loss has not improved
        for 20 of them), or Stage I epochs when a feature map is used.
    learning_rate : float, default=0.05
        AdamW learning rate of that training.
    batch_size : int or None, default=None
        Rows completed per block; bounds the ``(rows, n_memories)`` score
        block. ``None`` keeps each block under 4 Mi scores. A memory knob
        only: results do not depend on it beyond float rounding.
    sample_posterior : bool, default=False
        Fill each missing entry with a draw from the retrieval distribution
        instead of its mean: one stored row that observes the feature,
        drawn with the attention weights, plus Gaussian noise (for a
        categorical feature, a category drawn with the vote shares). The
        noise makes the draws as spread as the fill's error: its variance,
        per feature, is the squared error of the fill minus the
        attention-weighted variance of the stored values (at least 0), both
        measured in ``fit`` on hidden training entries at the fitted ``beta``
        and feature weights. Draws are seeded by
        ``random_state`` at ``transform`` (the same seed gives the same
        draws), so imputers with different seeds give multiple imputations
        whose spread expresses the uncertainty. A ``transform``-time knob,
        like ``batch_size``, ``device``, ``n_threads`` and ``copy``; every
        other parameter takes effect at the next ``fit``.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the features
        with missing values in ``fit``.
    keep_empty_features : bool, default=False
        Keep the features with no observed value in ``fit`` (filled with 0)
        instead of dropping them from the output.
    copy : bool, default=True
        Work on a copy of ``X``; with ``False`` a float array may be filled
        in place.
    %(device)s
    %(n_threads)s
    %(verbose)s
    %(random_state)s

    Attributes
    ----------
    memories_ : ndarray of shape (n_memories, n_valid_features)
        The stored rows in the working space (standardised when
        ``standardize``), with 0 at their missing entries.
    memory_mask_ : ndarray of shape (n_memories, n_valid_features), dtype bool
        ``True`` where a stored entry is missing.
    statistics_ : ndarray of shape (n_features_in_,)
        Mean of the observed training entries of each feature (NaN for a
        feature with none); rows with nothing to compare are filled with it.
    scale_ : ndarray of shape (n_features_in_,)
        Standard deviation used to standardise each feature (1 when not
        standardising or when it is 0).
    beta_ : float
        The inverse temperature used.
    sharpen_ : bool
        Whether rows much closer to one stored row than the temperature
        ``1 / beta_`` are retrieved from it (see Notes).
    feature_weights_ : ndarray of shape (n_valid_features,)
        Weights of the kept features in the similarity (mean 1; all ones
        with ``"uniform"``).
    loss_curve_ : list of float or None
        Training loss per epoch of the feature weights or of Stage I.
    n_iter_ : int
        Epochs of that training (0 without training).
    beta_grid_ : ndarray of shape (n_candidates,) or None
        Candidate values of ``beta`` tried by ``beta="auto"``.
    beta_errors_ : ndarray of shape (n_candidates,) or None
        Their self-supervised mean squared errors (standardised units).
    feature_map_ : torch.nn.Module or None
        The Stage I feature map, on the CPU, or None.
    indicator_ : MissingIndicator or None
        The indicator appended when ``add_indicator``.
    categories_ : list or None
        For a DataFrame with categorical columns, the sorted categories seen
        in ``fit`` for each categorical column (None for numeric ones);
        None for numeric input.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    sklearn.impute.KNNImputer : Mean of the ``n_neighbors`` nearest rows.
    sklearn.impute.SimpleImputer : Column statistics.
    sklearn.impute.IterativeImputer : Round-robin regression of each feature.
    skhop.KernelHopfieldRetriever : Retrieval of whole stored patterns.

    Notes
    -----
    Retrieval and imputation pull ``beta`` in opposite directions: a row
    that *is* a stored row with some entries hidden should be recalled
    exactly (a large ``beta``), a new row is best completed from several
    similar rows (a moderate ``beta``). With ``beta="auto"`` each row may
    raise its own inverse temperature to ``1 / D1``, ``D1`` being its
    distance to the nearest stored row that can fill it (``-sim`` for
    ``"neg_l2"``, ``1 - sim`` for ``"cosine"``): rows far closer to one
    stored row than the others are retrieved from it, exact matches are
    recalled exactly, and other rows are completed at ``beta_``. This
    sharpening is kept only if it does not raise the self-supervised error
    by more than 1% (it hurts on data with many duplicate rows, where an
    exact match says little), and is recorded in ``sharpen_``.

    Features with no observed value in ``fit`` are dropped (or kept and
    filled with 0, see ``keep_empty_features``). A row with no observed
    entry, or with no entry in common with any stored row that observes a
    feature, gets that feature's training mean. Observed entries are
    returned unchanged, bit for bit. The work is matrix products over
    blocks of ``batch_size`` rows, ``O(n_rows * n_memories * n_features)``
    in all, like :class:`~sklearn.impute.KNNImputer`.

    References
    ----------
    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop import HopfieldImputer
    >>> X = [[1.0, 2.0, np.nan], [3.0, 4.0, 3.0], [np.nan, 6.0, 5.0], [8.0, 8.0, 7.0]]
    >>> imputer = HopfieldImputer(random_state=0).fit(X)
    >>> Xt = imputer.transform(X)
    >>> Xt.shape
    (4, 3)
    >>> bool(np.isnan(Xt).any())
    False
    >>> Xt[1].tolist()  # a complete row comes back unchanged
    [3.0, 4.0, 3.0]
    """

    _parameter_constraints: dict = {
        "missing_values": [MissingValues(numeric_only=True)],
        "beta": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "similarity": [StrOptions({"neg_l2", "cosine", "dot"})],
        "separation": [StrOptions({"softmax", "sparsemax", "entmax15", "topk"})],
        "top_k": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "feature_weights": [StrOptions({"auto", "learned", "uniform"})],
        "standardize": ["boolean"],
        "feature_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "separation_loss": [StrOptions(set(SEPARATION_LOSSES)), None],
        "tau": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "sample_posterior": ["boolean"],
        "add_indicator": ["boolean"],
        "keep_empty_features": ["boolean"],
        "copy": ["boolean"],
        "device": "no_validation",
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        missing_values=np.nan,
        beta="auto",
        similarity="neg_l2",
        separation="softmax",
        top_k=None,
        n_steps=1,
        feature_weights="auto",
        standardize=True,
        feature_dim=None,
        separation_loss=None,
        tau=0.1,
        max_iter=50,
        learning_rate=0.05,
        batch_size=None,
        sample_posterior=False,
        add_indicator=False,
        keep_empty_features=False,
        copy=True,
        device="cpu",
        n_threads=1,
        verbose=0,
        random_state=None,
    ):
        self.missing_values = missing_values
        self.beta = beta
        self.similarity = similarity
        self.separation = separation
        self.top_k = top_k
        self.n_steps = n_steps
        self.feature_weights = feature_weights
        self.standardize = standardize
        self.feature_dim = feature_dim
        self.separation_loss = separation_loss
        self.tau = tau
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.sample_posterior = sample_posterior
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.copy = copy
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan(self.missing_values)
        tags.non_deterministic = False
        return tags

    # ---------------------------------------------------------------- helpers

    def _read(self, X, *, reset):
        """``(values, missing, frame)``: float values (NaN-free where missing), the mask, the frame.

        ``frame`` is the input DataFrame when it has categorical columns (the
        values are then codes, see :mod:`skhop._mixed`), else None. float16
        and float32 input keep their dtype in ``values``; the arithmetic is
        done in float64 (statistics) and float32 (retrieval) regardless.
        """
        cat_mask = _mixed.categorical_columns(X)
        if reset:
            self._cat_mask = cat_mask
        elif (cat_mask is None) != (self._cat_mask is None) or (
            cat_mask is not None and not np.array_equal(cat_mask, self._cat_mask)
        ):
            raise ValueError(
                "X: the columns' kinds (numeric or categorical) differ from those seen in fit."
            )
        if cat_mask is None:
            allow = "allow-nan" if _is_nan(self._missing_values(reset)) else True
            values = validate_data(
                self,
                X,
                dtype=FLOAT_DTYPES,
                ensure_all_finite=allow,
                copy=self.copy,
                force_writeable=True,
                reset=reset,
            )
            mv = self._missing_values(reset)
            missing = np.isnan(values) if _is_nan(mv) else values == mv
            self._categories = None
            return values, missing, None
        if not _is_nan(self._missing_values(reset)):
            raise ValueError(
                "missing_values must be np.nan for a DataFrame with categorical columns "
                f"(missing entries are NaN, None or pd.NA there), got {self.missing_values!r}."
            )
        validate_data(self, X, reset=reset, skip_check_array=True)
        if X.shape[0] < 1:
            raise ValueError(f"X: found array with 0 sample(s) (shape={X.shape}).")
        codes, categories = _mixed.encode(X, cat_mask, None if reset else self.categories_)
        self._categories = categories
        return codes, np.isnan(codes), X

    def _missing_values(self, reset):
        return self.missing_values if reset else self._options["missing_values"]

    def _check_options(self):
        if self.separation == "topk" and self.top_k is None:
            raise ValueError(
                "separation='topk' needs top_k, the number of stored rows kept; "
                "set top_k to a positive int."
            )
        if self.feature_weights == "learned" and self._kernel_mode():
            raise ValueError(
                "feature_weights='learned' is not available with a Stage I "
                "feature map (feature_dim or separation_loss set); use "
                "feature_weights='auto' or 'uniform'."
            )
        check_n_threads(self.n_threads)
        return resolve_device(self.device)

    def _kernel_mode(self):
        return self.feature_dim is not None or self.separation_loss is not None

    # -------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the rows of ``X`` and choose ``beta``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training rows, which may have missing entries themselves. A
            DataFrame may have categorical columns (object, string, boolean
            or category dtype) beside numeric ones.
        y : None
            Ignored.

        Returns
        -------
        self : HopfieldImputer
            The fitted imputer.
        """
        work = self._snapshot()
        work._fit(X)
        # one step: a concurrent reader sees the old model or the new one, never a mix
        self.__dict__ = work.__dict__
        return self

    def _snapshot(self):
        """A shallow copy sharing every attribute (taken in one step)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        return copy

    def _fit(self, X):
        device = self._check_options()
        values, missing, frame = self._read(X, reset=True)
        fitted = _mixed.working_space(self, values, missing, frame)
        rng = check_random_state(self.random_state)
        seed = seed_from(rng)
        with torch_threads(self.n_threads), seeded(seed, device), torch.no_grad():
            fitted.update(_impute_fit.fit_retrieval(self, fitted, rng, device, fit_feature_map))
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(missing_values=self.missing_values, error_on_new=False)
            indicator.set_output(transform="default")
            indicator.fit(values)
        fitted["indicator_"] = indicator
        fitted["_options"] = {
            k: getattr(self, k)
            for k in ("missing_values", "similarity", "separation", "top_k", "n_steps")
        }
        fitted["categories_"] = self._categories if frame is not None else None
        self.__dict__.update(fitted)

    # -------------------------------------------------------------- transform

    def transform(self, X):
        """Fill the missing entries of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows to complete, with the columns seen in ``fit``.

        Returns
        -------
        X_out : ndarray or DataFrame of shape (n_samples, n_output_features)
            ``X`` with its missing entries filled and its observed entries
            unchanged; features with no observed value in ``fit`` are dropped
            unless ``keep_empty_features``, and the indicator columns follow
            when ``add_indicator``. A frame with categorical columns gives a
            DataFrame with its dtypes under ``set_output(transform="pandas")``,
            else an object array.
        """
        check_is_fitted(self)
        # read one model even while another thread refits this estimator
        return self._snapshot()._transform(X)

    def _transform(self, X):
        values, missing, frame = self._read(X, reset=False)
        indicator = None
        if self.indicator_ is not None:
            indicator = self.indicator_.transform(values)
        out = values if frame is None else values.copy()
        valid = self._valid_mask
        rows = np.flatnonzero(missing[:, valid].any(axis=1))
        if rows.size:
            self._fill(out, missing, rows)
        if frame is not None:
            return _mixed.mixed_output(self, out, frame, indicator)
        if self.keep_empty_features:
            out[:, ~valid] = 0.0
        else:
            out = out[:, valid]
        if indicator is not None:
            out = np.hstack([out, indicator.astype(out.dtype)])
        return out

    def _fill(self, out, missing, rows):
        """Fill ``out[rows]`` where ``missing`` (in place), by retrieval in the working space."""
        device = resolve_device(self.device)
        check_n_threads(self.n_threads)
        opts = self._options
        feature, level = self._work_feature, self._work_level
        sub = out[rows].astype(np.float64)
        sub_miss = missing[rows][:, feature]
        z = ((sub - self._shift) / self.scale_)[:, feature]
        onehot = level >= 0
        z[:, onehot] = z[:, onehot] == level[onehot]
        z = np.where(sub_miss, 0.0, z)
        sample = None
        seed = None
        if self.sample_posterior:
            seed = seed_from(check_random_state(self.random_state))
        with torch_threads(self.n_threads), torch.no_grad():
            dtype = torch.float32
            observed = (~torch.as_tensor(self.memory_mask_, device=device)).to(dtype)
            fm = self.feature_map_
            mem = masked.MaskedMemory(
                torch.as_tensor(self.memories_, dtype=dtype, device=device),
                observed,
                torch.as_tensor(self._fallback, dtype=dtype, device=device),
                opts["similarity"],
                weights=torch.as_tensor(self.feature_weights_, dtype=dtype, device=device),
                feature_map=None if fm is None else fm.to(device=device, dtype=dtype),
            )
            generator = noise = None
            if self.sample_posterior:
                sample = torch.as_tensor(~onehot, device=device)
                generator = torch.Generator(device=device).manual_seed(seed)
                noise = torch.as_tensor(self._posterior_noise, dtype=dtype, device=device)
            zt = masked.complete(
                torch.as_tensor(z, dtype=dtype, device=device),
                torch.as_tensor(sub_miss, device=device),
                mem,
                self._posterior_beta if self.sample_posterior else self.beta_,
                opts["separation"],
                opts["top_k"],
                sharpen=self.sharpen_,
                num_steps=opts["n_steps"],
                block_rows=_impute_fit.block_rows(self.memories_.shape[0], self.batch_size),
                sample=sample,
                generator=generator,
                noise=noise,
            )
            filled = zt.cpu().numpy().astype(np.float64)
        num = ~onehot
        r, c = np.nonzero(sub_miss[:, num])
        cols = feature[num][c]
        vals = filled[:, num][r, c] * self.scale_[cols] + self._shift[cols]
        out[rows[r], cols] = vals
        if onehot.any():
            _mixed.vote(self, out, rows, sub_miss, filled, seed)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_``, else
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The kept features, then the indicator's names when
            ``add_indicator``.
        """
        check_is_fitted(self)
        if input_features is None:
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        else:
            names = np.asarray(input_features, dtype=object)
            if names.shape != (self.n_features_in_,):
                raise ValueError(
                    f"input_features should have length {self.n_features_in_}, got {len(names)}."
                )
            known = getattr(self, "feature_names_in_", None)
            if known is not None and not np.array_equal(known, names):
                raise ValueError("input_features is not equal to feature_names_in_.")
        out = names if self.keep_empty_features else names[self._valid_mask]
        if self.indicator_ is not None:
            out = np.concatenate([out, self.indicator_.get_feature_names_out(names)])
        return np.asarray(out, dtype=object)
