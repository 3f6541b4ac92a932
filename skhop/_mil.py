"""HopfieldMILClassifier: multiple-instance learning with Hopfield pooling.

A sample is a bag of instances with one label. The sklearn face lives here
(validation, labels, weights, seeding, fitted attributes); the network, a
:class:`skhop.nn.MILNet` over packed bags, lives in ``skhop.nn``.
"""

import copy
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import (
    VersionedStateMixin,
    check_n_threads,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
)
from ._docs import shared_parameters
from ._quantile import KNOTS, quantile_fit
from ._supervised import TRAINING_CONSTRAINTS, NeuralClassifierMixin
from ._training import train
from .nn._mil import POOLINGS, MILNet
from .nn._optim import fused_adamw
from .utils import check_bags

__all__ = ["HopfieldMILClassifier"]

# Bags per forward pass at predict time (the network pieces them by instances).
_PREDICT_BAGS = 512
# Inputs beyond this magnitude overflow float32 arithmetic in the network.
_MAX_SCALE = 1e15
# Entries (instances x features) of the training instances that fit the
# quantile map: more instances than this allows are subsampled.
_QUANTILE_ENTRIES = 1 << 22
# Training instances (entries) up to which they are mapped once for a fit,
# a float32 copy, rather than piece by piece in every step.
_MAPPED_ENTRIES = 1 << 24


def _draw_instances(bags, n, rng):
    """``(instances, bag of each)``: ``n`` drawn without replacement from all of ``bags``."""
    lengths = np.fromiter((len(b) for b in bags), dtype=np.intp, count=len(bags))
    ends = np.cumsum(lengths)
    n = min(int(n), int(ends[-1]))
    picks = np.sort(rng.choice(int(ends[-1]), size=n, replace=False))
    which = np.searchsorted(ends, picks, side="right")
    rows = picks - (ends - lengths)[which]
    if n == 0:
        return np.zeros((0, bags[0].shape[1]), dtype=np.float32), which
    touched, first = np.unique(which, return_index=True)  # one gather per bag drawn from
    parts = np.split(rows, first[1:])
    return np.concatenate([bags[b][r] for b, r in zip(touched, parts, strict=True)]), which


def _fit_quantiles(bags, weights, rng):
    """Knots and levels of each feature over the instances of ``bags``, weighted by their bag.

    All instances are used while they hold at most ``_QUANTILE_ENTRIES``
    values; beyond that, that many (in instances) are drawn without
    replacement, so the fit costs bounded memory whatever the bag sizes.
    """
    lengths = np.fromiter((len(b) for b in bags), dtype=np.intp, count=len(bags))
    cap = max(1, _QUANTILE_ENTRIES // bags[0].shape[1])
    if lengths.sum() <= cap:
        X, w = np.concatenate(bags), np.repeat(weights, lengths)
    else:
        X, which = _draw_instances(bags, cap, rng)
        w = weights[which]
    return quantile_fit(X.astype(np.float64), w)


def _check_scale(bags, name="X"):
    """Refuse bags whose values would overflow the float32 network, naming the scale."""
    scale = max(max(float(b.max()), -float(b.min())) for b in bags)  # no temporary copy
    if scale > _MAX_SCALE:
        raise ValueError(
            f"{name}: the instances reach {scale:.3g} in absolute value, beyond the "
            f"{_MAX_SCALE:.0e} the float32 network can handle without overflow; "
            "standardise the bags first, e.g. make_pipeline(BagStandardScaler(), "
            "HopfieldMILClassifier())."
        )


@shared_parameters(
    device="The fitted module is moved back to the CPU.",
    n_threads="fitting and predicting",
    verbose="one line per epoch",
    random_state="the initial weights, the validation split, shuffling and both dropouts",
)
class HopfieldMILClassifier(
    VersionedStateMixin, NeuralClassifierMixin, ClassifierMixin, BaseEstimator
):
    """Multiple-instance classifier with Hopfield pooling over each bag.

    A sample is a *bag*: a 2-D array of instances ``(n_instances_i,
    n_features)`` with one label for the whole bag. Every instance is
    encoded by ``n_layers`` fully connected ReLU layers of width
    ``hidden_dim``; a Hopfield pooling (Ramsauer et al., 2020) then lets
    ``n_queries`` learned state patterns retrieve from the encoded
    instances of the bag, with ``n_heads`` heads, which pools
    the bag into a fixed-size vector. The mean, maximum or minimum of the
    encoded instances can be appended to it (``pooling``); a linear layer
    maps the result to class scores. ``n_members`` such networks, started
    from different random weights, are trained side by side and their
    log-probabilities averaged (one batched network,
    :class:`skhop.nn.MILNet`). Bags are never padded: the instances of a
    minibatch are packed one after another and every pooling is a segment
    reduction over a bag's instances, so the cost is proportional to the
    number of instances, and a bag's output does not depend on the other
    bags it is batched with. While training, a step reads at most
    ``max_instances`` random instances of a bag, and a random
    ``bag_dropout`` share of those is hidden (never all of them).

    Parameters
    ----------
    hidden_dim : int, default=64
        Width of the instance encoder and of the Hopfield pooling space
        (split over the heads; must be divisible by ``n_heads``).
    n_layers : int, default=1
        Number of encoder layers; 0 pools the raw instances.
    n_heads : int, default=4
        Heads of the Hopfield pooling.
    n_queries : int, default=2
        Learned state patterns (queries) of the Hopfield pooling.
    beta : float or None, default=4.0
        Inverse temperature of the retrieval; ``None`` means
        ``1 / sqrt(hidden_dim / n_heads)`` (the attention scaling of
        transformers, 0.25 with the defaults). The default is sharper: on
        the four MIL benchmarks, with the inputs read as given
        (``scaling=None``), it ranked Fox bags better on every seed (+2.7
        AUC over six seeds) and the others within half a point.
    learn_beta : bool, default=False
        Learn ``beta`` with the other parameters.
    normalize : bool, default=True
        Layer-normalise the encoded instances before the pooling.
    pooling : tuple of {"mean", "max", "min"}, default=("mean", "max")
        Plain poolings of the encoded instances appended to the Hopfield
        pooled vector; ``()`` for Hopfield pooling alone (then the bag
        vector is made only of what the attention picks).
    n_members : int, default=3
        Number of independently initialised networks trained side by side
        (same minibatches, each with its own bag dropout) whose
        log-probabilities are averaged; more members give steadier
        predictions at a proportional cost.
    scaling : {"quantile"} or None, default="quantile"
        How the network reads each instance feature: through its
        distribution over the training instances and then the standard
        normal quantile function (``"quantile"``, the rank-Gauss transform
        of TabR and ModernNCA), so that heavy tails and rare large values
        arrive as moderate ones; or as given (``None``; then standardise the
        bags first, e.g. with :class:`~skhop.preprocessing.BagStandardScaler`).
        The quantile map does not change when a feature is shifted or
        scaled, so a standardising step before it changes nothing beyond
        rounding. It is fitted on the training bags (instances weighted as
        their bag; at most about 4 million values, drawn at random beyond
        that) and applied inside the network, piece by piece.
    n_memories : int, default=0
        Training instances (drawn at random, at most all of them) stored as
        a memory; each adds to the bag vector the similarity
        ``exp(-d^2 / n_features)`` between it and the bag's nearest
        instance (the bag embedding of MILES, Chen et al. 2006, which is a
        Hopfield retrieval of the bag at large beta with the stored
        instance as the query). Costs ``n_instances * n_memories`` work.
    dropout : float, default=0.1
        Dropout on the encoded instances and on the bag vector.
    attention_dropout : float, default=0.0
        Dropout on the pooling attention weights.
    bag_dropout : float, default=0.1
        Share of each bag's instances hidden at random in every training
        step (at least one instance always stays).
    max_instances : int or None, default=64
        At most this many instances of a bag enter a training step, drawn
        at random without replacement anew in every step (the subsampling
        DeepRC, Widrich et al. 2020, uses for bags of 1e5 sequences); a
        step then costs at most ``batch_size * max_instances`` instances,
        whatever the bag sizes. Prediction and ``instance_attention`` read
        every instance. ``None`` trains on whole bags.
    learning_rate : float, default=3e-3
        AdamW learning rate, annealed to 0 over ``max_iter`` epochs by a
        cosine schedule.
    weight_decay : float, default=1e-2
        AdamW decoupled weight decay.
    batch_size : int, default=64
        Bags per gradient step.
    max_iter : int, default=20
        Number of epochs: the planned length of the schedule, so reaching
        it is the normal end of a fit (no ``ConvergenceWarning``).
    tol : float, default=1e-4
        Training stops earlier when the training loss (or, with early
        stopping, the validation score) has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the bags, stop when
        their log-likelihood stops improving and keep the best epoch.
    validation_fraction : float, default=0.1
        Share of the bags held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied with
        ``sample_weight``.
    warm_start : bool, default=False
        Continue from the previous fit's weights (with a fresh optimiser)
        instead of starting anew; needs the same features and classes.
    %(device)s
    %(n_threads)s
    %(verbose)s
    %(random_state)s

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    module_ : torch.nn.Module
        The trained network, on the CPU.
    n_features_in_ : int
        Number of features of an instance.
    n_iter_ : int
        Epochs run (summed over warm starts).
    loss_curve_ : list of float
        Mean training loss after each epoch.
    validation_scores_ : list of float or None
        Validation log-likelihood (minus the mean cross-entropy) after each
        epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        Best validation score, whose weights were kept (``early_stopping``
        only).

    See Also
    --------
    skhop.preprocessing.BagStandardScaler : Standardise the instances of bags.
    skhop.utils.bags_from_long : Build bags from one row per instance.
    skhop.datasets.load_mil : The multiple-instance benchmarks.

    Notes
    -----
    ``X`` is a sequence of bags (a list of 2-D arrays, or a 3-D array of
    bags of equal size), not a 2-D array. With the default
    ``scaling="quantile"`` the features need no standardising (a
    ``BagStandardScaler`` before it changes nothing beyond rounding); with
    ``scaling=None`` standardise them first, e.g. in
    ``make_pipeline(BagStandardScaler(), HopfieldMILClassifier(scaling=None))``.
    The instances are processed in pieces of at most 8,192 (a piece holds
    many small bags or a slice of a large one) whose softmax partials merge
    exactly (an online log-sum-exp), and while training a batch of several
    pieces is recomputed piece by piece in the backward pass: a bag of any
    size is fitted and predicted in bounded memory (20 bags of 100,000 x 64
    instances need under 256 MB beyond the input). Bags are used in
    place when they are float32 and C-contiguous, and copied to float32
    otherwise. The fitted attributes are published together at the end of
    ``fit``: a thread reading a fitted estimator while it refits sees the
    old model or the new one, never a mix (predicting while fitting is
    otherwise not guarded).

    References
    ----------
    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021.

    M. Ilse, J. Tomczak and M. Welling, "Attention-based Deep Multiple
    Instance Learning", ICML 2018.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skhop import HopfieldMILClassifier
    >>> from skhop.datasets import make_mil_bags
    >>> from skhop.preprocessing import BagStandardScaler
    >>> bags, y, witnesses = make_mil_bags(n_bags=60, n_features=5, separation=4.0,
    ...                                    random_state=0)
    >>> clf = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(random_state=0))
    >>> bool(clf.fit(bags, y).score(bags, y) > 0.9)
    True
    >>> from skhop.utils import instance_attention
    >>> attention = instance_attention(clf, bags)  # through the pipeline's scaler
    >>> attention[0].shape == (len(bags[0]),), round(float(attention[0].sum()), 5)
    (True, 1.0)
    """

    _parameter_constraints = {
        "hidden_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_layers": [Interval(numbers.Integral, 0, None, closed="left")],
        "n_heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_queries": [Interval(numbers.Integral, 1, None, closed="left")],
        "beta": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "learn_beta": ["boolean"],
        "normalize": ["boolean"],
        "pooling": [tuple, list],
        "n_members": [Interval(numbers.Integral, 1, None, closed="left")],
        "scaling": [StrOptions({"quantile"}), None],
        "n_memories": [Interval(numbers.Integral, 0, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "attention_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "bag_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_instances": [Interval(numbers.Integral, 1, None, closed="left"), None],
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dim=64,
        n_layers=1,
        n_heads=4,
        n_queries=2,
        beta=4.0,
        learn_beta=False,
        normalize=True,
        pooling=("mean", "max"),
        n_members=3,
        scaling="quantile",
        n_memories=0,
        dropout=0.1,
        attention_dropout=0.0,
        bag_dropout=0.1,
        max_instances=64,
        learning_rate=3e-3,
        weight_decay=1e-2,
        batch_size=64,
        max_iter=20,
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
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_queries = n_queries
        self.beta = beta
        self.learn_beta = learn_beta
        self.normalize = normalize
        self.pooling = pooling
        self.n_members = n_members
        self.scaling = scaling
        self.n_memories = n_memories
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.bag_dropout = bag_dropout
        self.max_instances = max_instances
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
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit

    def _check_structure(self):
        if self.hidden_dim % self.n_heads:
            raise ValueError(
                f"hidden_dim ({self.hidden_dim}) must be divisible by n_heads ({self.n_heads})."
            )
        pooling = tuple(self.pooling)
        bad = [p for p in pooling if p not in POOLINGS]
        if bad or len(set(pooling)) != len(pooling):
            raise ValueError(
                f"pooling must be a tuple of distinct names from {POOLINGS}, got {self.pooling!r}."
            )
        check_n_threads(self.n_threads)
        return pooling

    def _new_module(self, n_features, n_classes, pooling, n_memories=0):
        return MILNet(
            int(n_features),
            int(n_classes),
            int(self.hidden_dim),
            int(self.n_layers),
            int(self.n_heads),
            int(self.n_queries),
            None if self.beta is None else float(self.beta),
            bool(self.learn_beta),
            bool(self.normalize),
            float(self.dropout),
            float(self.attention_dropout),
            pooling,
            int(self.n_members),
            int(n_memories),
            KNOTS if self.scaling == "quantile" else 0,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the classifier on labelled bags.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)
            The bags (at least one instance each, the same features).
        y : array-like of shape (n_bags,)
            One label per bag (any hashable type); at least two classes.
        sample_weight : array-like of shape (n_bags,), default=None
            Non-negative weights of the bags in the loss.

        Returns
        -------
        self : HopfieldMILClassifier
            The fitted classifier.
        """
        pooling = self._check_structure()
        warm = self.warm_start and hasattr(self, "module_")
        bags = check_bags(X, n_features=self.n_features_in_ if warm else None, dtype=np.float32)
        _check_scale(bags)
        if y is None:
            raise ValueError("y is required: one label per bag.")
        y = column_or_1d(y, warn=True)
        if len(y) != len(bags):
            raise ValueError(
                f"y has {len(y)} labels but X has {len(bags)} bags; give one label per bag."
            )
        classes, y_enc = self._encode_targets(y, warm)
        sw = self._sample_weights(classes, y_enc, sample_weight)
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        rng = check_random_state(seed)
        train_idx, val_idx = self._validation_split(y_enc, rng, unit="bags")
        n_features = bags[0].shape[1]

        with torch_threads(self.n_threads), seeded(seed, device):
            if warm:  # a copy, so an interrupted fit leaves the fitted module as it was
                module = copy.deepcopy(self.module_)
            else:
                train_bags = [bags[i] for i in train_idx]
                memories = _draw_instances(train_bags, self.n_memories, rng)[0]
                module = self._new_module(n_features, len(classes), pooling, len(memories))
                module.init_memories_(memories)
                if self.scaling == "quantile":
                    w = sw[train_idx]
                    weighed = np.flatnonzero(w > 0)
                    quantiles = _fit_quantiles([train_bags[i] for i in weighed], w[weighed], rng)
                    module.init_quantiles_(*quantiles)
            module = module.to(device)
            # the bags stay where they are (no copy on the CPU); batches are packed from them
            bag_t = [torch.from_numpy(b).to(device) for b in bags]
            fit_t, mapped = bag_t, False
            entries = sum(len(bags[i]) for i in train_idx) * n_features
            if module.num_knots and entries <= _MAPPED_ENTRIES:  # map once, not every step
                read = module.map_bags([bag_t[i] for i in train_idx])
                fit_t, mapped = dict(zip(train_idx.tolist(), read, strict=True)), True

            def part(idx):
                return (
                    torch.as_tensor(idx, dtype=torch.long, device=device),
                    torch.as_tensor(y_enc[idx], dtype=torch.long, device=device),
                    torch.as_tensor(sw[idx], dtype=torch.float32, device=device),
                )

            tensors = part(train_idx)
            validation = part(val_idx) if val_idx is not None else None
            rate = float(self.bag_dropout)
            cap = None if self.max_instances is None else int(self.max_instances)

            def batch_loss(net, ib, yb, wb):
                sel = [fit_t[i] for i in ib.tolist()]
                return net.training_loss(sel, yb, wb, cap, rate, mapped)

            def val_score(net, iv, yv, wv):
                return net.validation_score([bag_t[i] for i in iv.tolist()], yv, wv)

            result = train(
                module,
                batch_loss,
                tensors,
                max_iter=self.max_iter,
                optimizer=fused_adamw(module.parameters(), self.learning_rate, self.weight_decay),
                batch_size=self.batch_size,
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
            module = module.cpu().eval()
        # all fitted attributes in one step, so a reader never sees half of a refit
        es = self.early_stopping
        self.__dict__.update(
            classes_=classes,
            module_=module,
            n_features_in_=int(n_features),
            n_iter_=(self.n_iter_ if warm else 0) + result.n_iter,
            loss_curve_=(list(self.loss_curve_) if warm else []) + result.loss_curve,
            validation_scores_=result.validation_scores if es else None,
            best_validation_score_=result.best_validation_score if es else None,
        )
        return self

    # -------------------------------------------------------------- predict

    def _forward(self, X, attention=False):
        """Class scores (n_bags, n_classes) and, if asked, per-bag instance attention."""
        check_is_fitted(self)
        bags = check_bags(X, n_features=self.n_features_in_, dtype=np.float32)
        _check_scale(bags)
        scores = np.empty((len(bags), len(self.classes_)), dtype=np.float64)
        weights = []
        module = self.module_.eval()
        with torch_threads(self.n_threads), torch.no_grad():
            for start in range(0, len(bags), _PREDICT_BAGS):
                part = [torch.from_numpy(b) for b in bags[start : start + _PREDICT_BAGS]]
                out = module(part, return_attention=attention)
                if attention:
                    out, att = out
                    weights.append(att.numpy().astype(np.float64))
                scores[start : start + len(part)] = out.numpy()
        if not attention:
            return scores, None
        cuts = np.cumsum([len(b) for b in bags])[:-1]
        return scores, np.split(np.concatenate(weights), cuts)

    def _log_proba(self, X):
        return self._normalise(self._forward(X)[0])

    def instance_attention(self, X):
        """How much each instance of each bag contributes to the Hopfield pooling.

        The attention is that of the forward pass that gives the
        predictions: for each instance, the retrieval weight it receives,
        averaged over the heads, the learned queries and the ``n_members``
        networks. It is non-negative and sums to 1 over the instances of a
        bag. (When ``pooling`` is not
        empty the bag vector also holds the mean and maximum of the encoded
        instances, which the attention does not describe.)

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)

        Returns
        -------
        attention : list of ndarray of shape (n_instances_i,)
            One array per bag, in the order of ``X``.
        """
        return self._forward(X, attention=True)[1]
