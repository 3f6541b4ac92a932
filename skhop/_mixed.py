"""Tables with numeric and categorical columns, for :class:`~skhop.HopfieldImputer`.

A DataFrame column of object, string, boolean or category dtype is
categorical; every other column must be numeric. Categorical values are
coded by their position in the sorted list of the categories seen in
``fit`` (missing = NaN), and the imputer's working space holds one 0/1
column per category, so a mismatch counts like a typical difference of
two standardised numbers (a squared distance of 2).
"""

import numpy as np


def categorical_columns(X):
    """Bool mask of the categorical columns of a DataFrame, or None for anything else."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "iloc"):
        return None
    import pandas as pd

    mask = np.array(
        [not pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt) for dt in dtypes],
        dtype=bool,
    )
    return mask if mask.any() else None


def encode(X, cat_mask, categories=None):
    """Float64 codes (n, d) of a frame: numbers as they are, categories as codes; NaN missing.

    ``categories`` (a list with an array per categorical column, None
    elsewhere) is learned when not given; with it, a category not seen in
    ``fit`` raises a ValueError naming the column.
    """
    import pandas as pd

    n, d = X.shape
    out = np.empty((n, d), dtype=np.float64)
    learn = categories is None
    if learn:
        categories = [None] * d
    for j in range(d):
        col = X.iloc[:, j]
        missing = pd.isna(col).to_numpy()
        if not cat_mask[j]:
            try:
                values = pd.to_numeric(col, errors="raise").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"X: column {X.columns[j]!r} is neither numeric nor categorical: {exc}"
                ) from exc
            if np.isinf(values).any():
                raise ValueError(f"X: column {X.columns[j]!r} contains infinity.")
            out[:, j] = values
            continue
        seen = col[~missing].to_numpy(dtype=object)
        if learn:
            categories[j] = _sorted_unique(seen)
        cats = categories[j]
        codes = np.full(n, np.nan)
        if seen.size:
            lookup = {v: i for i, v in enumerate(cats.tolist())}
            try:
                codes[~missing] = [lookup[v] for v in seen.tolist()]
            except KeyError as exc:
                raise ValueError(
                    f"X: column {X.columns[j]!r} has the category {exc.args[0]!r}, not seen in fit."
                ) from None
        out[:, j] = codes
    return out, categories


def _sorted_unique(values):
    try:
        return np.array(sorted(set(values.tolist())), dtype=object)
    except TypeError:  # mixed types: by their text
        return np.array(sorted(set(values.tolist()), key=str), dtype=object)


def one_hot_layout(cat_mask, categories, valid):
    """Working columns of the valid features: ``(feature, level)``, level -1 for numbers."""
    feature, level = [], []
    for j in np.flatnonzero(valid):
        if cat_mask is not None and cat_mask[j]:
            k = len(categories[j])
            feature += [j] * k
            level += list(range(k))
        else:
            feature.append(j)
            level.append(-1)
    return np.asarray(feature, dtype=np.intp), np.asarray(level, dtype=np.intp)


def decode_frame(codes, X, cat_mask, categories, pandas):
    """The completed table: a DataFrame with ``X``'s dtypes, or an object array."""
    import pandas as pd

    columns = {}
    for j, name in enumerate(X.columns):
        col = X.iloc[:, j]
        if cat_mask[j]:
            cats = categories[j]
            idx = codes[:, j]
            ok = ~np.isnan(idx)
            values = np.empty(len(idx), dtype=object)
            values[:] = None
            values[ok] = cats[idx[ok].astype(np.intp)]
            # observed entries come back as they were
            observed = ~pd.isna(col).to_numpy()
            values[observed] = col[observed].to_numpy(dtype=object)
            series = pd.Series(values, index=X.index, name=name)
            try:
                series = series.astype(col.dtype)
            except (TypeError, ValueError):
                pass
        else:
            series = pd.Series(codes[:, j], index=X.index, name=name)
            if pd.api.types.is_float_dtype(col.dtype):
                series = series.astype(col.dtype)
        columns[name] = series
    frame = pd.DataFrame(columns, index=X.index)
    if pandas:
        return frame
    return frame.to_numpy(dtype=object)
