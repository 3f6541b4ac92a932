"""Bad input, determinism, interruption and bounded memory, across all estimators.

Bad input of every kind must raise ``ValueError`` or ``TypeError`` with a
message that names the argument (never an ``AssertionError``, ``IndexError``
or a torch error), and no call may change the caller's arrays.
"""

import copy
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from estimator_specs import SPECS, fitted, outputs

FLAT = [s for s in SPECS if not s.bags]
BAGGED = [s for s in SPECS if s.bags]
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _table(rows=30, features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = np.arange(rows) % 2
    return X, y


def _with(X, value, frac=0.1, seed=1):
    X = X.astype(float).copy()
    X[np.random.default_rng(seed).random(X.shape) < frac] = value
    X[0, 0] = value
    return X


def _fit(spec, est, X, y=None, **kw):
    return est.fit(X, y, **kw) if spec.supervised else est.fit(X, **kw)


def _flat_cases(spec):
    X, y = _table()
    est = spec.make()
    params = est.get_params()
    cases = [
        ("inf in X", lambda e: _fit(spec, e, _with(X, np.inf), y), r"\bX\b.*infinity"),
        ("empty X", lambda e: _fit(spec, e, X[:0], y[:0]), r"X: .*0 sample"),
        ("zero features", lambda e: _fit(spec, e, X[:, :0], y), r"X: .*0 feature"),
        ("complex X", lambda e: _fit(spec, e, X + 1j, y), r"X: .*[Cc]omplex"),
        (
            "string X",
            lambda e: _fit(spec, e, np.full(X.shape, "a", dtype=object), y),
            r"X: .*string",
        ),
        ("sparse X", lambda e: _fit(spec, e, sp.csr_matrix(X), y), r"[Ss]parse .*\bX\b"),
        ("3-D X", lambda e: _fit(spec, e, X[:, :, None], y), r"X: .*dim 3"),
        ("unknown device", lambda e: _fit(spec, e.set_params(device="tpu"), X, y), "device"),
        ("bad n_threads", lambda e: _fit(spec, e.set_params(n_threads=0), X, y), "n_threads"),
        (
            "wrong width at predict",
            lambda e: getattr(_fit(spec, e, X, y), spec.outputs[0])(X[:, :3]),
            r"\bX\b.*features",
        ),
        (
            "inf at predict",
            lambda e: getattr(_fit(spec, e, X, y), spec.outputs[0])(_with(X, np.inf)),
            r"\bX\b.*infinity",
        ),
    ]
    if not spec.nan_in_fit:
        cases.append(("NaN in X", lambda e: _fit(spec, e, _with(X, np.nan), y), r"\bX\b.*NaN"))
    if not spec.nan_in_query:
        cases.append(
            (
                "NaN at predict",
                lambda e: getattr(_fit(spec, e, X, y), spec.outputs[0])(_with(X, np.nan)),
                r"\bX\b.*NaN",
            )
        )
    if "beta" in params:
        cases.append(("negative beta", lambda e: _fit(spec, e.set_params(beta=-1.0), X, y), "beta"))
    if "max_iter" in params and spec.supervised:
        cases.append(
            ("zero max_iter", lambda e: _fit(spec, e.set_params(max_iter=0), X, y), "max_iter")
        )
    if "similarity" in params:
        cases.append(
            (
                "unknown similarity",
                lambda e: _fit(spec, e.set_params(similarity="manhattan"), X, y),
                "similarity",
            )
        )
    if spec.supervised:
        ones = np.ones(len(X))
        cases += [
            ("X/y lengths differ", lambda e: e.fit(X, y[:-1]), "inconsistent numbers"),
            ("single class", lambda e: e.fit(X, np.zeros(len(X))), "class"),
            ("single sample", lambda e: e.fit(X[:1], y[:1]), "class|sample"),
            ("NaN in y", lambda e: e.fit(X, np.where(y > 0, np.nan, 0.0)), r"\by\b.*NaN"),
            (
                "sample_weight length",
                lambda e: e.fit(X, y, sample_weight=ones[:3]),
                "sample_weight",
            ),
            ("negative sample_weight", lambda e: e.fit(X, y, sample_weight=-ones), "sample_weight"),
            (
                "all-zero sample_weight",
                lambda e: e.fit(X, y, sample_weight=0 * ones),
                "[Ss]ample weights",
            ),
        ]
    return [pytest.param(spec, fn, match, id=f"{spec.name}-{name}") for name, fn, match in cases]


def _bag_cases(spec):
    from skhop.datasets import make_mil_bags

    bags, y = make_mil_bags(n_bags=20, n_features=4, random_state=0)[:2]

    def replace(i, bag):
        out = list(bags)
        out[i] = bag
        return out

    cases = [
        ("empty bag", lambda e: e.fit(replace(3, np.zeros((0, 4))), y), r"bag 3"),
        ("different widths", lambda e: e.fit(replace(2, np.zeros((3, 5))), y), r"bag 2"),
        ("1-D bag", lambda e: e.fit(replace(1, np.zeros(4)), y), r"bag 1"),
        ("NaN in a bag", lambda e: e.fit(replace(4, _with(bags[4], np.nan)), y), "NaN"),
        ("inf in a bag", lambda e: e.fit(replace(4, _with(bags[4], np.inf)), y), "infinity"),
        ("string bag", lambda e: e.fit(replace(0, np.full((2, 4), "a", dtype=object)), y), "bag 0"),
        ("complex bag", lambda e: e.fit(replace(0, bags[0] + 1j), y), "bag 0"),
        ("labels != bags", lambda e: e.fit(bags, y[:-1]), r"\by\b|labels|bags"),
        ("non-sequence X", lambda e: e.fit(42, y), r"\bX\b"),
        ("single class", lambda e: e.fit(bags, np.zeros(len(bags))), "class"),
        ("no bags", lambda e: e.fit([], []), r"\bX\b|bag"),
        ("sparse bag", lambda e: e.fit(replace(0, sp.csr_matrix(bags[0])), y), r"[Ss]parse|bag 0"),
        (
            "wrong width at predict",
            lambda e: e.fit(bags, y).predict([b[:, :3] for b in bags]),
            "features",
        ),
        ("unknown device", lambda e: e.set_params(device="tpu").fit(bags, y), "device"),
        (
            "negative sample_weight",
            lambda e: e.fit(bags, y, sample_weight=-np.ones(len(bags))),
            "sample_weight",
        ),
    ]
    return [pytest.param(spec, fn, match, id=f"{spec.name}-{name}") for name, fn, match in cases]


BAD = [case for spec in FLAT for case in _flat_cases(spec)]
BAD += [case for spec in BAGGED for case in _bag_cases(spec)]


@pytest.mark.parametrize("spec, call, match", BAD)
def test_bad_input_raises_a_clear_error(spec, call, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        call(spec.make())
    # raised on purpose by a check, never by torch arithmetic that tripped over the input
    assert _raised_by_a_check(info), f"not raised by a check: {info.traceback[-1]}"


def _raised_by_a_check(info):
    """True when the innermost frame is a ``raise`` statement in skhop's or sklearn's code.

    A ``ValueError`` or ``TypeError`` thrown from inside torch (or numpy) while
    it computes on bad input has a call, not a ``raise``, in its innermost
    Python frame, or a frame inside torch itself.
    """
    entry = info.traceback[-1]
    parts = Path(str(entry.path)).parts
    package = next((p for p in reversed(parts) if p in ("skhop", "sklearn", "torch")), None)
    if package not in ("skhop", "sklearn"):
        return False
    return str(entry.statement).lstrip().startswith("raise")


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_callers_arrays_are_not_mutated(spec):
    args, query = spec.data()
    before = copy.deepcopy((args, query))
    est = spec.make().fit(*args)
    outputs(est, spec, query)
    for a, b in zip(_leaves((args, query)), _leaves(before), strict=True):
        np.testing.assert_array_equal(a, b)


def _leaves(obj):
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _leaves(item)
    else:
        yield np.asarray(obj)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_refit_is_bit_identical_and_global_rng_untouched(spec):
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    a, query = fitted(spec)
    b, _ = fitted(spec)
    for x, y in zip(outputs(a, spec, query), outputs(b, spec, query), strict=True):
        np.testing.assert_array_equal(x, y)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert torch.equal(torch.get_rng_state(), torch_state)


def _digest(spec):
    est, query = fitted(spec)
    h = hashlib.sha256()
    for out in outputs(est, spec, query):
        h.update(np.ascontiguousarray(out).tobytes())
    return h.hexdigest()


@pytest.mark.heavy  # a second process fits every estimator
def test_predictions_are_identical_across_processes():
    here = {s.name: _digest(s) for s in SPECS}
    script = textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        warnings.simplefilter("ignore")
        import test_robustness as t
        for s in t.SPECS:
            print(s.name, t._digest(s))
    """)
    env = dict(os.environ, PYTHONHASHSEED="7")
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
        timeout=300,
    ).stdout
    there = dict(line.split() for line in out.strip().splitlines())
    assert there == here


class _Interrupt:
    """Replace ``Tensor.backward`` so the n-th call raises KeyboardInterrupt."""

    def __init__(self, monkeypatch, after):
        self.calls, self.after = 0, after
        original = torch.Tensor.backward

        def backward(tensor, *args, **kwargs):
            self.calls += 1
            if self.calls > self.after:
                raise KeyboardInterrupt
            return original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, "backward", backward)


TRAINED = [s for s in SPECS if "max_iter" in s.make().get_params() and s.supervised]


@pytest.mark.parametrize("spec", TRAINED, ids=[s.name for s in TRAINED])
def test_keyboard_interrupt_leaves_a_new_estimator_unfitted(spec, monkeypatch):
    from sklearn.exceptions import NotFittedError

    args, query = spec.data()
    est = spec.make()
    _Interrupt(monkeypatch, after=3)
    with pytest.raises(KeyboardInterrupt):
        est.fit(*args)
    assert not [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    with pytest.raises(NotFittedError):
        getattr(est, spec.outputs[0])(query)


@pytest.mark.parametrize("spec", TRAINED, ids=[s.name for s in TRAINED])
def test_keyboard_interrupt_leaves_a_fitted_estimator_as_it_was(spec, monkeypatch):
    args, query = spec.data()
    est = spec.make().fit(*args)
    before = outputs(est, spec, query)
    params = {"warm_start": True} if "warm_start" in est.get_params() else {}
    est.set_params(**params)
    _Interrupt(monkeypatch, after=3)
    with pytest.raises(KeyboardInterrupt):
        est.fit(*args)
    monkeypatch.undo()
    for x, y in zip(outputs(est, spec, query), before, strict=True):
        np.testing.assert_array_equal(x, y)


# -- bounded memory (slow) -------------------------------------------------------

_PEAK = textwrap.dedent("""
    import resource, sys, warnings
    import numpy as np, torch
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    {setup}
    base = rss_mb()
    {work}
    print(rss_mb() - base)
""")


def _extra_peak_mb(setup, work):
    code = _PEAK.format(
        setup=textwrap.indent(textwrap.dedent(setup), "").strip(),
        work=textwrap.dedent(work).strip(),
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=600,
    ).stdout
    return float(out.strip().splitlines()[-1])


# The documented bounds (doc/user_guide: scale-out): extra peak memory beyond the
# inputs and outputs themselves.
RETRIEVAL_BOUND_MB = 256
PREDICT_BOUND_MB = 256


@pytest.mark.slow
def test_retrieval_against_a_million_memories_has_bounded_peak():
    setup = """
    from skhop.nn.functional import hopfield_retrieve
    g = torch.Generator().manual_seed(0)
    memory = torch.randn(1_000_000, 64, generator=g)
    query = torch.randn(1000, 64, generator=g)
    out = torch.empty(1000, 64)
    hopfield_retrieve(query[:10], memory[:1000], beta=0.1)  # lazy loads before measuring
    """
    work = "out = hopfield_retrieve(query, memory, beta=0.1)"
    # memory itself is 256 MB; the (1000 x 1e6) score matrix would be 4 GB
    assert _extra_peak_mb(setup, work) < RETRIEVAL_BOUND_MB


@pytest.mark.slow
@pytest.mark.parametrize("similarity", ["auto", "cosine"])
def test_retriever_transform_against_a_million_memories_has_bounded_peak(similarity):
    setup = f"""
    from skhop import KernelHopfieldRetriever
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000_000, 64)).astype(np.float32)
    Q = X[:1000] + 0.1 * rng.normal(size=(1000, 64)).astype(np.float32)
    Q[:500, 32:] = 0.0  # half of the queries occluded, half noisy
    ret = KernelHopfieldRetriever(similarity={similarity!r}, index="exact").fit(X)
    out = ret.transform(Q[:10])  # lazy loads before measuring
    """
    work = "out = ret.transform(Q)"
    # the memory is 256 MB (held once, for every similarity); the output 0.25 MB
    assert _extra_peak_mb(setup, work) < RETRIEVAL_BOUND_MB


@pytest.mark.slow
def test_prediction_on_a_million_rows_has_bounded_peak():
    setup = """
    from sklearn.datasets import make_classification
    from skhop import HopfieldClassifier
    X, y = make_classification(n_samples=500, n_features=20, random_state=0)
    clf = HopfieldClassifier(max_iter=5, random_state=0).fit(X, y)
    big = np.random.default_rng(0).normal(size=(1_000_000, 20))
    proba = np.empty((1_000_000, 2))
    clf.predict_proba(big[:10])  # lazy loads before measuring
    """
    work = "proba = clf.predict_proba(big)"
    # the input is 160 MB; the output 16 MB
    assert _extra_peak_mb(setup, work) < PREDICT_BOUND_MB


# -- numerical extremes at the estimator level ------------------------------------


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e6])
def test_retriever_is_exact_for_tiny_and_huge_patterns(scale):
    from skhop import KernelHopfieldRetriever

    X = np.random.default_rng(0).normal(size=(50, 8))
    est = KernelHopfieldRetriever(random_state=0).fit(X * scale)
    out = est.transform(X[:10] * scale)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out / scale, X[:10], atol=1e-4)
    _, idx = est.kneighbors(X[:10] * scale)
    np.testing.assert_array_equal(idx[:, 0], np.arange(10))


def test_retriever_with_beta_1e4_one_memory_and_one_dimension():
    from skhop import KernelHopfieldRetriever

    X = np.random.default_rng(0).normal(size=(30, 5))
    out = KernelHopfieldRetriever(beta=1e4, random_state=0).fit(X).transform(X + 1e-3)
    np.testing.assert_allclose(out, X, atol=1e-5)
    single = KernelHopfieldRetriever(random_state=0).fit(X[:1])
    np.testing.assert_allclose(single.transform(X[:4]), np.repeat(X[:1], 4, axis=0))
    line = np.linspace(-1, 1, 7)[:, None]
    est = KernelHopfieldRetriever(similarity="neg_l2", beta=1e4, random_state=0).fit(line)
    np.testing.assert_allclose(est.transform(line), line, atol=1e-6)


def test_identical_stored_patterns_share_the_attention():
    from skhop import KernelHopfieldRetriever

    X = np.random.default_rng(0).normal(size=(6, 4))
    X = np.vstack([X, X[:1], X[:1]])  # pattern 0 stored three times
    est = KernelHopfieldRetriever(beta=1e3, random_state=0).fit(X)
    np.testing.assert_allclose(est.transform(X[:1]), X[:1], atol=1e-6)


def _retriever_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 16))
    Q = X[:30] + 0.05 * rng.normal(size=(30, 16))
    Q[15:, 8:] = 0.0  # occluded: routed to cosine by "auto"
    Q[:5, :4] = np.nan  # partial rows
    return X, Q


@pytest.mark.parametrize("similarity", ["auto", "cosine", "dot", "neg_l2"])
@pytest.mark.parametrize("scale", [2.0**-40, 1e-9, 1e-6, 1e6, 1e9, 2.0**40])
def test_retriever_does_not_depend_on_the_unit_of_the_data(similarity, scale):
    """Scaling X and the queries scales the retrieval and changes nothing else."""
    from skhop import KernelHopfieldRetriever

    X, Q = _retriever_data()
    ref = KernelHopfieldRetriever(similarity=similarity).fit(X)
    est = KernelHopfieldRetriever(similarity=similarity).fit(X * scale)
    # powers of two scale exactly; other scales round differently, and auto beta's logits
    # (up to 1e4) turn float32 rounding into ~1e4 * 1.2e-7 of the attention
    exact = float(np.log2(scale)).is_integer()
    atol = 1e-4 if exact else 1e4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(est.transform(Q * scale) / scale, ref.transform(Q), atol=atol)
    np.testing.assert_array_equal(est.kneighbors(Q * scale, 3)[1], ref.kneighbors(Q, 3)[1])
    np.testing.assert_array_equal(est.query_similarity(Q * scale), ref.query_similarity(Q))
    power = 0 if similarity == "cosine" else 2
    for key, beta in (ref.beta_ if similarity == "auto" else {None: ref.beta_}).items():
        got = est.beta_[key] if key else est.beta_
        expected = beta / scale ** (power if key != "cosine" else 0)
        assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    "scale, where", [(1e19, "patterns"), (1e30, "patterns"), (1e-20, "patterns"), (1e30, "queries")]
)
def test_retriever_refuses_a_scale_float32_cannot_carry_naming_x(scale, where):
    from skhop import KernelHopfieldRetriever

    X, _ = _retriever_data()
    est = KernelHopfieldRetriever()
    match = rf"X \({where}\) has scale [0-9.e+-]+ \(its largest absolute entry\)"
    with pytest.raises(ValueError, match=match):
        if where == "patterns":
            est.fit(X * scale)
        else:
            est.fit(X).transform(X[:3] * scale)


def test_retriever_reads_what_fit_decided_after_set_params():
    """Changing a fit-time parameter after fit changes nothing until the next fit."""
    from skhop import KernelHopfieldRetriever

    X, Q = _retriever_data()
    est = KernelHopfieldRetriever(random_state=0).fit(X)
    before = est.transform(Q), est.kneighbors(Q, 2), est.query_similarity(Q), est.energy(Q[5:])
    assert {"neg_l2", "cosine"} <= set(before[2])
    for params in ({"similarity": "cosine"}, {"similarity": "dot"}, {"beta": 3.0}):
        est.set_params(**params)
        after = est.transform(Q), est.kneighbors(Q, 2), est.query_similarity(Q), est.energy(Q[5:])
        np.testing.assert_array_equal(after[0], before[0])
        np.testing.assert_array_equal(after[1][1], before[1][1])
        np.testing.assert_array_equal(after[2], before[2])
        np.testing.assert_array_equal(after[3], before[3])
    # a documented predict-time knob takes effect at once
    est.set_params(n_steps=3)
    assert not np.array_equal(est.transform(Q), before[0])


def test_auto_beta_keeps_its_stated_promise_and_caps_near_duplicates():
    """All but 0.1% of the attention on a stored pattern while the cap is not reached."""
    from skhop import KernelHopfieldRetriever
    from skhop.nn.functional import hopfield_retrieve
    from skhop.nn.kernel import AUTO_BETA_MAX_LOGIT

    X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    for near in (False, True):
        data = X.copy()
        if near:
            data[1] = data[0] + 1e-4  # a near-duplicate pair: the cap binds
        est = KernelHopfieldRetriever(similarity="neg_l2").fit(data)
        t = torch.from_numpy(data)
        _, attn = hopfield_retrieve(
            t, t, beta=est.beta_, similarity="neg_l2", return_attention=True
        )
        own = attn.diagonal().numpy()
        score_range = 2.0 * float((t * t).sum(1).max())
        if not near:
            assert own.min() >= 1 - 1e-3 - 1e-5
            assert est.beta_ < AUTO_BETA_MAX_LOGIT / score_range
        else:
            assert est.beta_ == pytest.approx(AUTO_BETA_MAX_LOGIT / score_range, rel=1e-6)
            gap = 0.5 * float(((t[0] - t[1]) ** 2).sum())
            shared = 1 / (1 + np.exp(-est.beta_ * gap))
            np.testing.assert_allclose(own[:2], shared, atol=1e-3)
            assert own[2:].min() >= 1 - 1e-3 - 1e-5


def test_retriever_publishes_a_fit_in_one_step():
    """No fitted attribute is set on its own: readers never see half of a refit."""
    from skhop import KernelHopfieldRetriever

    class Watched(KernelHopfieldRetriever):
        def __setattr__(self, name, value):
            # sklearn's validation sets the input's width and names first (documented)
            known = ("n_features_in_", "feature_names_in_")
            if name.endswith("_") and not name.startswith("__") and name not in known:
                raise AssertionError(f"{name} published on its own")
            super().__setattr__(name, value)

    X, Q = _retriever_data()
    est = Watched(random_state=0).fit(X)
    est.partial_fit(X[:10])
    assert est.memories_.shape[0] == 130


def test_retriever_read_during_refit_sees_one_model():
    import threading

    from skhop import KernelHopfieldRetriever

    X1, Q = _retriever_data(0)
    X2, _ = _retriever_data(1)
    Q = np.nan_to_num(Q)
    want = [KernelHopfieldRetriever().fit(X).transform(Q) for X in (X1, X2)]
    est = KernelHopfieldRetriever().fit(X1)
    stop, mixed = threading.Event(), []

    def read():
        while not stop.is_set():
            out = est.transform(Q)
            if not any(np.array_equal(out, w) for w in want):
                mixed.append(out)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(20):
            est.fit(X2 if i % 2 == 0 else X1)
    finally:
        stop.set()
        reader.join()
    assert not mixed


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_input_is_cast_up(dtype):
    """float16 input is cast to float32 (documented); results equal the float32 ones."""
    from skhop import HopfieldClassifier

    X, y = _table(rows=40)
    low = X.astype(dtype)
    a = HopfieldClassifier(max_iter=5, random_state=0).fit(low, y).predict_proba(low)
    b = (
        HopfieldClassifier(max_iter=5, random_state=0)
        .fit(low.astype(np.float32), y)
        .predict_proba(low.astype(np.float32))
    )
    np.testing.assert_array_equal(a, b)


def test_classifier_with_more_memories_than_samples():
    from skhop import HopfieldClassifier

    X, y = _table(rows=12)
    clf = HopfieldClassifier(n_memories=50, max_iter=5, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_imputer_is_equivariant_to_the_scale_of_the_data(scale):
    from skhop import HopfieldImputer

    (X,), _ = next(s for s in SPECS if s.name == "HopfieldImputer").data()
    base = HopfieldImputer(random_state=0).fit_transform(X)
    scaled = HopfieldImputer(random_state=0).fit_transform(X * scale)
    np.testing.assert_allclose(scaled / scale, base, rtol=1e-4, atol=1e-6)


# -- the caller's torch settings ---------------------------------------------------


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_fit_inside_the_callers_no_grad_or_inference_mode(spec, mode):
    args, query = spec.data()
    plain = spec.make().fit(*args)
    with getattr(torch, mode)():
        est = spec.make().fit(*args)
        assert not torch.is_grad_enabled()  # the caller's mode is back
        inside = outputs(est, spec, query)
    for a, b in zip(inside, outputs(plain, spec, query), strict=True):
        np.testing.assert_array_equal(a, b)


def _counting_params(est):
    from sklearn.utils._param_validation import Interval

    out = []
    for name, allowed in getattr(est, "_parameter_constraints", {}).items():
        ints = [c for c in allowed if isinstance(c, Interval) and c.type.__name__ == "Integral"]
        if ints and "boolean" not in allowed and bool not in allowed:
            out.append(name)
    return out


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_bools_are_refused_for_integer_parameters(spec):
    args, _ = spec.data()
    names = _counting_params(spec.make())
    assert names, "every estimator has counting parameters"
    for name in names:
        with pytest.raises(ValueError, match=rf"'{name}' parameter .* must be an int, got True"):
            spec.make().set_params(**{name: True}).fit(*args)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_the_callers_float64_default_dtype_changes_nothing(spec):
    args, query = spec.data()
    plain = outputs(spec.make().fit(*args), spec, query)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        est = spec.make().fit(*args)
        inside = outputs(est, spec, query)
        loaded = outputs(copy.deepcopy(est), spec, query)
    finally:
        torch.set_default_dtype(before)
    for a, b, c in zip(inside, plain, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, b)


def test_unpickling_builds_skhop_nn_classes_only():
    from skhop.nn._rebuild import module_from_state

    for path in ("skhop._classifier:HopfieldClassifier", "os:system", "torch.nn:Linear"):
        with pytest.raises(ValueError, match="not a skhop.nn class"):
            module_from_state({"__skhop_module__": path, "args": [], "kwargs": {}, "state": {}})
