"""Multiple-instance benchmark data shipped with skhop, and a synthetic generator.

:func:`load_mil` reads the four benchmarks of the Hopfield paper's
multiple-instance experiments (Elephant, Fox, Tiger, UCSB breast cancer)
from compressed files inside the package, with no download.
:func:`make_mil_bags` draws bags with planted witness instances, so that a
model's attention can be checked against known instance labels.
"""

import lzma
from importlib import resources

import numpy as np
from sklearn.utils import Bunch, check_random_state

__all__ = ["load_mil", "make_mil_bags", "MIL_DATASETS"]

MIL_DATASETS = ("elephant", "fox", "tiger", "ucsb_breast_cancer")

_DESCR = {
    "elephant": "Corel image benchmark of Andrews et al. (2002): is there an elephant in the "
    "image? An image is a bag of segmented regions (instances), each described by "
    "230 colour, texture and shape features.",
    "fox": "Corel image benchmark of Andrews et al. (2002): is there a fox in the image? An "
    "image is a bag of segmented regions (instances), each described by 230 colour, "
    "texture and shape features.",
    "tiger": "Corel image benchmark of Andrews et al. (2002): is there a tiger in the image? "
    "An image is a bag of segmented regions (instances), each described by 230 "
    "colour, texture and shape features.",
    "ucsb_breast_cancer": "UCSB breast cancer tissue microarrays, MIL version of Kandemir, "
    "Zhang & Hamprecht (2014): is the tissue malignant? An image is a bag "
    "of patches (instances), each described by 708 features. Feature "
    "scales differ strongly; standardise before use.",
}


def _read_csv(name):
    """(features, bag_id, label, feature names) of one shipped CSV."""
    path = resources.files(__name__).joinpath("data", f"mil_{name}.csv.xz")
    with path.open("rb") as raw, lzma.open(raw, "rt") as f:
        header = f.readline().strip().split(",")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    return table[:, 3:], table[:, 0].astype(np.intp), table[:, 2].astype(np.intp), header[3:]


def load_mil(name, *, return_X_y=False):
    """Load a multiple-instance benchmark shipped with skhop.

    ==================  =============  =========  =======  ========
    name                bags (+/-)     instances  per bag  features
    ==================  =============  =========  =======  ========
    elephant            200 (100/100)  1391       2-13     230
    fox                 200 (100/100)  1320       2-13     230
    tiger               200 (100/100)  1220       1-13     230
    ucsb_breast_cancer  58 (26/32)     2002       21-40    708
    ==================  =============  =========  =======  ========

    The features are raw (not scaled); only bag labels are known.

    Parameters
    ----------
    name : {"elephant", "fox", "tiger", "ucsb_breast_cancer"}
        The data set.
    return_X_y : bool, default=False
        Return ``(bags, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With ``bags`` (list of ndarray of shape (n_instances_i,
        n_features), float64), ``target`` (ndarray of shape (n_bags,), 1 for
        a positive bag, 0 for a negative one), ``bag_ids`` (ndarray of shape
        (n_bags,)), ``feature_names`` (list of str) and ``DESCR`` (str).
    (bags, target) : tuple
        With ``return_X_y=True``.

    Examples
    --------
    >>> from skhop.datasets import load_mil
    >>> bags, y = load_mil("elephant", return_X_y=True)
    >>> len(bags), bags[0].shape[1], int(y.sum())
    (200, 230, 100)
    """
    if name not in MIL_DATASETS:
        raise ValueError(f"name must be one of {MIL_DATASETS}, got {name!r}.")
    X, bag_id, label, feature_names = _read_csv(name)
    ids, starts, counts = np.unique(bag_id, return_index=True, return_counts=True)
    order = np.argsort(bag_id, kind="stable")
    bags = np.split(X[order], np.cumsum(counts)[:-1])
    target = label[starts]
    if return_X_y:
        return bags, target
    descr = (
        f"{name} multiple-instance data set: {len(bags)} bags "
        f"({int(target.sum())} positive), {len(X)} instances, {X.shape[1]} features.\n\n"
        f"{_DESCR[name]}\n\nOrigin, format and licence notes: skhop/datasets/data/README.md."
    )
    return Bunch(bags=bags, target=target, bag_ids=ids, feature_names=feature_names, DESCR=descr)


def make_mil_bags(
    n_bags=100,
    n_features=10,
    *,
    min_instances=5,
    max_instances=15,
    witness_rate=0.2,
    positive_fraction=0.5,
    separation=2.0,
    random_state=None,
):
    """Draw bags of Gaussian instances with planted witnesses.

    Negative instances are standard normal. A positive bag contains at least
    one *witness*: an instance shifted by ``separation`` along a fixed
    random unit direction, so the bag is positive exactly when it holds a
    witness (the standard multiple-instance assumption). Negative bags hold
    no witness.

    Parameters
    ----------
    n_bags : int, default=100
    n_features : int, default=10
    min_instances, max_instances : int, default=5, 15
        Bag sizes are drawn uniformly from this closed range.
    witness_rate : float, default=0.2
        Expected share of witnesses in a positive bag (at least one).
    positive_fraction : float, default=0.5
        Share of positive bags.
    separation : float, default=2.0
        How far witnesses lie from the negative instances, in standard
        deviations.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    bags : list of ndarray of shape (n_instances_i, n_features)
    y : ndarray of shape (n_bags,)
        1 for a positive bag, 0 for a negative one.
    instance_labels : list of ndarray of shape (n_instances_i,)
        1 for a witness, 0 otherwise.

    Examples
    --------
    >>> from skhop.datasets import make_mil_bags
    >>> bags, y, inst = make_mil_bags(n_bags=6, n_features=3, random_state=0)
    >>> len(bags), bags[0].shape[1], all((w.sum() > 0) == t for w, t in zip(inst, y))
    (6, 3, True)
    """
    for arg, value, low in (
        ("n_bags", n_bags, 1),
        ("n_features", n_features, 1),
        ("min_instances", min_instances, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{arg} must be an int >= {low}, got {value!r}.")
    if not isinstance(max_instances, (int, np.integer)) or max_instances < min_instances:
        raise ValueError(
            f"max_instances must be an int >= min_instances ({min_instances}), "
            f"got {max_instances!r}."
        )
    for arg, value in (("witness_rate", witness_rate), ("positive_fraction", positive_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{arg} must be in [0, 1], got {value!r}.")
    rng = check_random_state(random_state)
    direction = rng.normal(size=n_features)
    direction /= np.linalg.norm(direction)
    y = (rng.permutation(n_bags) < round(positive_fraction * n_bags)).astype(np.intp)
    sizes = rng.randint(min_instances, max_instances + 1, size=n_bags)
    total = int(sizes.sum())
    bag_of = np.repeat(np.arange(n_bags), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    witness = (rng.random_sample(total) < witness_rate) & (y[bag_of] == 1)
    # every positive bag gets at least one witness, at a random position
    forced = starts + (rng.random_sample(n_bags) * sizes).astype(np.intp)
    witness[forced[y == 1]] = True
    X = rng.normal(size=(total, n_features))
    X[witness] += separation * direction
    bounds = np.cumsum(sizes)[:-1]
    return np.split(X, bounds), y, np.split(witness.astype(np.intp), bounds)
