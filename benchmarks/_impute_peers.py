"""The peers of the imputation benchmark, the missing-value patterns and a result cache.

Peers are slow (the forest imputers above all), so their per-dataset
results are cached under ``benchmarks/results/.cache/imputation/`` (git
ignored), keyed by the library versions, the peer's settings, the dataset,
the pattern, the rate and the seed. A cached entry is reused only when every
part of its key matches.
"""

import hashlib
import json
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

CACHE = Path(__file__).resolve().parent / "results" / ".cache" / "imputation"
K_GRID = (1, 3, 5, 10, 20, 50)
# trees of the missforest package's LightGBM learners, without linear_tree (its
# defaults, 100 trees with linear_tree, take hours on the 262-column table on these
# 2 shared cores; the forest peers must finish every table)
MF_TREES = 10
N_BLOCKS = 3


def seed_of(*parts):
    """A stable seed from names and numbers (the same for any subset of datasets)."""
    return zlib.crc32("-".join(str(p) for p in parts).encode()) % (2**31)


def remove(X, rate, pattern, seed):
    """``X`` with entries removed and the removed mask.

    ``"mcar"``: each entry independently with probability ``rate``.
    ``"block"``: the columns are split at random into ``min(3, d)`` groups and
    each row loses each whole group with probability ``rate`` (so about
    ``rate`` of the entries, in blocks of columns missing together).
    """
    rng = np.random.RandomState(seed)
    n, d = X.shape
    if pattern == "mcar":
        hidden = rng.rand(n, d) < rate
    elif pattern == "block":
        groups = rng.permutation(d) % min(N_BLOCKS, d)
        lose = rng.rand(n, min(N_BLOCKS, d)) < rate
        hidden = lose[:, groups]
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    Xm = X.copy()
    Xm[hidden] = np.nan
    return Xm, hidden


def rmse(Xi, X, hidden):
    return float(np.sqrt(np.mean((Xi[hidden] - X[hidden]) ** 2)))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _versions():
    try:
        from importlib.metadata import version

        import missforest  # noqa: F401

        mf = version("missforest") + "/lightgbm-" + version("lightgbm")
    except Exception:  # not installed
        mf = "none"
    return f"sklearn-{sklearn.__version__}/missforest-{mf}/numpy-{np.__version__}"


def _path_and_key(key):
    key = dict(key, versions=_versions())
    text = json.dumps(key, sort_keys=True)
    return CACHE / (hashlib.sha1(text.encode()).hexdigest()[:20] + ".json"), key


def cache_only(key):
    """The cached value under ``key`` or None (never computes)."""
    path, key = _path_and_key(key)
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return stored["value"]
    return None


def cached(key, compute):
    """``compute()`` (a JSON-able dict) cached under ``key`` (a dict)."""
    value = cache_only(key)
    if value is not None:
        return value
    path, key = _path_and_key(key)
    value = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "value": value}))
    tmp.replace(path)
    return value


def _missforest(Xm):
    import pandas as pd
    from lightgbm import LGBMClassifier, LGBMRegressor
    from missforest import MissForest

    # the package's own learners (LightGBM) with MF_TREES plain trees, on one thread
    lgbm = dict(verbosity=-1, n_estimators=MF_TREES, n_jobs=1)
    mf = MissForest(clf=LGBMClassifier(**lgbm), rgr=LGBMRegressor(**lgbm), verbose=0)
    frame = pd.DataFrame(Xm, columns=[f"c{i}" for i in range(Xm.shape[1])])
    # the package returns its columns reordered (by missing share): back to the input's order
    return mf.fit_transform(frame)[frame.columns].to_numpy(dtype=float)


def _quiet(fn):
    def run(Xm):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of the round-robin sweeps
            return fn(Xm)

    return run


KEEP = dict(keep_empty_features=True)

# name -> (settings recorded in the cache key, Xm -> imputed)
PEERS = {
    "SimpleImputer(mean)": ("mean", lambda Xm: SimpleImputer(**KEEP).fit_transform(Xm)),
    "KNNImputer(k=5)": ("k=5", lambda Xm: KNNImputer(**KEEP).fit_transform(Xm)),
    "IterativeImputer(BayesianRidge)": (
        "defaults,random_state=0",
        _quiet(lambda Xm: IterativeImputer(random_state=0, **KEEP).fit_transform(Xm)),
    ),
    "IterativeImputer(ExtraTrees), MissForest recipe": (
        "ExtraTreesRegressor(n_estimators=10,max_features=sqrt,random_state=0),max_iter=10,"
        "random_state=0",
        _quiet(
            lambda Xm: IterativeImputer(
                estimator=ExtraTreesRegressor(
                    n_estimators=10, max_features="sqrt", random_state=0, n_jobs=1
                ),
                max_iter=10,
                random_state=0,
                **KEEP,
            ).fit_transform(Xm)
        ),
    ),
    "missforest package": (
        f"LightGBM n_estimators={MF_TREES}, n_jobs=1, columns reordered back",
        _quiet(_missforest),
    ),
}
ORACLE = "KNNImputer(best k, oracle)"
SLOW = ("IterativeImputer(ExtraTrees), MissForest recipe", "missforest package")


def peer_result(name, dataset, pattern, rate, X, Xm, hidden, compute=True):
    """{"rmse", "seconds"} of peer ``name`` on one table (cached); None if absent."""
    key = dict(peer=name, dataset=dataset, pattern=pattern, rate=rate)
    if name == ORACLE:
        key["settings"] = f"k in {K_GRID}, best on the removed entries; time = whole grid"

        def compute_fn():
            grid, total = [], 0.0
            for k in K_GRID:
                if k >= len(Xm):
                    continue
                Xi, t = timed(lambda k=k: KNNImputer(n_neighbors=k, **KEEP).fit_transform(Xm))
                grid.append((rmse(Xi, X, hidden), k))
                total += t
            best = min(grid)
            return {"rmse": best[0], "seconds": total, "k": best[1]}
    else:
        settings, fn = PEERS[name]
        key["settings"] = settings

        def compute_fn():
            try:
                Xi, t = timed(lambda: fn(Xm))
            except Exception as exc:  # recorded, not hidden
                return {"rmse": None, "seconds": None, "error": f"{type(exc).__name__}: {exc}"}
            return {"rmse": rmse(Xi, X, hidden), "seconds": t}

    if not compute:
        return cache_only(key)
    return cached(key, compute_fn)


PEER_NAMES = list(PEERS)[:2] + [ORACLE] + list(PEERS)[2:]
