"""Loader for the vendored UCI-121 small datasets (benchmarks/data/uci121)."""

import csv
import gzip
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent / "data" / "uci121"


def dataset_names():
    """Names of the vendored datasets, in alphabetical order."""
    with open(ROOT / "datasets.csv") as f:
        return [row["dataset"] for row in csv.DictReader(f)]


def load_uci(name):
    """Return ``X`` (n, d) float64, ``y`` (n,) int and the 4 ``(train, test)`` index pairs."""
    meta = {}
    for line in open(ROOT / name / f"{name}.txt"):
        key, _, value = line.partition("=")
        meta[key.strip()] = value.strip()
    with gzip.open(ROOT / name / f"{meta['fich1']}.gz", "rt") as f:
        f.readline()  # header
        rows = np.array([line.split("\t")[1:] for line in f if line.strip()], dtype=float)
    X, y = rows[:, :-1], rows[:, -1].astype(int)
    with gzip.open(ROOT / name / "conxuntos_kfold.dat.gz", "rt") as f:
        idx = [np.array(line.split(), dtype=int) for line in f if line.strip()]
    folds = [(idx[2 * i], idx[2 * i + 1]) for i in range(len(idx) // 2)]
    return X, y, folds
