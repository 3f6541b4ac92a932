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


def working_space(est, values, missing, frame):
    """Standardisation and the working space (float64 statistics whatever the input dtype)."""
    X = values.astype(np.float64)
    valid = ~missing.all(axis=0)
    observed_count = (~missing).sum(axis=0)
    Xz = np.where(missing, 0.0, X)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = Xz.sum(axis=0) / observed_count
        var = (np.where(missing, 0.0, X - mean) ** 2).sum(axis=0) / observed_count
    numeric = np.ones(X.shape[1], dtype=bool) if frame is None else ~est._cat_mask
    scale = np.sqrt(var) if est.standardize else np.ones(X.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 0) & numeric, scale, 1.0)
    shift = mean if est.standardize else np.zeros(X.shape[1])
    shift = np.where(np.isfinite(shift) & numeric, shift, 0.0)
    categories = est._categories if frame is not None else None
    feature, level = one_hot_layout(est._cat_mask, categories, valid)
    codes = np.where(missing, 0.0, (X - shift) / scale)[:, feature]
    # working space; 0 at missing entries; categories one-hot
    onehot = level >= 0
    codes[:, onehot] = codes[:, onehot] == level[onehot]
    memory_mask = missing[:, feature]
    memories = np.where(memory_mask, 0.0, codes)
    fallback = np.where(np.isfinite(mean), (mean - shift) / scale, 0.0)[feature]
    if onehot.any():
        # a category's fallback is its share among the observed entries
        seen = (~memory_mask).sum(0)
        fallback[onehot] = memories[:, onehot].sum(0) / np.maximum(seen[onehot], 1)
    if frame is not None:
        mean = np.where(numeric, mean, np.nan)
    return {
        "memories_": memories.astype(np.float32),
        "memory_mask_": memory_mask,
        "statistics_": mean,
        "scale_": scale,
        "_shift": shift,
        "_fallback": fallback,
        "_valid_mask": valid,
        "_work_feature": feature,
        "_work_level": level,
    }


def vote(model, out, rows, sub_miss, filled, seed):
    """Categorical entries: the category with the largest attention vote (or a draw)."""
    feature, level = model._work_feature, model._work_level
    rng = np.random.RandomState(seed) if model.sample_posterior else None
    for j in np.unique(feature[level >= 0]):
        cols = np.flatnonzero(feature == j)
        need = sub_miss[:, cols[0]]
        if not need.any():
            continue
        shares = np.clip(filled[need][:, cols], 0.0, None)
        if rng is None:
            code = shares.argmax(1)
        else:
            shares = shares / np.maximum(shares.sum(1, keepdims=True), 1e-300)
            u = rng.random_sample((shares.shape[0], 1))
            code = np.minimum((shares.cumsum(1) < u).sum(1), len(cols) - 1)
        out[rows[need], j] = code


def mixed_output(model, codes, frame, indicator):
    from sklearn.utils._set_output import _get_output_config

    pandas = _get_output_config("transform", model)["dense"] == "pandas"
    valid = model._valid_mask
    keep = np.ones_like(valid) if model.keep_empty_features else valid
    if model.keep_empty_features:
        codes[:, ~valid & ~model._cat_mask] = 0.0
    result = decode_frame(
        codes[:, keep],
        frame.iloc[:, np.flatnonzero(keep)],
        model._cat_mask[keep],
        [c for c, k in zip(model.categories_, keep, strict=True) if k],
        pandas,
    )
    if indicator is None:
        return result
    names = model.indicator_.get_feature_names_out(np.asarray(frame.columns, dtype=object))
    if pandas:
        import pandas as pd

        ind = pd.DataFrame(indicator, index=frame.index, columns=names)
        return pd.concat([result, ind], axis=1)
    return np.hstack([result, indicator.astype(object)])
