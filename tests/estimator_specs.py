"""The one registry of public estimators for the cross-cutting tests.

Each spec builds a small, quick estimator, the data to fit it on, and names
the methods whose outputs must survive refits, pickles and processes. It also
lists the configurations sklearn's estimator checks run on (each once, in
``test_common.py``) and the checks each is expected to fail, with the reason.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_digits, load_iris


@dataclass
class Spec:
    name: str
    make: object  # () -> unfitted estimator
    data: object  # () -> (fit args tuple, query for the output methods)
    outputs: tuple  # methods called on the query, compared between copies
    bags: bool = False  # X is a list of 2-D bags
    supervised: bool = True
    nan_in_query: bool = False  # NaN allowed at transform time
    nan_in_fit: bool = False
    # extra configurations sklearn's checks also run on (the spec's own one always runs)
    check_variants: object = None  # () -> tuple of estimators
    # (estimator) -> {check name: reason it cannot pass}
    expected_failures: object = field(default=lambda estimator: {})


def _iris():
    X, y = load_iris(return_X_y=True)
    return (X, y), X


def _digits_rows():
    X = load_digits().data[:200] / 16.0
    rng = np.random.default_rng(0)
    Q = X[:40].copy()
    Q[rng.random(Q.shape) < 0.3] = np.nan
    return (X,), Q


def _digits_with_holes():
    X = load_digits().data[:200] / 16.0
    rng = np.random.default_rng(0)
    X = X.copy()
    X[rng.random(X.shape) < 0.1] = np.nan
    return (X,), X


def _bags():
    from skhop.datasets import make_mil_bags

    bags, y = make_mil_bags(n_bags=40, n_features=6, random_state=0)[:2]
    return (bags, y), bags


def _classifier():
    from skhop import HopfieldClassifier

    return HopfieldClassifier(max_iter=20, random_state=0)


def _mil():
    from skhop import HopfieldMILClassifier

    return HopfieldMILClassifier(max_iter=10, random_state=0)


def _retriever():
    from skhop import KernelHopfieldRetriever

    return KernelHopfieldRetriever(max_iter=20, random_state=0)


def _imputer():
    from skhop import HopfieldImputer

    return HopfieldImputer(random_state=0)


NAN_MARKS_UNOBSERVED = (
    "allow_nan is tagged because NaN marks unobserved entries of a query; stored "
    "patterns must be complete, and this check fits on data with NaN"
)
NO_STAGE_I = (
    "without Stage I (separation_loss=None, the default) no iteration runs, so n_iter_ is 0"
)


def _retriever_failures(estimator):
    out = {
        "check_estimators_pickle": NAN_MARKS_UNOBSERVED,
        "check_estimators_pickle(readonly_memmap=True)": NAN_MARKS_UNOBSERVED,
    }
    if estimator.separation_loss is None:
        out["check_transformer_n_iter"] = NO_STAGE_I
    return out


def _retriever_variants():
    from skhop import KernelHopfieldRetriever

    return (
        KernelHopfieldRetriever(
            separation_loss="lse", max_iter=5, learning_rate=0.05, random_state=0
        ),
        KernelHopfieldRetriever(similarity="dot", separation="sparsemax", feature_dim=2),
    )


def _imputer_variants():
    from skhop import HopfieldImputer

    return (HopfieldImputer(beta=1.0, separation="sparsemax"),)


SPECS = [
    Spec(
        "HopfieldClassifier",
        _classifier,
        _iris,
        ("predict_proba", "predict", "decision_function"),
    ),
    Spec("HopfieldMILClassifier", _mil, _bags, ("predict_proba", "instance_attention"), bags=True),
    Spec(
        "KernelHopfieldRetriever",
        _retriever,
        _digits_rows,
        ("transform",),
        supervised=False,
        nan_in_query=True,
        check_variants=_retriever_variants,
        expected_failures=_retriever_failures,
    ),
    Spec(
        "HopfieldImputer",
        _imputer,
        _digits_with_holes,
        ("transform",),
        supervised=False,
        nan_in_query=True,
        nan_in_fit=True,
        check_variants=_imputer_variants,
    ),
]


def check_instances():
    """Every configuration sklearn's checks run on, with its spec: the spec's own first."""
    out = []
    for spec in SPECS:
        variants = spec.check_variants() if spec.check_variants else ()
        out += [(spec, est) for est in (spec.make(), *variants)]
    return out


def fitted(spec):
    args, query = spec.data()
    return spec.make().fit(*args), query


def outputs(estimator, spec, query):
    """The spec's outputs as a list of numpy arrays (bags' attention concatenated)."""
    out = []
    for method in spec.outputs:
        result = getattr(estimator, method)(query)
        if isinstance(result, list):
            result = np.concatenate([np.asarray(r).ravel() for r in result])
        out.append(np.asarray(result))
    return out
