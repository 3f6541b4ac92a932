"""HopfieldClassifier: learned prototypes in a modern Hopfield layer.

Each of ``n_heads`` heads keeps ``n_memories`` stored patterns (prototypes)
in input space and one learned target (a vector of class scores) per
prototype. An input, optionally embedded by a linear map shared with the
prototypes, is the state pattern; one Hopfield retrieval over a head's
prototypes reads out a weighted mix of their targets, to which a linear
function of the input is added. The prototypes start as training rows and
their targets as those rows' one-hot labels, so the untrained model is
already a soft nearest-prototype classifier; training moves prototypes,
targets, the inverse temperatures and the linear heads together. The heads'
class probabilities are averaged.
"""

import copy
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import (
    VersionedStateMixin,
    check_n_threads,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
    validate_data,
)
from ._supervised import NeuralClassifierMixin
from ._training import train
from .nn._rebuild import Rebuildable

__all__ = ["HopfieldClassifier"]

# Rows per forward pass at predict time: bounds the (rows, heads, memories) score block.
_PREDICT_CHUNK = 4096
# Largest (rows, heads, memories) leave-one-out mask built once for the whole fit
# (float32, added to the scores).
_PREMASK_ELEMENTS = 1 << 22


def _adamw(module, learning_rate, weight_decay):
    """AdamW over the trainable parameters, fused where torch has the fused kernel.

    The fused step costs a fifth of the per-parameter loop on small models,
    where the optimiser is a large share of an epoch.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)


class _PrototypeNet(Rebuildable, nn.Module):
    """Heads of learned stored patterns with learned class-score targets.

    Head ``h`` scores ``x`` as ``T_h^T softmax(beta_h * sim(E Y_h, E x)) + W_h x + b_h``:
    ``Y_h`` (n_memories, n_features) are its stored patterns, ``T_h``
    (n_memories, n_classes) their targets, ``E`` an optional linear embedding
    shared by inputs and stored patterns, and the last terms an optional
    linear head. :meth:`forward` returns every head's class scores;
    :meth:`log_proba` averages the heads' class probabilities.

    Parameters
    ----------
    n_features, n_classes, n_memories : int
    n_heads : int
        Number of independent heads.
    hidden_dim : int or None
        Size of the shared embedding; ``None`` for none.
    beta : float
        Initial inverse temperature of every head.
    learn_beta : bool
        Learn ``log(beta_h)``; otherwise a fixed buffer.
    similarity : {"neg_l2", "cosine", "dot"}
    dropout : float
        Dropout on the retrieval weights in training mode.
    linear_head : bool
        Add a linear function of the input to each head's class scores.
    """

    def __init__(
        self,
        n_features,
        n_classes,
        n_memories,
        n_heads=1,
        hidden_dim=None,
        beta=1.0,
        learn_beta=True,
        similarity="neg_l2",
        dropout=0.0,
        linear_head=True,
    ):
        super().__init__()
        self.similarity = similarity
        self.dropout = dropout
        self.embed = nn.Identity() if hidden_dim is None else nn.Linear(n_features, hidden_dim)
        log_beta = torch.full((n_heads,), math.log(beta))
        if learn_beta:
            self.log_beta = nn.Parameter(log_beta)
        else:
            self.register_buffer("log_beta", log_beta)
        self.stored = nn.Parameter(torch.zeros(n_heads, n_memories, n_features))
        self.targets = nn.Parameter(torch.zeros(n_heads, n_memories, n_classes))
        if linear_head:
            bound = 1.0 / math.sqrt(n_features)
            self.weight = nn.Parameter(
                torch.empty(n_features, n_heads * n_classes).uniform_(-bound, bound)
            )
            self.bias = nn.Parameter(torch.zeros(n_heads * n_classes))
        else:
            self.weight = self.bias = None

    def attention_logits(self, x):
        """``beta_h * sim(stored_h, x)`` up to a per-row constant, ``(n, n_heads, n_memories)``.

        For ``"neg_l2"``, ``-|q - k|^2 / 2 = q.k - |k|^2 / 2 - |q|^2 / 2`` and the
        last term is the same for every memory, so the softmax over memories
        (the retrieval of :func:`skhop.nn.functional.hopfield_retrieve`) does
        not see it. ``beta_h`` scales the (few) stored patterns rather than the
        scores, and one matrix product over all heads' memories gives the scores.
        """
        n_heads, n_memories = self.stored.shape[:2]
        q = self.embed(x)
        k = self.embed(self.stored)
        if self.similarity == "cosine":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        beta = self.log_beta.exp().view(n_heads, 1, 1)
        k_beta = (k * beta).reshape(n_heads * n_memories, -1)
        if self.similarity == "neg_l2":
            half_sq = (-0.5 * (k * k_beta.view_as(k)).sum(-1)).reshape(-1)
            scores = torch.addmm(half_sq, q, k_beta.T)
        else:
            scores = q @ k_beta.T
        return scores.view(-1, n_heads, n_memories)

    def forward(self, x, mask=None):
        """Class scores ``(n, n_heads, n_classes)`` of ``x`` ``(n, n_features)``.

        ``mask`` ``(n, n_heads, n_memories)``: bool, True = that row ignores
        that memory of that head; or float, added to the scores (0 or -inf).
        """
        scores = self.attention_logits(x)
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(mask, float("-inf"))
        elif mask is not None:
            scores = scores + mask  # additive: its backward is free
        attn = scores.softmax(dim=-1)
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, self.dropout)
        n_heads, _, n_classes = self.targets.shape
        if n_heads == 1:
            out = (attn[:, 0] @ self.targets[0].to(attn.dtype)).unsqueeze(1)
        else:
            out = (attn.transpose(0, 1) @ self.targets.to(attn.dtype)).transpose(0, 1)
        if self.weight is not None:
            out = out + torch.addmm(self.bias, x, self.weight).view(-1, n_heads, n_classes)
        return out

    def log_proba(self, x):
        """Log of the heads' mean class probabilities, ``(n, n_classes)``."""
        logp = self(x).log_softmax(dim=-1)
        return torch.logsumexp(logp, dim=1) - math.log(logp.shape[1])


def _stratified_rows(y, n_memories, rng):
    """``n_memories`` distinct row indices, classes in proportion (each at least once)."""
    n = len(y)
    if n_memories >= n:
        return np.arange(n)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.maximum(1, np.floor(counts * n_memories / n)).astype(int)
    quota = np.minimum(quota, counts)
    # hand out what rounding left, largest remainders first
    left = n_memories - quota.sum()
    if left > 0:
        room = counts - quota
        order = np.argsort(-(counts * n_memories / n - quota))
        for c in order:
            take = min(left, room[c])
            quota[c] += take
            left -= take
            if left == 0:
                break
    chosen = [
        rng.choice(np.flatnonzero(y == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


class HopfieldClassifier(
    VersionedStateMixin, NeuralClassifierMixin, ClassifierMixin, BaseEstimator
):
    """Classifier that stores learned prototypes in a modern Hopfield layer.

    An input retrieves from ``n_memories`` stored patterns (prototypes) with
    one step of the modern Hopfield update, ``softmax(beta * sim(Y, x))``,
    and reads out the learned targets of the prototypes as class scores
    (the ``HopfieldLayer`` of Ramsauer et al., 2020), to which a linear
    function of the input is added. The prototypes start as a
    class-stratified sample of the training rows and their targets as the
    one-hot labels of those rows, so the untrained model is already a soft
    nearest-prototype classifier; prototypes, targets, ``beta`` and the
    linear head are then trained together with full-batch AdamW on the
    cross-entropy. While training, a row does not retrieve the prototype it
    seeded, so ``beta`` is learned from how well prototypes predict other
    rows rather than by recall. With ``n_heads > 1`` several such
    retrievals, each with its own prototypes, are trained side by side and
    their probabilities averaged.

    Parameters
    ----------
    n_memories : int or "auto", default="auto"
        Number of stored patterns per head. ``"auto"`` is 64, at most the
        number of training rows.
    beta : float or None, default=None
        Initial inverse temperature of the retrieval softmax;
        ``None`` means ``1 / sqrt(d)`` with ``d`` the number of features
        (or ``hidden_dim``). Learned during training when ``learn_beta`` is
        True.
    learn_beta : bool, default=True
        Train ``log(beta)`` with the other parameters.
    similarity : {"neg_l2", "cosine", "dot"}, default="neg_l2"
        How the state pattern is compared with the stored patterns.
    n_heads : int, default=4
        Number of independent heads. Each has its own stored patterns
        (its own stratified sample of rows), targets, ``beta`` and linear
        head; their class probabilities are averaged.
    hidden_dim : int or None, default=None
        Size of a linear embedding shared by inputs and stored patterns;
        ``None`` compares raw inputs.
    linear_head : bool, default=True
        Add a linear function of the input to the retrieved class scores.
    dropout : float, default=0.0
        Dropout on the retrieval weights during training.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy, in [0, 1).
    learning_rate : float, default=0.01
        AdamW learning rate.
    weight_decay : float, default=0.5
        AdamW decoupled weight decay (each step shrinks the parameters by
        ``learning_rate * weight_decay``): the main regulariser.
    batch_size : int or "auto", default="auto"
        Rows per gradient step; ``"auto"`` is the whole training set up to
        1024 rows (full batch), else 256.
    max_iter : int, default=100
        Maximum number of epochs.
    tol : float, default=1e-4
        Training stops when the loss (or, with early stopping, the
        validation accuracy) has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data,
        stop when its accuracy stops improving, and keep the best epoch.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Patience, in epochs, of the stopping rule.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied with
        ``sample_weight``; ``"balanced"`` weighs classes inversely to their
        frequency.
    warm_start : bool, default=False
        Continue from the previous fit's weights instead of starting anew
        (the data must have the same features and classes); the optimiser
        starts afresh, since no optimiser state is kept in the estimator.
    device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"
        Where to train; the fitted module is moved back to the CPU.
    n_threads : int or None, default=1
        Torch threads while fitting and predicting (restored afterwards);
        ``None`` leaves torch's setting alone.
    verbose : int, default=0
        Print one line per epoch (loss, validation score, time) when > 0.
    random_state : int, RandomState instance or None, default=None
        Seeds the prototype sample, the validation split, the initial
        weights, shuffling and dropout. Torch's global RNG is left untouched.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels seen in ``fit``.
    module_ : torch.nn.Module
        The trained network, on the CPU.
    n_memories_ : int
        Number of stored patterns actually used: at least one per class.
    n_iter_ : int
        Epochs run by the last ``fit`` (summed over warm starts).
    loss_curve_ : list of float
        Training loss after each epoch: each head's weighted mean
        cross-entropy, summed over the heads.
    validation_scores_ : list of float or None
        Validation accuracy after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        Best validation accuracy, whose weights were kept (``early_stopping``
        only).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : A multi-layer perceptron.
    sklearn.neighbors.KNeighborsClassifier : Vote of the nearest training rows.

    Notes
    -----
    Inputs should be standardised (e.g. with
    :class:`~sklearn.preprocessing.StandardScaler`), as for any neural
    network. Prediction runs in float64 and in chunks of rows, so memory
    stays bounded and a row's prediction does not depend on the rows
    predicted with it.

    The defaults were chosen on the 50 small UCI datasets of
    ``benchmarks/uci.py`` (fixed constants, the same for every dataset):
    fewer memories than rows regularise better than one memory per row,
    several heads average away the variance of the prototype sample, and a
    strong decoupled weight decay matters more than the learning rate or
    the number of epochs. Each epoch costs ``O(n_samples * n_heads *
    n_memories * n_features)``.

    References
    ----------
    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skhop import HopfieldClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), HopfieldClassifier(random_state=0)).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        "n_memories": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "beta": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "learn_beta": ["boolean"],
        "similarity": [StrOptions({"neg_l2", "cosine", "dot"})],
        "n_heads": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "linear_head": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_memories="auto",
        *,
        beta=None,
        learn_beta=True,
        similarity="neg_l2",
        n_heads=4,
        hidden_dim=None,
        linear_head=True,
        dropout=0.0,
        label_smoothing=0.0,
        learning_rate=0.01,
        weight_decay=0.5,
        batch_size="auto",
        max_iter=100,
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
        self.linear_head = linear_head
        self.dropout = dropout
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

    def _resolve_batch_size(self, n):
        if self.batch_size == "auto":
            return n if n <= 1024 else 256
        return self.batch_size

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the classifier.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (dense; standardise it first).
        y : array-like of shape (n_samples,)
            Class labels (any hashable type); at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the loss.

        Returns
        -------
        self : HopfieldClassifier
            The fitted classifier.
        """
        check_n_threads(self.n_threads)
        warm = self.warm_start and hasattr(self, "module_")
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not warm)
        classes, y_enc = self._encode_targets(y, warm)
        device = resolve_device(self.device)
        sw = self._sample_weights(classes, y_enc, sample_weight)
        seed = seed_from(self.random_state)
        rng = check_random_state(seed)
        train_idx, val_idx = self._validation_split(y_enc, rng)

        with torch_threads(self.n_threads), seeded(seed, device):
            if warm:
                # continue from a copy, so an interrupted fit leaves module_ as it was;
                # the optimiser starts afresh from the kept weights
                module = copy.deepcopy(self.module_)
                seeded_by = np.full((len(train_idx), self.module_.stored.shape[0]), -1)
            else:
                module, seeded_by = self._init_module(
                    X[train_idx], y_enc[train_idx], len(classes), rng
                )
            module = module.to(device)
            n_memories = module.stored.shape[1]

            def to_t(a, dtype=None):
                return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

            # a row ignores the memory it seeded, so training measures how well the
            # memories predict other rows (and beta is not pushed up by recall)
            n_heads = module.stored.shape[0]
            own = to_t(seeded_by, torch.long)
            memory_ids = torch.arange(n_memories, device=device)
            # the (rows, heads, memories) mask once, unless it is large: then per batch
            premask = seeded_by.size * n_memories <= _PREMASK_ELEMENTS
            if premask:
                own = torch.zeros(own.shape + (n_memories,), device=device).masked_fill_(
                    own.unsqueeze(-1) == memory_ids, float("-inf")
                )
            # labels and weights repeated per head, so the loss is one flat cross-entropy
            y_heads = np.repeat(y_enc[train_idx, None], n_heads, axis=1)
            w_heads = np.repeat(sw[train_idx, None], n_heads, axis=1)
            tensors = (
                to_t(X[train_idx]),
                to_t(y_heads, torch.long),
                to_t(w_heads, torch.float32),
                own,
            )
            validation = None
            if val_idx is not None:
                validation = (
                    to_t(X[val_idx]),
                    to_t(y_enc[val_idx], torch.long),
                    to_t(sw[val_idx], torch.float32),
                )
            smoothing = float(self.label_smoothing)
            n_classes = len(classes)

            def batch_loss(net, xb, yb, wb, sb):
                mask = sb if premask else sb.unsqueeze(-1) == memory_ids
                logits = net(xb, mask if n_memories > 1 else None)  # (batch, heads, classes)
                loss = F.cross_entropy(
                    logits.reshape(-1, n_classes),
                    yb.reshape(-1),
                    reduction="none",
                    label_smoothing=smoothing,
                )
                # every head's weighted mean loss, summed over the heads
                wb = wb.reshape(-1)
                return loss.dot(wb) * n_heads / wb.sum()

            def val_score(net, xv, yv, wv):
                pred = net.log_proba(xv).argmax(dim=1)
                return ((pred == yv).float() * wv).sum() / wv.sum()

            result, _ = train(
                module,
                batch_loss,
                tensors,
                max_iter=self.max_iter,
                optimizer=_adamw(module, self.learning_rate, self.weight_decay),
                batch_size=self._resolve_batch_size(len(train_idx)),
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                validation=validation,
                validation_score=val_score if validation else None,
                verbose=self.verbose,
                name=type(self).__name__,
            )
            module = module.cpu()
        # fitted attributes only now, so an interrupted fit leaves the estimator as it was
        self._finish_fit(classes=classes, module=module, result=result, warm=warm)
        self.n_memories_ = int(n_memories)
        return self

    def _init_module(self, X, y_enc, n_classes, rng):
        """A fresh network whose heads' memories are drawn from the rows.

        Returns the network and ``seeded_by`` ``(n, n_heads)``: the memory each
        row seeded in each head, or -1.
        """
        n, n_features = X.shape
        n_heads = int(self.n_heads)
        n_memories = min(n, 64) if self.n_memories == "auto" else int(self.n_memories)
        # a class-stratified sample of rows per head, each class at least once
        rows = [_stratified_rows(y_enc, min(n_memories, n), rng) for _ in range(n_heads)]
        n_memories = max(n_memories, len(rows[0]))
        dim = n_features if self.hidden_dim is None else self.hidden_dim
        beta = 1.0 / math.sqrt(dim) if self.beta is None else float(self.beta)
        net = _PrototypeNet(
            int(n_features),
            int(n_classes),
            int(n_memories),
            n_heads=n_heads,
            hidden_dim=None if self.hidden_dim is None else int(self.hidden_dim),
            beta=beta,
            learn_beta=bool(self.learn_beta),
            similarity=str(self.similarity),
            dropout=float(self.dropout),
            linear_head=bool(self.linear_head),
        )
        patterns = np.empty((n_heads, n_memories, n_features), dtype=np.float32)
        labels = np.empty((n_heads, n_memories), dtype=np.int64)
        seeded_by = np.full((n, n_heads), -1)
        for h, r in enumerate(rows):
            extra = n_memories - len(r)  # more memories than rows: jittered copies
            more = rng.randint(n, size=extra)
            noise = rng.normal(scale=0.1, size=(extra, n_features))
            patterns[h] = np.concatenate([X[r], X[more] + noise])
            labels[h] = np.concatenate([y_enc[r], y_enc[more]])
            seeded_by[r, h] = np.arange(len(r))
        with torch.no_grad():
            net.stored.copy_(torch.from_numpy(patterns))
            net.targets.copy_(F.one_hot(torch.from_numpy(labels), n_classes).float())
        return net, seeded_by

    # -------------------------------------------------------------- predict

    def _log_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        # in float64, so a row's scores do not depend on the rows batched with it
        module = copy.deepcopy(self.module_).double().eval()
        # one output array, filled block by block: no per-block results are kept, so
        # the heap is not fragmented by them and the peak stays at one block's work
        out = np.empty((X.shape[0], len(self.classes_)))
        with torch_threads(self.n_threads), torch.no_grad():
            for s in range(0, X.shape[0], _PREDICT_CHUNK):
                out[s : s + _PREDICT_CHUNK] = module.log_proba(
                    torch.from_numpy(X[s : s + _PREDICT_CHUNK])
                ).numpy()
        return out
