"""Preprocessing for multiple-instance data (sequences of bags)."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from .utils import check_bags

__all__ = ["BagStandardScaler"]


class BagStandardScaler(TransformerMixin, BaseEstimator):
    """Standardise the features of the instances in a sequence of bags.

    The mean and standard deviation of each feature are computed over all
    instances of all bags (each instance counts once), as
    :class:`~sklearn.preprocessing.StandardScaler` would on the stacked
    instances; ``transform`` then scales every bag and returns a list of
    bags again, so it can precede a multiple-instance estimator in a
    :class:`~sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean.
    with_std : bool, default=True
        Divide by the standard deviation (features with zero variance are
        left unscaled).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,) or None
        Mean of each feature over the instances; None when ``with_mean``
        is False.
    var_ : ndarray of shape (n_features_in_,) or None
        Variance of each feature; None when ``with_std`` is False.
    scale_ : ndarray of shape (n_features_in_,) or None
        The divisor of each feature; None when ``with_std`` is False.
    n_features_in_ : int
        Number of features of an instance.
    n_samples_seen_ : int
        Number of instances seen in ``fit``.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : The same on a 2-D array.
    skhop.HopfieldMILClassifier : A classifier of bags.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop.preprocessing import BagStandardScaler
    >>> bags = [np.array([[0.0, 10.0], [2.0, 30.0]]), np.array([[4.0, 20.0]])]
    >>> scaler = BagStandardScaler().fit(bags)
    >>> scaler.mean_
    array([ 2., 20.])
    >>> [b.shape for b in scaler.transform(bags)]
    [(2, 2), (1, 2)]
    """

    _parameter_constraints = {
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and scale of each feature over all instances.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)
            The bags.
        y : None
            Ignored.

        Returns
        -------
        self : BagStandardScaler
            The fitted scaler.
        """
        bags = check_bags(X)
        stacked = np.concatenate(bags)
        mean = stacked.mean(axis=0)
        var = stacked.var(axis=0)
        scale = np.sqrt(var)
        # constant features (up to rounding) are left unscaled
        tiny = scale < 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
        scale[tiny] = 1.0
        self.mean_ = mean if self.with_mean else None
        self.var_ = var if self.with_std else None
        self.scale_ = scale if self.with_std else None
        self.n_features_in_ = stacked.shape[1]
        self.n_samples_seen_ = stacked.shape[0]
        return self

    def transform(self, X):
        """Standardise every bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)

        Returns
        -------
        bags : list of ndarray of shape (n_instances_i, n_features)
            The scaled bags, float64, in the order of ``X``.
        """
        check_is_fitted(self)
        bags = check_bags(X, n_features=self.n_features_in_)
        return [self._scale(b) for b in bags]

    def inverse_transform(self, X):
        """Undo the scaling of every bag.

        Parameters
        ----------
        X : sequence of array-like of shape (n_instances_i, n_features)

        Returns
        -------
        bags : list of ndarray of shape (n_instances_i, n_features)
        """
        check_is_fitted(self)
        bags = check_bags(X, n_features=self.n_features_in_)
        out = []
        for b in bags:
            if self.scale_ is not None:
                b = b * self.scale_
            if self.mean_ is not None:
                b = b + self.mean_
            out.append(b)
        return out

    def _scale(self, bag):
        if self.mean_ is not None:
            bag = bag - self.mean_
        if self.scale_ is not None:
            bag = bag / self.scale_
        return bag
