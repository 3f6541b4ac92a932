"""Sections of ``benchmarks/imputation.py`` beyond the RMSE tables."""

import os
import subprocess
import sys
import time
import warnings

import numpy as np
from _impute_peers import cached, remove, seed_of
from _uci import load_uci
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skhop import HopfieldImputer

PIPE_RATE = 0.3
PIPE_PEERS = {
    "SimpleImputer(mean)": lambda: SimpleImputer(keep_empty_features=True),
    "KNNImputer(k=5)": lambda: KNNImputer(keep_empty_features=True),
    "IterativeImputer(BayesianRidge)": lambda: IterativeImputer(
        random_state=0, keep_empty_features=True
    ),
}


def _fold_accuracy(make, Xm, y, folds):
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train, test in folds:
            pipe = make_pipeline(make(), LogisticRegression(max_iter=1000))
            pipe.fit(Xm[train], y[train])
            scores.append(pipe.score(Xm[test], y[test]))
    return float(np.mean(scores))


def pipeline_section(halves, lines, peers_only):
    for half, names in halves.items():
        acc = {}
        for name in names:
            X, y, folds = load_uci(name)
            Xm, _ = remove(X, PIPE_RATE, "mcar", seed_of(name, "mcar", PIPE_RATE))
            for peer, make in PIPE_PEERS.items():
                key = dict(peer=peer, dataset=name, section="pipeline", rate=PIPE_RATE)
                key["settings"] = "LogisticRegression(max_iter=1000), dataset folds"
                r = cached(
                    key,
                    lambda make=make, Xm=Xm, y=y, folds=folds: {
                        "acc": _fold_accuracy(make, Xm, y, folds)
                    },
                )
                acc.setdefault(peer, []).append(r["acc"])
            if not peers_only:
                make = lambda: HopfieldImputer(random_state=0, keep_empty_features=True)  # noqa: E731
                acc.setdefault("HopfieldImputer", []).append(_fold_accuracy(make, Xm, y, folds))
        if peers_only:
            continue
        hop = np.array(acc["HopfieldImputer"])
        lines += [
            "",
            f"### Pipeline(imputer, LogisticRegression), {half} half, "
            f"{int(PIPE_RATE * 100)}% MCAR: mean 4-fold test accuracy",
            "",
            "| pipeline | mean accuracy | datasets where Hopfield's pipeline is more accurate |",
            "|---|---|---|",
        ]
        for m, v in acc.items():
            v = np.array(v)
            wins = "—" if m == "HopfieldImputer" else f"{int((hop > v).sum())}/{len(v)}"
            lines.append(f"| {m} | {v.mean():.4f} | {wins} |")
        print("\n".join(lines[-(len(acc) + 4) :]), flush=True)


MIXED_RATE = 0.3
MAX_LEVELS = 8


def mixed_frame(X):
    """A DataFrame: columns with at most ``MAX_LEVELS`` distinct values become string categories."""
    import pandas as pd

    cols = {}
    cat = []
    for j in range(X.shape[1]):
        levels = np.unique(X[:, j])
        if len(levels) <= MAX_LEVELS:
            codes = np.searchsorted(levels, X[:, j])
            cols[f"c{j}"] = pd.Series(np.array([f"v{k}" for k in codes], dtype=object))
            cat.append(True)
        else:
            cols[f"c{j}"] = X[:, j]
            cat.append(False)
    return pd.DataFrame(cols), np.array(cat)


def _ordinal(frame, cat):
    """Float codes of a frame (categories as their sorted position), NaN where missing."""
    out = np.empty(frame.shape)
    levels = []
    for j, name in enumerate(frame.columns):
        col = frame[name]
        if cat[j]:
            lv = np.array(sorted(col.dropna().unique()), dtype=object)
            lookup = {v: i for i, v in enumerate(lv)}
            out[:, j] = [np.nan if v is None or v != v else lookup[v] for v in col]
            levels.append(lv)
        else:
            out[:, j] = col.to_numpy(dtype=float)
            levels.append(None)
    return out, levels


def _score_mixed(filled_cat, filled_num, truth, hidden, cat):
    """(accuracy on hidden categorical entries, RMSE on hidden numeric entries or None)."""
    hc = hidden[:, cat]
    acc = float((filled_cat[hc] == truth[:, cat][hc]).mean())
    hn = hidden[:, ~cat]
    num = None
    if hn.any():
        num = float(np.sqrt(np.mean((filled_num[hn] - truth[:, ~cat].astype(float)[hn]) ** 2)))
    return acc, num


def _mixed_peers(frame_m, truth, hidden, cat):
    codes, levels = _ordinal(frame_m, cat)
    out = {}
    # most frequent category, numeric mean
    mf = SimpleImputer(strategy="most_frequent").fit_transform(codes[:, cat])
    num = SimpleImputer().fit_transform(codes[:, ~cat]) if (~cat).any() else None
    out["most frequent (numbers: mean)"] = (mf, num)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        it = IterativeImputer(random_state=0, keep_empty_features=True).fit_transform(codes)
        t_it = time.perf_counter() - t0
    cat_codes = it[:, cat]
    maxc = np.array([len(lv) - 1 for lv, c in zip(levels, cat, strict=True) if c])
    out["IterativeImputer, ordinal codes rounded"] = (
        np.clip(np.rint(cat_codes), 0, maxc),
        it[:, ~cat] if (~cat).any() else None,
    )
    result = {}
    for name, (cc, nn) in out.items():
        labels = np.empty(cc.shape, dtype=object)
        for k, j in enumerate(np.flatnonzero(cat)):
            labels[:, k] = levels[j][cc[:, k].astype(int)]
        result[name] = _score_mixed(np.column_stack([labels]), nn, truth, hidden, cat) + (
            (t_it,) if name.startswith("Iterative") else (0.0,)
        )
    return result


def mixed_section(halves, lines):
    for half, names in halves.items():
        scores = {}
        used = []
        for name in names:
            X, _, _ = load_uci(name)
            frame, cat = mixed_frame(X)
            if not cat.any():
                continue
            used.append(name)
            truth = frame.to_numpy(dtype=object)
            hidden = (
                np.random.RandomState(seed_of(name, "mixed", MIXED_RATE)).rand(*X.shape)
                < MIXED_RATE
            )
            frame_m = frame.copy()
            for j, col in enumerate(frame.columns):
                frame_m.loc[hidden[:, j], col] = None if cat[j] else np.nan
            key = dict(peer="mixed peers", dataset=name, section="mixed", rate=MIXED_RATE)
            key["settings"] = f"MAX_LEVELS={MAX_LEVELS}; most_frequent, IterativeImputer ordinal"
            args = (frame_m, truth, hidden, cat)
            peers = cached(key, lambda args=args: _mixed_peers(*args))
            for m, v in peers.items():
                scores.setdefault(m, []).append(v)
            t0 = time.perf_counter()
            imp = HopfieldImputer(random_state=0).set_output(transform="pandas")
            out = imp.fit_transform(frame_m)
            t = time.perf_counter() - t0
            filled = out.to_numpy(dtype=object)
            num = filled[:, ~cat].astype(float) if (~cat).any() else None
            scores.setdefault("HopfieldImputer (attention-weighted vote)", []).append(
                _score_mixed(filled[:, cat], num, truth, hidden, cat) + (t,)
            )
        if not used:
            continue
        hop = np.array([s[0] for s in scores["HopfieldImputer (attention-weighted vote)"]])
        lines += [
            "",
            f"### Mixed column types, {half} half: {len(used)} tables with categorical "
            f"columns (at most {MAX_LEVELS} distinct values), {int(MIXED_RATE * 100)}% MCAR",
            "",
            "| imputer | accuracy on removed categorical entries | tables where Hopfield is "
            "more accurate | RMSE on removed numeric entries | seconds |",
            "|---|---|---|---|---|",
        ]
        for m, v in scores.items():
            acc = np.array([s[0] for s in v])
            num = [s[1] for s in v if s[1] is not None]
            wins = "—" if m.startswith("Hopfield") else f"{int((hop > acc).sum())}/{len(acc)}"
            lines.append(
                f"| {m} | {acc.mean():.4f} | {wins} | "
                f"{np.mean(num):.4f} ({len(num)} tables) | {sum(s[2] for s in v):.1f} |"
            )
        print("\n".join(lines[-(len(scores) + 4) :]), flush=True)


COVERAGE_RATE = 0.3
N_DRAWS = 20


LEVELS = (0.5, 0.8, 0.9)


def pit_coverage(draws, truth, level):
    """Share of ``truth`` whose rank among its ``draws`` falls in the central ``level`` band.

    The randomised probability integral transform of an ensemble: with ``b``
    draws below the truth and ``e`` equal to it (within float32 rounding, as
    the draws of a stored value are), the truth's PIT is uniform on
    ``[b, b + e + 1] / (n + 1)``; the expected share of that interval inside
    ``[(1 - level) / 2, (1 + level) / 2]`` is averaged. Exactly ``level`` in
    expectation for draws exchangeable with the truth, for any number of
    draws (the central quantile range of 20 draws covers such a truth only
    45%, 72% and 81% of the time at 50, 80 and 90%).
    """
    n = draws.shape[0]
    tie = np.abs(draws - truth) <= 1e-5 * (1.0 + np.abs(truth))
    below = ((draws < truth) & ~tie).sum(0)
    a, b = below / (n + 1), (below + tie.sum(0) + 1) / (n + 1)
    lo, hi = (1 - level) / 2, (1 + level) / 2
    return float((np.clip(np.minimum(b, hi) - np.maximum(a, lo), 0, None) / (b - a)).mean())


def coverage_section(halves, lines):
    lines += [
        "",
        f"### Multiple imputation: {N_DRAWS} draws (`sample_posterior=True`, seeds "
        f"0..{N_DRAWS - 1}), {int(COVERAGE_RATE * 100)}% MCAR",
        "",
        "Share of the removed values whose rank among their draws falls in the central "
        "band of the level (the randomised probability integral transform, ties within "
        "float32 rounding split evenly): a draw exchangeable with the truth scores the "
        "nominal level for any number of draws. One fit per table, then one seeded "
        "transform per draw; mean over tables.",
        "",
        "| half | tables | nominal 50% | nominal 80% | nominal 90% | RMSE of the draws' mean | "
        "RMSE of one draw | RMSE of the mean fill |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for half, names in halves.items():
        cover = {v: [] for v in LEVELS}
        e_mean, e_one, e_fill = [], [], []
        for name in names:
            X, _, _ = load_uci(name)
            Xm, hidden = remove(X, COVERAGE_RATE, "mcar", seed_of(name, "mcar", COVERAGE_RATE))
            imp = HopfieldImputer(random_state=0, sample_posterior=True).fit(Xm)
            draws = np.stack(
                [imp.set_params(random_state=s).transform(Xm)[hidden] for s in range(N_DRAWS)]
            )
            truth = X[hidden]
            for level in cover:
                cover[level].append(pit_coverage(draws, truth, level))
            e_mean.append(np.sqrt(np.mean((draws.mean(0) - truth) ** 2)))
            e_one.append(np.sqrt(np.mean((draws[0] - truth) ** 2)))
            fill = imp.set_params(sample_posterior=False, random_state=0).transform(Xm)
            e_fill.append(np.sqrt(np.mean((fill[hidden] - truth) ** 2)))
        lines.append(
            f"| {half} | {len(names)} | "
            + " | ".join(f"{np.mean(cover[v]):.3f}" for v in cover)
            + f" | {np.mean(e_mean):.4f} | {np.mean(e_one):.4f} | {np.mean(e_fill):.4f} |"
        )
        print(lines[-1], flush=True)


FRESH = """
import time
t0 = time.perf_counter()
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.impute import KNNImputer
from skhop import HopfieldImputer
t1 = time.perf_counter()
X = load_diabetes().data
X[np.random.RandomState(0).rand(*X.shape) < 0.1] = np.nan
t2 = time.perf_counter()
HopfieldImputer(random_state=0).fit(X)
t3 = time.perf_counter()
HopfieldImputer(random_state=0).fit(X)
t4 = time.perf_counter()
KNNImputer().fit(X).transform(X)
t5 = time.perf_counter()
import sys
print(t1 - t0, t3 - t2, t4 - t3, t5 - t4, "torch._dynamo" in sys.modules)
"""


def fresh_section(lines, repeats=3):
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", FRESH], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append([float(v) for v in out[:4]] + [out[4] == "True"])
    med = np.median(np.array([r[:4] for r in runs]), axis=0)
    load = os.getloadavg()[0]
    lines += [
        "",
        f"### A small fit in a fresh process (diabetes, 442 x 10, 10% removed; median of "
        f"{repeats} processes)",
        "",
        f"Machine load while measured: 1-minute load average {load:.1f} on "
        f"{os.cpu_count()} cores (other work shares them; the times grow with it).",
        "",
        "| import (numpy, sklearn, skhop) | first HopfieldImputer fit | second fit | "
        "KNNImputer fit+transform | torch._dynamo imported |",
        "|---|---|---|---|---|",
        f"| {med[0]:.2f} s | {med[1]:.3f} s | {med[2]:.3f} s | {med[3]:.3f} s | "
        f"{'yes' if any(r[4] for r in runs) else 'no'} |",
    ]
    print("\n".join(lines[-5:]), flush=True)
