"""Fit and predict plumbing shared by skhop's neural classifiers.

The classifiers differ in their networks and inputs (rows of a table, bags
of instances); the label handling, weights, validation split, fitted
attributes and the probability methods are the same and live here.
"""

import numbers
import warnings

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight

from ._training import split_validation
from .nn._checks import show

# The parameters of the shared training schedule, weights and runtime: one
# declaration for every neural classifier.
TRAINING_CONSTRAINTS = {
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
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


class NeuralClassifierMixin:
    """Shared parts of ``fit`` and the prediction methods.

    A subclass implements ``_log_proba(X)``: the normalised class
    log-probabilities, shape ``(n_samples, n_classes)``, after its own input
    checks; the prediction methods are built on it.
    """

    def _encode_targets(self, y, warm):
        """``(classes, y_enc)``; at least two classes, the same ones on a warm start."""
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({show(classes[0])}); the classifier needs at least "
                "two classes."
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start needs the classes of the previous fit "
                f"({self.classes_.tolist()}), got {classes.tolist()}."
            )
        return classes, y_enc

    def _sample_weights(self, classes, y_enc, sample_weight):
        """``sample_weight`` times ``class_weight``, checked, with mean 1."""
        sw = _check_sample_weight(sample_weight, y_enc, dtype=np.float64, ensure_non_negative=True)
        if self.class_weight is not None:
            cw = self.class_weight
            if isinstance(cw, dict):
                unknown = set(cw) - set(classes.tolist())
                if unknown:
                    raise ValueError(
                        f"class_weight has keys {sorted(unknown, key=str)} that "
                        f"are not classes of y ({classes.tolist()})."
                    )
                cw = {int(np.flatnonzero(classes == k)[0]): v for k, v in cw.items()}
            sw = sw * compute_sample_weight(cw, y_enc)
        if not sw.sum() > 0:
            raise ValueError("sample_weight (times class_weight) must have a positive sum.")
        return sw / sw.mean()

    def _validation_split(self, y_enc, rng, unit="rows"):
        """``(train_idx, val_idx)``; ``val_idx`` is None without early stopping."""
        if not self.early_stopping:
            return np.arange(len(y_enc)), None
        train_idx, val_idx = split_validation(y_enc, self.validation_fraction, rng)
        if len(train_idx) == 0 or len(val_idx) == 0:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no "
                f"{unit} to train or validate on ({len(y_enc)} {unit})."
            )
        return train_idx, val_idx

    def _finish_fit(self, *, classes, module, result, warm):
        """Warn if training did not converge, then set the fitted attributes at once."""
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__}: reached max_iter={self.max_iter} epochs without "
                "converging; raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.classes_ = classes
        self.module_ = module
        self.n_iter_ = (self.n_iter_ if warm else 0) + result.n_iter
        self.loss_curve_ = (list(self.loss_curve_) if warm else []) + result.loss_curve
        if self.early_stopping:
            self.validation_scores_ = result.validation_scores
            self.best_validation_score_ = result.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None

    @staticmethod
    def _normalise(scores):
        """Class scores to log-probabilities (a log-softmax over the classes)."""
        return scores - logsumexp(scores, axis=1, keepdims=True)

    def decision_function(self, X):
        """Class scores (log-probabilities) of the samples.

        Parameters
        ----------
        X : array-like
            The samples, as for :meth:`fit` (rows of a table, or bags).

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes, the log-odds of ``classes_[1]``; otherwise the
            log-probability of each class.
        """
        scores = self._log_proba(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict_log_proba(self, X):
        """Log of the class probabilities.

        Parameters
        ----------
        X : array-like
            The samples, as for :meth:`fit` (rows of a table, or bags).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return self._log_proba(X)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like
            The samples, as for :meth:`fit` (rows of a table, or bags).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return np.exp(self._log_proba(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like
            The samples, as for :meth:`fit` (rows of a table, or bags).

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        log_proba = self._log_proba(X)  # checks that the model is fitted first
        return self.classes_[np.argmax(log_proba, axis=1)]


def row_groups(Z, y, block=65536):
    """Group id of every row of ``Z`` with label ``y``: equal rows share one id.

    The ids are those of ``np.unique(np.column_stack([Z, y]), axis=0,
    return_inverse=True)`` (rows in lexicographic order, first column first),
    found by sorting row indices and comparing neighbours block by block, so
    that no widened copy of ``Z`` is made: the extra memory is a few integers
    per row and one block of comparisons.
    """
    n = len(y)
    order = np.lexsort((y, *Z.T[::-1]))  # lexsort's last key is its first
    starts = np.empty(n, dtype=bool)
    starts[:1] = True
    for s in range(1, n, block):
        a = order[s : s + block]
        b = order[s - 1 : s - 1 + len(a)]  # each row's predecessor in the order
        starts[s : s + len(a)] = (y[a] != y[b]) | (Z[a] != Z[b]).any(axis=1)
    ids = np.empty(n, dtype=np.intp)
    ids[order] = np.cumsum(starts) - 1
    return ids
