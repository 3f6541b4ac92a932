"""Helpers for multiple-instance data: validating, building and padding bags.

A *bag* is a 2-D array ``(n_instances, n_features)``; a multiple-instance
data set ``X`` is a sequence of bags with the same number of features and
(usually) different numbers of instances. Data often come in the *long*
format instead, one row per instance with a column naming its bag;
:func:`bags_from_long` and :func:`bags_from_frame` turn that into bags.
"""

import numbers

import numpy as np

__all__ = ["check_bags", "bags_from_long", "bags_from_frame", "pad_bags", "instance_attention"]


def _is_sparse(a):
    return hasattr(a, "tocsr") or type(a).__module__.startswith("scipy.sparse")


def check_bags(X, *, n_features=None, dtype=np.float64, ensure_all_finite=True, name="X"):
    """Validate a sequence of bags and return it as a list of 2-D arrays.

    Parameters
    ----------
    X : sequence of array-like of shape (n_instances_i, n_features)
        The bags: a list or tuple of 2-D arrays (or DataFrames), or a 3-D
        array ``(n_bags, n_instances, n_features)`` of bags of equal size.
    n_features : int, optional
        The number of features every bag must have (e.g. the number seen
        in ``fit``).
    dtype : numpy dtype, default=np.float64
        The dtype of the returned arrays.
    ensure_all_finite : bool, default=True
        Raise on NaN or infinity.
    name : str, default="X"
        The argument's name in error messages.

    Returns
    -------
    bags : list of ndarray of shape (n_instances_i, n_features)

    Raises
    ------
    TypeError
        ``X`` is not a sequence of bags (e.g. a 2-D array, a DataFrame, a
        string or a sparse matrix), or a bag is not numeric.
    ValueError
        ``X`` has no bag, a bag is empty or not 2-D, the bags have
        different numbers of features, or a value is NaN or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop.utils import check_bags
    >>> bags = check_bags([np.ones((3, 2)), np.zeros((1, 2))])
    >>> [b.shape for b in bags]
    [(3, 2), (1, 2)]
    >>> check_bags([np.ones((3, 2)), np.zeros((0, 2))])
    Traceback (most recent call last):
    ...
    ValueError: X: bag 1 is empty; every bag needs at least one instance.
    """
    if (
        isinstance(X, (str, bytes, dict))
        or _is_sparse(X)
        or hasattr(X, "columns")
        or not hasattr(X, "__len__")
        or not hasattr(X, "__getitem__")
    ):
        hint = ""
        if hasattr(X, "columns"):
            hint = " For one row per instance, use skhop.utils.bags_from_frame."
        raise TypeError(
            f"{name} must be a sequence of bags (a list of 2-D arrays of shape "
            f"(n_instances, n_features)), got {type(X).__name__}.{hint}"
        )
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim != 3:
            raise TypeError(
                f"{name} must be a sequence of bags (a list of 2-D arrays, or a 3-D array "
                f"(n_bags, n_instances, n_features)), got an array of shape {X.shape}. "
                "For one row per instance, use skhop.utils.bags_from_long."
            )
    if len(X) == 0:
        raise ValueError(f"{name} has no bag; at least one bag is required.")
    bags = []
    # by position, for every sequence type: a pandas Series is iterated in
    # its order, whatever its index labels
    for i, bag in enumerate(list(X)):
        if _is_sparse(bag):
            raise TypeError(f"{name}: bag {i} is a sparse matrix; bags must be dense.")
        if hasattr(bag, "to_numpy"):
            bag = bag.to_numpy()
        try:
            bag = np.asarray(bag)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name}: bag {i} is not a 2-D array ({exc}).") from None
        if bag.ndim != 2:
            raise ValueError(
                f"{name}: bag {i} has {bag.ndim} dimension(s) (shape {bag.shape}); every bag "
                "must be 2-D, (n_instances, n_features). Write a bag of one instance as "
                "x.reshape(1, -1) and a bag of scalar instances as x.reshape(-1, 1)."
            )
        if bag.shape[0] == 0:
            raise ValueError(f"{name}: bag {i} is empty; every bag needs at least one instance.")
        if bag.dtype.kind not in "biuf":
            if bag.dtype.kind == "c":
                raise ValueError(f"{name}: bag {i} is complex; bags must be real.")
            try:
                bag = bag.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name}: bag {i} is not numeric (dtype {bag.dtype}).") from None
        bags.append(bag)
    d = bags[0].shape[1]
    if n_features is None and d == 0:
        raise ValueError(f"{name}: the bags have 0 features; at least one is required.")
    want = d if n_features is None else n_features
    for i, bag in enumerate(bags):
        if bag.shape[1] != want:
            if n_features is None:
                raise ValueError(
                    f"{name}: bag {i} has {bag.shape[1]} features but bag 0 has "
                    f"{d}; all bags must have the same number of features."
                )
            raise ValueError(
                f"{name}: bag {i} has {bag.shape[1]} features, but "
                f"{n_features} features were seen in fit."
            )
    bags = [np.ascontiguousarray(b, dtype=dtype) for b in bags]
    if ensure_all_finite:
        for i, bag in enumerate(bags):
            # min and max propagate NaN and show an infinity, with no temporary array
            if not (np.isfinite(bag.min()) and np.isfinite(bag.max())):
                raise ValueError(f"{name}: bag {i} contains NaN or infinity.")
    return bags


def pad_bags(bags, *, dtype=np.float32, max_len=None):
    """Stack bags into one zero-padded array with a padding mask.

    Parameters
    ----------
    bags : list of ndarray of shape (n_instances_i, n_features)
        Validated bags (see :func:`check_bags`).
    dtype : numpy dtype, default=np.float32
    max_len : int, optional
        Length to pad to; defaults to the largest bag.

    Returns
    -------
    padded : ndarray of shape (n_bags, max_len, n_features)
        Bag ``i`` in ``padded[i, :n_i]``, zeros after.
    mask : ndarray of bool of shape (n_bags, max_len)
        ``True`` marks padding.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop.utils import pad_bags
    >>> padded, mask = pad_bags([np.ones((2, 3)), np.ones((1, 3))])
    >>> padded.shape, mask.tolist()
    ((2, 2, 3), [[False, False], [False, True]])
    """
    lengths = np.fromiter((len(b) for b in bags), dtype=np.intp, count=len(bags))
    n_features = bags[0].shape[1] if bags else 0
    if max_len is None:
        max_len = int(lengths.max()) if len(bags) else 0
    mask = np.arange(max_len)[None, :] >= lengths[:, None]
    padded = np.zeros((len(bags), max_len, n_features), dtype=dtype)
    if len(bags):
        padded[~mask] = np.concatenate(bags).astype(dtype, copy=False)
    return padded, mask


def bags_from_long(X, bag_ids, y=None):
    """Group instance rows into bags by their bag id.

    Parameters
    ----------
    X : array-like of shape (n_instances, n_features)
        One row per instance.
    bag_ids : array-like of shape (n_instances,)
        The bag of each row (any sortable labels).
    y : array-like of shape (n_instances,), optional
        A label per row, constant within each bag (the bag's label).

    Returns
    -------
    bags : list of ndarray of shape (n_instances_i, n_features)
        One bag per distinct id, in sorted id order; the rows of a bag keep
        their order in ``X``.
    bag_y : ndarray of shape (n_bags,) or None
        The label of each bag, or None when ``y`` is None.
    ids : ndarray of shape (n_bags,)
        The id of each bag.

    Raises
    ------
    ValueError
        Lengths differ, or a bag's rows carry different labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skhop.utils import bags_from_long
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> bags, bag_y, ids = bags_from_long(X, ["b", "a", "b", "a", "a"], y=[1, 0, 1, 0, 0])
    >>> ids.tolist(), [len(b) for b in bags], bag_y.tolist()
    (['a', 'b'], [3, 2], [0, 1])
    """
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_instances, n_features), got shape {X.shape}.")
    bag_ids = np.asarray(bag_ids)
    if bag_ids.ndim != 1 or len(bag_ids) != len(X):
        raise ValueError(
            f"bag_ids must be 1-D with one id per row of X ({len(X)} rows), "
            f"got shape {bag_ids.shape}."
        )
    if len(X) == 0:
        raise ValueError("X has no rows; at least one instance is required.")
    ids, inverse = np.unique(bag_ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(ids))
    bounds = np.cumsum(counts)[:-1]
    bags = np.split(X[order], bounds)
    bag_y = None
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)} rows), got shape {y.shape}."
            )
        ys = y[order]
        first = np.concatenate([[0], bounds])
        bag_y = ys[first]
        differs = ys != np.repeat(bag_y, counts)
        if differs.any():
            bad = ids[inverse[order][np.flatnonzero(differs)[0]]]
            raise ValueError(
                f"y must be constant within each bag; bag {bad!r} has rows with different labels."
            )
    return bags, bag_y, ids


def bags_from_frame(frame, bag_column, *, label_column=None, feature_columns=None):
    """Group the rows of a DataFrame into bags by a bag-id column.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per instance.
    bag_column : str
        The column holding each row's bag id.
    label_column : str, optional
        A column holding the bag label on each row (constant within a bag).
    feature_columns : list of str, optional
        The feature columns; defaults to every other column.

    Returns
    -------
    bags : list of ndarray of shape (n_instances_i, n_features)
        In sorted bag-id order.
    bag_y : ndarray of shape (n_bags,) or None
        The bag labels, or None without ``label_column``.
    ids : ndarray of shape (n_bags,)
        The id of each bag.

    Examples
    --------
    >>> import pandas as pd
    >>> from skhop.utils import bags_from_frame
    >>> df = pd.DataFrame({"bag": [0, 0, 1], "x": [1.0, 2.0, 3.0], "label": [1, 1, 0]})
    >>> bags, bag_y, ids = bags_from_frame(df, "bag", label_column="label")
    >>> [b.ravel().tolist() for b in bags], bag_y.tolist()
    ([[1.0, 2.0], [3.0]], [1, 0])
    """
    if not hasattr(frame, "columns"):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    for col in (bag_column, label_column):
        if col is not None and col not in frame.columns:
            raise ValueError(f"column {col!r} is not in the frame.")
    if feature_columns is None:
        feature_columns = [c for c in frame.columns if c not in (bag_column, label_column)]
    else:
        missing = [c for c in feature_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"feature_columns {missing} are not in the frame.")
    if isinstance(feature_columns, (str, numbers.Number)):
        feature_columns = [feature_columns]
    y = None if label_column is None else frame[label_column].to_numpy()
    return bags_from_long(frame[list(feature_columns)].to_numpy(), frame[bag_column].to_numpy(), y)


def instance_attention(estimator, X):
    """Instance attention of a fitted MIL classifier, alone or at the end of a pipeline.

    A fitted ``Pipeline(BagStandardScaler(), HopfieldMILClassifier())``
    has no ``instance_attention`` of its own; this passes ``X`` through
    every step but the last (``transform``) and asks the last one, so the
    pipeline need not be taken apart. Nested pipelines are followed.

    Parameters
    ----------
    estimator : estimator or sklearn.pipeline.Pipeline
        Fitted; the final estimator has an ``instance_attention`` method
        (e.g. :class:`~skhop.HopfieldMILClassifier`).
    X : sequence of array-like of shape (n_instances_i, n_features)
        The bags, as given to the pipeline's ``predict``.

    Returns
    -------
    attention : list of ndarray of shape (n_instances_i,)
        One array per bag, in the order of ``X``.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.pipeline import make_pipeline
    >>> from skhop import HopfieldMILClassifier
    >>> from skhop.datasets import make_mil_bags
    >>> from skhop.preprocessing import BagStandardScaler
    >>> from skhop.utils import instance_attention
    >>> bags, y, _ = make_mil_bags(n_bags=20, n_features=3, random_state=0)
    >>> pipe = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(max_iter=5, random_state=0))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     pipe = pipe.fit(bags, y)
    >>> [a.shape == (len(b),) for a, b in zip(instance_attention(pipe, bags)[:2], bags)]
    [True, True]
    """
    while hasattr(estimator, "steps"):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator.steps[-1][1]
    if not hasattr(estimator, "instance_attention"):
        raise TypeError(
            f"the final estimator ({type(estimator).__name__}) has no instance_attention; "
            "give a fitted HopfieldMILClassifier or a pipeline ending in one."
        )
    return estimator.instance_attention(X)
