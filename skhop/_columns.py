"""A DataFrame's non-numeric columns: recognised, coded, and one-hot encoded (numpy only)."""

import numpy as np

__all__ = ["frame_categories", "codes", "one_hot"]


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
