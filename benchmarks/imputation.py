"""Imputation benchmark: HopfieldImputer against scikit-learn's imputers and MissForest.

Sections (``--sections``, all by default):

``uci``
    The 50 vendored UCI datasets (standardised per feature), split once into
    a *tune* and a *confirm* half (``benchmarks/_split.py``). Entries are
    removed completely at random (MCAR) at 10%, 30% and 50%, and in a
    column-block pattern (whole groups of columns missing together, 30%).
    Each imputer fills the whole table (``fit_transform``, no labels); RMSE
    on the removed entries and fit+transform seconds. Peers:
    SimpleImputer(mean), KNNImputer (``n_neighbors=5`` and the best of
    {1, 3, 5, 10, 20, 50} chosen on the removed entries themselves, an
    oracle no user has, timed as the whole grid), IterativeImputer with
    BayesianRidge, IterativeImputer with ExtraTrees (the MissForest recipe
    of scikit-learn's documentation: 10 trees, 10 rounds, with MissForest's
    own ``sqrt(d)`` features per split so it finishes every table) and the
    ``missforest`` package (its LightGBM learners with 10 plain trees). Peer
    results are cached per dataset (see ``_impute_peers.py``);
    HopfieldImputer is run fresh.
``pipeline``
    ``Pipeline(imputer, LogisticRegression)`` on the tables with 30% MCAR
    removed, each dataset's own 4 folds: the imputer is fitted on the
    training fold only; mean test accuracy.
``mixed``
    Mixed column types: in each UCI table, columns with at most 8 distinct
    values become string categories; 30% of the entries (numeric and
    categorical) are removed; accuracy on the removed categorical entries
    against the most-frequent fill and IterativeImputer on an ordinal
    encoding (rounded to the nearest code), RMSE on the numeric ones.
``coverage``
    Multiple imputation (``sample_posterior=True``): 20 seeded draws per
    table (30% MCAR); share of the removed values whose rank among their
    draws lies in the central 50, 80 and 90% band (randomised PIT).
``fresh``
    A small fit (442 x 10, diabetes with 10% removed) in a fresh process:
    import time and first fit time.

Run: ``python benchmarks/imputation.py [--half tune|confirm|all] [--datasets a,b]
[--rates 0.1,0.3] [--sections uci,pipeline] [--peers-only]``. ``--peers-only``
fills the peer cache and prints nothing else (run it once, niced, in the
background). Writes ``benchmarks/results/imputation.md`` for a full run
(all datasets and sections); partial runs print only.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _impute_peers import (  # noqa: E402
    PEER_NAMES,
    PEERS,
    SLOW,
    peer_result,
    remove,
    rmse,
    seed_of,
    timed,
)
from _split import uci_halves  # noqa: E402
from _uci import load_uci  # noqa: E402

from skhop import HopfieldImputer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "imputation.md"
SETTINGS = (("mcar", 0.1), ("mcar", 0.3), ("mcar", 0.5), ("block", 0.3))
HOP = "HopfieldImputer"
IT = "IterativeImputer(BayesianRidge)"


def hopfield(**kw):
    return HopfieldImputer(random_state=0, keep_empty_features=True, **kw)


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def uci_section(halves, settings, lines, peers_only, slow_cached_only=False):
    for pattern, rate in settings:
        for half, names in halves.items():
            res = {}
            for name in names:
                X, _, _ = load_uci(name)
                Xm, hidden = remove(X, rate, pattern, seed_of(name, pattern, rate))
                fresh_it = None
                for peer in PEER_NAMES:
                    compute = not (slow_cached_only and peer in SLOW)
                    args = (peer, name, pattern, rate, X, Xm, hidden)
                    if peer == IT and peer_result(*args, compute=False) is None:
                        fresh_it = peer_result(*args)  # computed here, in this process
                    r = peer_result(*args, compute=compute)
                    res.setdefault(peer, {})[name] = r
                    if peers_only:
                        print(f"{pattern} {rate} {name} {peer}: {r}", flush=True)
                if not peers_only:
                    # the time goal's reference, timed beside HopfieldImputer (again,
                    # unless it was computed just now)
                    if fresh_it is not None:
                        t_it = fresh_it["seconds"]
                    else:
                        _, t_it = timed(lambda Xm=Xm: PEERS[IT][1](Xm))
                    Xi, t = timed(lambda Xm=Xm: hopfield().fit_transform(Xm))
                    res.setdefault(HOP, {})[name] = {
                        "rmse": rmse(Xi, X, hidden),
                        "seconds": t,
                        "it_seconds": t_it,
                    }
            if peers_only:
                continue
            lines += uci_table(res, names, half, pattern, rate)
            print("\n".join(lines[-(len(res) + 7) :]), flush=True)


def uci_table(res, names, half, pattern, rate):
    hop = res[HOP]
    it = res["IterativeImputer(BayesianRidge)"]
    methods = [m for m in res if m != HOP] + [HOP]
    # ranks among the methods with a result on every dataset of the half
    full = [m for m in methods if all(res[m][n] and res[m][n]["rmse"] is not None for n in names)]
    R = np.array([[res[m][n]["rmse"] for n in names] for m in full])
    ranks = dict(zip(full, (np.argsort(np.argsort(R, 0), 0) + 1).mean(1), strict=True))
    rows = []
    for m in methods:
        ok = [n for n in names if res[m][n] and res[m][n]["rmse"] is not None]
        if not ok:
            rows.append([m, "not run", "", "", "", "", ""])
            continue
        e = np.array([res[m][n]["rmse"] for n in ok])
        h = np.array([hop[n]["rmse"] for n in ok])
        t = sum(res[m][n]["seconds"] for n in ok)
        t_it = sum(it[n]["seconds"] for n in ok)
        cover = "" if len(ok) == len(names) else f" ({len(ok)} of {len(names)} datasets)"
        rows.append(
            [
                m + cover,
                f"{e.mean():.4f}",
                f"{e.mean() / h.mean():.3f}",
                "—" if m == HOP else f"{int((h < e).sum())}/{len(ok)}",
                f"{ranks[m]:.2f}" if m in ranks else "—",
                f"{t:.1f}",
                f"{t / t_it:.2f}",
            ]
        )
    t_hop = sum(hop[n]["seconds"] for n in names)
    t_it = sum(hop[n]["it_seconds"] for n in names)
    what = "MCAR" if pattern == "mcar" else "column blocks"
    note = (
        f"Timed side by side in this run: HopfieldImputer {t_hop:.1f} s, {IT} {t_it:.1f} s "
        f"(ratio {t_hop / t_it:.2f}); the other seconds are the cached peers' own."
    )
    return (
        [
            "",
            f"### {half} half ({len(names)} datasets), {int(rate * 100)}% removed, {what}",
            "",
        ]
        + table(
            rows,
            [
                "imputer",
                "mean RMSE",
                "RMSE vs Hopfield",
                "datasets where Hopfield is lower",
                f"mean rank (of {len(full)})",
                "seconds",
                "time vs IterativeImputer(BayesianRidge)",
            ],
        )
        + ["", note]
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--half", default="all", choices=("tune", "confirm", "all"))
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--rates", default=None, help="MCAR rates, e.g. 0.1,0.3")
    ap.add_argument("--patterns", default="mcar,block")
    ap.add_argument("--sections", default="uci,pipeline,mixed,coverage,fresh")
    ap.add_argument("--peers-only", action="store_true")
    ap.add_argument("--skip-slow", action="store_true", help="leave out the forest peers")
    ap.add_argument(
        "--only-peers", default=None, help="with --peers-only: peers whose name has this"
    )
    ap.add_argument(
        "--slow-cached-only",
        action="store_true",
        help="report the forest peers only where their results are cached (never compute them)",
    )
    args = ap.parse_args()
    halves = uci_halves()
    if args.half != "all":
        halves = {args.half: halves[args.half]}
    if args.datasets:
        want = set(args.datasets.split(","))
        halves = {h: [n for n in v if n in want] for h, v in halves.items()}
        halves = {h: v for h, v in halves.items() if v}
    settings = [s for s in SETTINGS if s[0] in args.patterns.split(",")]
    if args.rates:
        rates = {float(r) for r in args.rates.split(",")}
        settings = [s for s in settings if s[1] in rates]
    if args.skip_slow:
        for name in SLOW:
            PEER_NAMES.remove(name)
    if args.only_peers:
        PEER_NAMES[:] = [name for name in PEER_NAMES if args.only_peers in name]
    sections = args.sections.split(",")
    full_run = (
        args.half == "all"
        and not args.datasets
        and not args.rates
        and not args.skip_slow
        and not args.only_peers
        and not args.peers_only
        and set(sections) >= {"uci", "pipeline", "mixed", "coverage", "fresh"}
    )
    torch.set_num_threads(1)
    lines = [
        "# Imputation: HopfieldImputer vs scikit-learn's imputers and MissForest",
        "",
        "Printed by `python benchmarks/imputation.py` (torch and BLAS on one thread; 2 "
        "shared, busy cores, so compare times only as ratios). Defaults were chosen on the "
        "tune half only; the confirm half is reported as held out. RMSE on the removed "
        "entries of standardised features; the oracle KNNImputer picks n_neighbors on the "
        "removed entries themselves and its time is the whole grid's. Peer results are "
        "cached per dataset (`benchmarks/results/.cache/`), so their times may come from "
        "an earlier process than HopfieldImputer's. The forest peers, within the "
        "machine's means: IterativeImputer with ExtraTreesRegressor(n_estimators=10, "
        "max_features='sqrt') and max_iter=10 (MissForest's sqrt(d) features per split), "
        "the missforest package with its LightGBM learners at n_estimators=10, no "
        "linear_tree. A peer "
        "shown on fewer datasets than the half (with `--slow-cached-only`) is compared "
        "with HopfieldImputer on those datasets only.",
    ]
    t0 = time.perf_counter()
    rest = []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        # the RMSE tables run last (so the cache of the slow peers is read as late as
        # possible) but are written first
        if "pipeline" in sections:
            from _impute_sections import pipeline_section

            pipeline_section(halves, rest, args.peers_only)
        if not args.peers_only:
            from _impute_sections import coverage_section, fresh_section, mixed_section

            if "fresh" in sections:
                fresh_section(rest)
            if "mixed" in sections:
                mixed_section(halves, rest)
            if "coverage" in sections:
                coverage_section(halves, rest)
        if "uci" in sections:
            uci_section(halves, settings, lines, args.peers_only, args.slow_cached_only)
    lines += rest
    lines += ["", f"Total run time {time.perf_counter() - t0:.0f} s."]
    if full_run:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(lines) + "\n")
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
