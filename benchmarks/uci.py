"""HopfieldClassifier against sklearn's classifiers and the strong tabular peers on 50 UCI sets.

Protocol: the 4 train/test splits of each dataset's ``conxuntos_kfold.dat``,
features as given (already standardised), every model with its defaults,
one thread each (torch and every BLAS/OpenMP pool). The 50 datasets are
split once into a *tune* and a *confirm* half by the seeded draw of
``benchmarks/_split.py``: defaults are chosen on *tune* only, *confirm* is
run to report. Per half: per-dataset accuracy (mean over the 4 splits),
mean accuracy, mean rank (1 = best, ties averaged), total fit+predict wall
time per model and its ratio to MLPClassifier's.

Models: HopfieldClassifier, the sklearn six (LogisticRegression, SVC,
KNeighbors, RandomForest, HistGradientBoosting, MLPClassifier) and, when
installed (``pip install skhop[bench]``), CatBoost, LightGBM, XGBoost
(defaults, one thread) and pytabkit's RealMLP-TD (its tuned defaults, CPU,
one thread). RealMLP runs in a child process with a per-dataset time budget
(``--realmlp-budget`` seconds for the 4 splits); a dataset it does not
finish in time is marked *cut*. ``--cache-only`` runs no peer and marks a
peer without a cached result as cut too. A half with cut sets gets two
summaries: the models complete on every set, and every model on the sets
all of them finished (the table names the cut sets).

Every model but HopfieldClassifier is cached per dataset in
``benchmarks/results/.cache/`` (git-ignored), keyed by the model's package
version and settings, so a rerun refits only HopfieldClassifier; cached
times are those of the run that measured them. MLPClassifier, the time
reference, is refitted beside HopfieldClassifier on each dataset in every
run that fits both (unless ``--cache-only``), so the *time vs MLP* ratio of
HopfieldClassifier compares two models timed in the same run.

    python benchmarks/uci.py --half tune                  # tune half, all models
    python benchmarks/uci.py --half confirm               # confirm half
    python benchmarks/uci.py --models HopfieldClassifier SVC --datasets wine zoo
    python benchmarks/uci.py --half tune --hopfield '{"n_heads": 2}' --no-write
    python benchmarks/uci.py --half tune --cache-only --seeds 0 1 2 3 --no-write

``--seeds`` fits HopfieldClassifier once per seed: its accuracy on a dataset
is the mean over seeds and splits, its time the mean per seed, and the
summary adds its mean accuracy and mean rank under each seed (a single
seed's figures move by a few tenths of a point: decide on several).

A run of every model on a half (HopfieldClassifier with its defaults)
rewrites that half's section of ``benchmarks/results/uci.md``.
"""

import argparse
import json
import multiprocessing as mp
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _split import uci_halves  # noqa: E402
from _uci import dataset_names, load_uci  # noqa: E402

from skhop import HopfieldClassifier  # noqa: E402

RESULTS = HERE / "results" / "uci.md"
CACHE = HERE / "results" / ".cache"
HOPFIELD = "HopfieldClassifier"
REALMLP = "RealMLP-TD"
TIME_REFERENCE = "MLPClassifier"


class _Encoded:
    """Fits ``model`` on labels encoded as 0..K-1 (XGBoost needs them so)."""

    def __init__(self, model):
        self.model = model

    def fit(self, X, y):
        self.enc = LabelEncoder().fit(y)
        self.model.fit(X, self.enc.transform(y))
        return self

    def predict(self, X):
        return self.enc.inverse_transform(np.asarray(self.model.predict(X)).ravel().astype(int))


def _catboost():
    from catboost import CatBoostClassifier

    return CatBoostClassifier(thread_count=1, random_seed=0, verbose=0, allow_writing_files=False)


def _lightgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_jobs=1, random_state=0, verbose=-1)


def _xgboost():
    from xgboost import XGBClassifier

    return _Encoded(XGBClassifier(n_jobs=1, random_state=0))


def _realmlp():
    from pytabkit import RealMLP_TD_Classifier

    return RealMLP_TD_Classifier(device="cpu", n_threads=1, random_state=0, verbosity=0)


# name -> (factory, package whose version keys the cache, settings string)
PEERS = {
    "LogisticRegression": (LogisticRegression, "scikit-learn", "defaults"),
    "SVC": (lambda: SVC(random_state=0), "scikit-learn", "random_state=0"),
    "KNeighbors": (KNeighborsClassifier, "scikit-learn", "defaults"),
    "RandomForest": (
        lambda: RandomForestClassifier(random_state=0),
        "scikit-learn",
        "random_state=0",
    ),
    "HistGradientBoosting": (
        lambda: HistGradientBoostingClassifier(random_state=0),
        "scikit-learn",
        "random_state=0",
    ),
    "MLPClassifier": (lambda: MLPClassifier(random_state=0), "scikit-learn", "random_state=0"),
    "CatBoost": (_catboost, "catboost", "thread_count=1 random_seed=0"),
    "LightGBM": (_lightgbm, "lightgbm", "n_jobs=1 random_state=0"),
    "XGBoost": (_xgboost, "xgboost", "n_jobs=1 random_state=0"),
    REALMLP: (_realmlp, "pytabkit", "device=cpu n_threads=1 random_state=0"),
}
SKLEARN_SIX = list(PEERS)[:6]
STRONG = list(PEERS)[6:]
MODELS = [HOPFIELD, *PEERS]


def available(name):
    if name in (HOPFIELD, *SKLEARN_SIX):
        return True
    try:
        metadata.version(PEERS[name][1])
        return True
    except metadata.PackageNotFoundError:
        return False


def cache_key(name):
    _, package, settings = PEERS[name]
    return f"{package}=={metadata.version(package)} {settings}"


def _cache_file(name, dataset):
    return CACHE / "uci" / name / f"{dataset}.json"


def cache_get(name, dataset):
    """``[accuracy, seconds]`` of a peer on a dataset for its current version and settings."""
    path = _cache_file(name, dataset)
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(cache_key(name))


def cache_put(name, dataset, result):
    """Store a peer's result; one file per model and dataset, so parallel runs do not clash."""
    path = _cache_file(name, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[cache_key(name)] = result
    path.write_text(json.dumps(stored))


def make_model(name, hopfield_params, seed=0):
    if name == HOPFIELD:
        return HopfieldClassifier(**{"random_state": seed, **hopfield_params})
    return PEERS[name][0]()


def evaluate(name, hopfield_params, X, y, folds, report=None, seed=0, warned=None):
    """Mean test accuracy over the splits, and the total fit+predict seconds.

    Only the peers' warnings are silenced: HopfieldClassifier's are shown,
    and each of its fits that warned is counted in ``warned`` (a list of one
    count per fit).
    """
    torch.set_num_threads(1)
    accs, seconds = [], 0.0
    with threadpool_limits(1):
        for train_idx, test_idx in folds:
            model = make_model(name, hopfield_params, seed)
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("ignore" if name != HOPFIELD else "always")
                model.fit(X[train_idx], y[train_idx])
                pred = model.predict(X[test_idx])
            seconds += time.perf_counter() - t0
            for w in caught:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            if warned is not None:
                warned.append(len(caught))
            accs.append(float(np.mean(np.asarray(pred).ravel() == y[test_idx])))
    out = (float(np.mean(accs)), seconds)
    if report is not None:
        report.put(out)
    return out


def _child(name, dataset, queue):
    X, y, folds = load_uci(dataset)
    evaluate(name, {}, X, y, folds, report=queue)


def evaluate_budgeted(name, dataset, budget):
    """``evaluate`` in a child process, killed after ``budget`` seconds (then ``None``)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, dataset, queue), daemon=True)
    proc.start()
    try:
        return queue.get(timeout=budget)
    except Exception:
        return None
    finally:
        proc.kill()
        proc.join()


def summary(names, acc, secs, model_names):
    """Rows of the summary table over ``names`` for ``model_names``, best mean rank first."""
    A = np.array([[acc[m][d] for m in model_names] for d in names])  # (datasets, models)
    ranks = np.array([rankdata(-row) for row in A])
    mean_acc, mean_rank = A.mean(axis=0), ranks.mean(axis=0)
    total = np.array([sum(secs[m].get(d, 0.0) for d in names) for m in model_names])
    ref = total[model_names.index(TIME_REFERENCE)] if TIME_REFERENCE in model_names else None
    lines = [
        "| model | mean accuracy | mean rank | wins | total seconds |"
        + (" time vs MLP |" if ref else ""),
        "|---|---|---|---|---|" + ("---|" if ref else ""),
    ]
    for j in np.argsort(mean_rank, kind="stable"):
        wins = int(np.sum(ranks[:, j] == ranks.min(axis=1)))
        name = f"**{model_names[j]}**" if model_names[j] == HOPFIELD else model_names[j]
        row = f"| {name} | {mean_acc[j]:.4f} | {mean_rank[j]:.2f} | {wins} | {total[j]:.1f} |"
        if ref:
            row += f" {total[j] / ref:.2f} |"
        lines.append(row)
    return lines


def warning_line(names, fits):
    """How many of HopfieldClassifier's fits on ``names`` warned, and on which datasets."""
    counts = [fits.get(d, []) for d in names]
    total = sum(len(c) for c in counts)
    warned = {d: sum(n > 0 for n in c) for d, c in zip(names, counts, strict=True) if any(c)}
    where = ", ".join(f"{d} ({k})" for d, k in warned.items())
    return f"HopfieldClassifier fits that warned: {sum(warned.values())} of {total}" + (
        f" ({where})." if warned else "."
    )


def table(names, acc, secs, cut):
    """Markdown summary and per-dataset tables of one half.

    ``cut`` maps a model to the datasets it has no result on (over its time
    budget, or not run for lack of time): the first summary ranks the models
    complete on every dataset, the second every model on the datasets all
    of them finished.
    """
    model_names = list(acc)
    lines = [
        "Accuracy on the test splits (mean of 4 per dataset); rank 1 is best (ties "
        "averaged); wins count ties; seconds are fit + predict over all splits.",
        "",
    ]
    missing = {m: sorted(set(ds) & set(names)) for m, ds in cut.items() if set(ds) & set(names)}
    if missing:
        # a model with results on fewer than half the sets is shown per dataset only
        sparse = [m for m, ds in missing.items() if len(ds) > len(names) / 2]
        ranked = [m for m in model_names if m not in sparse]
        gaps = set().union(set(), *(set(ds) for m, ds in missing.items() if m not in sparse))
        full = [d for d in names if d not in gaps]
        complete = [m for m in model_names if m not in missing]
        for m, ds in missing.items():
            lines.append(
                f"{m} has no result on {len(ds)} of {len(names)} sets (cut by its time "
                f"budget or not run for lack of time): {', '.join(ds)}."
            )
        lines += [
            "",
            f"All {len(names)} datasets, the {len(complete)} models with a result on each:",
            "",
            *summary(names, acc, secs, complete),
        ]
        if full and len(ranked) > len(complete):
            lines += [
                "",
                f"The {len(full)} datasets {', '.join(m for m in ranked if m in missing)} "
                f"finished, {len(ranked)} models (seconds over these sets):",
                "",
                *summary(full, acc, secs, ranked),
            ]
        if sparse:
            lines += [
                "",
                f"{', '.join(sparse)}: too few results to rank (fewer than half the sets); "
                "see the per-dataset table.",
            ]
    else:
        lines += [
            f"{len(names)} datasets, {len(model_names)} models:",
            "",
            *summary(names, acc, secs, model_names),
        ]
    short = [
        m.replace("Classifier", "")
        .replace("HistGradientBoosting", "HGB")
        .replace("LogisticRegression", "LogReg")
        .replace("RandomForest", "RF")
        .replace("KNeighbors", "KNN")
        for m in model_names
    ]
    lines += ["", "| dataset | " + " | ".join(short) + " |", "|---|" + "---|" * len(model_names)]
    for d in names:
        row = [acc[m].get(d) for m in model_names]
        best = max(a for a in row if a is not None)
        cells = ["cut" if a is None else (f"**{a:.3f}**" if a == best else f"{a:.3f}") for a in row]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_lines(names, acc, per_seed, seeds, cut):
    """HopfieldClassifier's mean accuracy and mean rank under each seed, peers as they are."""
    others = [m for m in acc if m != HOPFIELD and not set(cut.get(m, ())) & set(names)]
    lines = [f"{HOPFIELD} under each seed, ranked with the {len(others)} other models:", ""]
    accs, ranks = [], []
    for k, s in enumerate(seeds):
        A = np.array([[per_seed[d][k]] + [acc[m][d] for m in others] for d in names])
        accs.append(A[:, 0].mean())
        ranks.append(np.mean([rankdata(-row)[0] for row in A]))
        lines.append(f"- random_state={s}: mean accuracy {accs[-1]:.4f}, mean rank {ranks[-1]:.2f}")
    lines.append(
        f"- mean over the seeds: mean accuracy {np.mean(accs):.4f}, mean rank {np.mean(ranks):.2f}"
    )
    return lines


def write_section(half, text):
    """Replace (or add) the section of ``half`` in the results file, keeping the other."""
    head = (
        "# HopfieldClassifier on 50 UCI datasets\n\n"
        "Written by `python benchmarks/uci.py --half tune` and `--half confirm` "
        "(one thread per model; peers' figures cached per dataset by version and "
        "settings). The halves are the seeded draw of `benchmarks/_split.py` "
        "(`uci_halves()`); defaults are chosen on *tune* only.\n"
    )
    sections = {}
    if RESULTS.exists():
        parts = RESULTS.read_text().split("\n## ")
        for part in parts[1:]:
            title, _, body = part.partition("\n")
            sections[title.split()[0]] = part
    sections[half] = f"{half} half\n\n{text}\n"
    body = "".join("\n## " + sections[h] for h in ("tune", "confirm") if h in sections)
    RESULTS.write_text(head + body)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", help="subset of dataset names")
    p.add_argument("--half", choices=("tune", "confirm", "all"), default="all")
    p.add_argument("--models", nargs="*", choices=MODELS, help="subset of models")
    p.add_argument("--hopfield", default="{}", help="JSON dict of HopfieldClassifier parameters")
    p.add_argument("--refit", action="store_true", help="ignore the peers' cache")
    p.add_argument(
        "--cache-only",
        action="store_true",
        help="run no peer: a peer without a cached result on a dataset counts as cut there",
    )
    p.add_argument(
        "--realmlp-budget",
        type=float,
        default=120.0,
        help="seconds RealMLP may take for the 4 splits of one dataset",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="random_state values of HopfieldClassifier, each fitted (default: 0)",
    )
    p.add_argument("--json", help="also write the raw per-dataset results to this file")
    p.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    split = uci_halves()
    halves = ("tune", "confirm") if args.half == "all" else (args.half,)
    names = args.datasets or sorted(sum((split[h] for h in halves), []))
    unknown = set(names) - set(dataset_names())
    if unknown:
        p.error(f"unknown datasets: {sorted(unknown)}")
    chosen = [m for m in (args.models or MODELS) if available(m)]
    missing = sorted(set(args.models or MODELS) - set(chosen))
    if missing:
        print(f"not installed, left out: {', '.join(missing)}")
    hopfield_params = json.loads(args.hopfield)

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")

    acc = {m: {} for m in chosen}
    secs = {m: {} for m in chosen}
    cut = {}
    per_seed = {}  # dataset -> HopfieldClassifier's accuracy under each seed
    fits = {}  # dataset -> warnings of each HopfieldClassifier fit
    timed_together = HOPFIELD in chosen and TIME_REFERENCE in chosen and not args.cache_only
    # warm up torch once so the first dataset does not pay for its start-up
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HopfieldClassifier(max_iter=2, random_state=0).fit(np.eye(4), [0, 1, 0, 1])
    for d in names:
        X, y, folds = load_uci(d)
        cells = []
        for m in chosen:
            refit = args.refit or m == HOPFIELD or (m == TIME_REFERENCE and timed_together)
            cached = None if refit else cache_get(m, d)
            if cached is not None:
                res = cached
            elif args.cache_only and m != HOPFIELD:
                res = [None, 0.0]
            elif m == REALMLP:
                res = evaluate_budgeted(m, d, args.realmlp_budget)
                res = list(res) if res else [None, args.realmlp_budget]
            elif m == HOPFIELD:
                runs = [
                    evaluate(m, hopfield_params, X, y, folds, seed=s, warned=fits.setdefault(d, []))
                    for s in args.seeds
                ]
                per_seed[d] = [r[0] for r in runs]
                res = [float(np.mean([r[0] for r in runs])), float(np.mean([r[1] for r in runs]))]
            else:
                res = list(evaluate(m, hopfield_params, X, y, folds))
            if m != HOPFIELD and cached is None and not args.cache_only:
                cache_put(m, d, res)
            if res[0] is None:
                cut.setdefault(m, set()).add(d)
            else:
                acc[m][d] = res[0]
            secs[m][d] = res[1]
            cells.append(f"{m[:6]} {'cut' if res[0] is None else f'{res[0]:.3f}'} ({res[1]:.1f}s)")
        print(f"{d:32s} " + "  ".join(cells), flush=True)

    full_models = not args.models and args.hopfield == "{}" and args.seeds == [0] and not missing
    groups = {"chosen datasets": names} if args.datasets else {h: split[h] for h in halves}
    for h, sub in groups.items():
        out = table(sub, acc, secs, cut)
        if HOPFIELD in acc:
            out += "\n\n" + warning_line(sub, fits)
        print(f"\n## {h}\n\n{out}")
        if len(args.seeds) > 1 and HOPFIELD in acc:
            print("\n" + "\n".join(seed_lines(sub, acc, per_seed, args.seeds, cut)))
        if full_models and not args.datasets and not args.no_write:
            write_section(h, out)
            print(f"\nwrote the {h} section of {RESULTS}")
    if args.json:
        cut_lists = {m: sorted(ds) for m, ds in cut.items()}
        Path(args.json).write_text(json.dumps({"acc": acc, "secs": secs, "cut": cut_lists}))


if __name__ == "__main__":
    main()
