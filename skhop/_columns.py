"""Categorical columns: a DataFrame's non-numeric ones and numeric ones that read as codes,
recognised, coded, and one-hot encoded (numpy only)."""

import numpy as np

__all__ = ["frame_categories", "codes", "code_columns", "value_codes", "one_hot", "encode"]

# A numeric column with 3 to CODE_MAX_VALUES distinct values reads as a code; codes
# are one-hot encoded only while the rows number at least ROWS_PER_COLUMN per input
# column after the encoding, so that a small table does not trade rows for columns.
CODE_MAX_VALUES = 8
ROWS_PER_COLUMN = 5
# Entries of the block of columns sorted at a time.
_BLOCK_ELEMENTS = 1 << 22


def frame_categories(X):
    """``{column position: categories}`` of a DataFrame's non-numeric columns, else ``{}``."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "iloc"):
        return {}
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    out = {}
    for j, dt in enumerate(dtypes):
        if is_numeric_dtype(dt) or is_bool_dtype(dt):
            continue
        col = X.iloc[:, j]
        if hasattr(col, "cat"):
            values = col.cat.categories
        else:
            values = col.dropna().unique()
        out[j] = np.asarray(sorted(values, key=str), dtype=object)
    return out


def codes(X, categories):
    """A DataFrame's categorical columns as category codes (-1: missing or unseen)."""
    if not categories:
        return X
    if not hasattr(X, "iloc"):
        raise ValueError(
            "X: the classifier was fitted on a DataFrame with categorical columns "
            f"(positions {sorted(categories)}); pass a DataFrame with the same columns."
        )
    import pandas as pd

    X = X.copy()
    for j, values in categories.items():
        col = X.iloc[:, j].astype(object)
        col = col.where(col.isin(list(values)))  # unseen categories count as missing
        X.isetitem(j, pd.Categorical(col, categories=list(values)).codes.astype(np.float64))
    return X


def code_columns(X, weights, categories):
    """``{column position: sorted values}`` of the numeric columns that read as codes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Numeric, with the columns of ``categories`` holding category codes.
    weights : ndarray of shape (n_samples,)
        Sample weights; rows of weight 0 are not looked at, and the weights'
        sum counts the rows.
    categories : dict
        The columns already categorical (one-hot encoded whatever this finds).

    Returns
    -------
    columns : dict
        Columns other than ``categories`` with 3 to ``CODE_MAX_VALUES``
        distinct values among the rows of positive weight, or ``{}`` when
        encoding them would leave fewer than ``ROWS_PER_COLUMN`` rows per
        input column.
    """
    keep = weights > 0
    if keep.sum() < 3:
        return {}
    found = {}
    # columns in blocks: one block of sorted rows at a time, not a copy of X
    step = max(1, _BLOCK_ELEMENTS // int(keep.sum()))
    for start in range(0, X.shape[1], step):
        ordered = np.sort(X[keep, start : start + step], axis=0)
        distinct = 1 + (np.diff(ordered, axis=0) != 0).sum(axis=0)
        for j in np.flatnonzero((distinct >= 3) & (distinct <= CODE_MAX_VALUES)):
            if start + j not in categories:
                found[start + j] = np.unique(ordered[:, j])
    width = X.shape[1] + sum(len(v) - 1 for v in (*categories.values(), *found.values()))
    if not found or weights.sum() < ROWS_PER_COLUMN * width:
        return {}
    return {int(j): v for j, v in found.items()}


def value_codes(X, columns):
    """``X`` with each column of ``columns`` as the index of its value (-1: a value not listed)."""
    if not columns:
        return X
    X = X.copy()
    for j, values in columns.items():
        at = np.searchsorted(values, X[:, j]).clip(0, len(values) - 1)
        X[:, j] = np.where(values[at] == X[:, j], at, -1)
    return X


def one_hot(X, categories):
    """Replace each categorical code column by its one-hot columns (all 0 for code -1)."""
    if not categories:
        return X
    parts, start = [], 0
    for j in sorted(categories):
        parts.append(X[:, start:j])
        codes = X[:, j].astype(np.int64)
        block = np.zeros((len(X), len(categories[j])))
        seen = codes >= 0
        block[np.flatnonzero(seen), codes[seen]] = 1.0
        parts.append(block)
        start = j + 1
    parts.append(X[:, start:])
    return np.hstack(parts)


def encode(X, categories, code_columns):
    """``X`` (numeric, ``categories`` as codes) with every categorical and code column one-hot."""
    return one_hot(value_codes(X, code_columns), {**categories, **code_columns})
