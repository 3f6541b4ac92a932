import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

from skhop import HopfieldMILClassifier
from skhop._mil import _drop_instances
from skhop.datasets import make_mil_bags
from skhop.preprocessing import BagStandardScaler
from skhop.utils import pad_bags

FAST = dict(hidden_dim=16, num_heads=2, n_members=1, batch_size=8, max_iter=25, random_state=0)


@pytest.fixture(scope="module")
def data():
    bags, y, witnesses = make_mil_bags(
        n_bags=60, n_features=5, min_instances=3, max_instances=9, separation=4.0, random_state=0
    )
    return bags, y, witnesses


@pytest.fixture(scope="module")
def fitted(data):
    bags, y, _ = data
    return fit(bags, y)


def fit(bags, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return HopfieldMILClassifier(**{**FAST, **params}).fit(bags, y)


# ------------------------------------------------------------- learning


def test_learns_planted_witnesses(fitted, data):
    bags, y, _ = data
    assert fitted.score(bags, y) > 0.9


def test_attention_ranks_witnesses_first(data):
    # Hopfield pooling alone: the bag vector is what the attention picks
    bags, y, witnesses = data
    clf = fit(bags, y, pooling=(), max_iter=40)
    attention = clf.instance_attention(bags)
    pos = np.flatnonzero(y == 1)
    # within each positive bag, attention relative to the bag's uniform share
    scores = np.concatenate([attention[i] * len(bags[i]) for i in pos])
    labels = np.concatenate([witnesses[i] for i in pos])
    assert roc_auc_score(labels, scores) > 0.9
    # the most attended instance of a positive bag is a witness
    top = [witnesses[i][np.argmax(attention[i])] for i in pos]
    assert np.mean(top) > 0.9


def test_multiclass_and_string_labels(data):
    bags, y, _ = data
    # third class: bags whose instances are all shifted
    extra = [b + 3.0 for b in bags[:20]]
    labels = np.array(["neg", "pos"])[y].tolist() + ["shifted"] * 20
    clf = fit(bags + extra, labels)
    assert clf.classes_.tolist() == ["neg", "pos", "shifted"]
    proba = clf.predict_proba(bags + extra)
    assert proba.shape == (80, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert clf.decision_function(bags).shape == (60, 3)
    assert clf.score(bags + extra, labels) > 0.8
    assert set(clf.predict(extra)) <= set(clf.classes_)


def test_binary_decision_function_matches_predict(fitted, data):
    bags, _, _ = data
    df = fitted.decision_function(bags)
    assert df.shape == (len(bags),)
    np.testing.assert_array_equal(df > 0, fitted.predict(bags) == fitted.classes_[1])
    np.testing.assert_allclose(
        np.log(fitted.predict_proba(bags)), fitted.predict_log_proba(bags), rtol=1e-6, atol=1e-9
    )


# ------------------------------------------------------------- padding


def test_padding_does_not_change_a_bag(fitted, data):
    bags, _, _ = data
    together = fitted.predict_proba(bags)
    alone = np.vstack([fitted.predict_proba([b]) for b in bags])
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-7)
    att_together = fitted.instance_attention(bags)
    att_alone = [fitted.instance_attention([b])[0] for b in bags]
    for a, b in zip(att_together, att_alone, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_module_padding_is_exact(fitted, data):
    # one bag, with and without trailing padding, through the same network
    bags, _, _ = data
    net = fitted.module_
    bag = torch.as_tensor(bags[0], dtype=torch.float32)[None]
    n = bag.shape[1]
    with torch.no_grad():
        ref, ref_att = net(bag, torch.zeros(1, n, dtype=torch.bool), return_attention=True)
        padded = torch.cat([bag, torch.randn(1, 7, bag.shape[2]) * 100], dim=1)
        mask = torch.zeros(1, n + 7, dtype=torch.bool)
        mask[0, n:] = True
        out, att = net(padded, mask, return_attention=True)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(att[..., :n], ref_att, rtol=1e-6, atol=1e-7)
    assert float(att[..., n:].abs().sum()) == 0.0


def test_equal_size_bags_as_3d_array(fitted):
    rng = np.random.RandomState(1)
    cube = rng.normal(size=(6, 4, 5))
    np.testing.assert_array_equal(fitted.predict_proba(cube), fitted.predict_proba(list(cube)))


def test_members_are_independent_and_averaged(data):
    bags, y, _ = data
    clf = fit(bags, y, n_members=2, max_iter=5)
    net = clf.module_
    assert len(net.members) == 2
    w0, w1 = (m.head[1].weight for m in net.members)
    assert not torch.equal(w0, w1)  # started from different weights
    padded, mask = (torch.from_numpy(a) for a in pad_bags(bags[:7]))
    with torch.no_grad():
        each = [torch.log_softmax(m(padded, mask)[0], dim=1) for m in net.members]
        torch.testing.assert_close(net(padded, mask), (each[0] + each[1]) / 2)
    alone = np.vstack([clf.predict_proba([b]) for b in bags[:7]])
    np.testing.assert_allclose(clf.predict_proba(bags[:7]), alone, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.99])
def test_bag_dropout_keeps_one_instance_and_padding(rate):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 8, (200,), generator=gen)
    mask = torch.arange(8)[None, :] >= lengths[:, None]
    torch.manual_seed(0)
    dropped = _drop_instances(mask, rate)
    assert bool((dropped | ~mask).all())  # padding stays masked
    assert bool((~dropped).any(dim=1).all())  # no bag loses every instance
    share = float((dropped & ~mask).sum() / (~mask).sum())
    assert abs(share - rate) < 0.1 or rate > 0.9


def test_instance_attention(fitted, data):
    bags, _, _ = data
    attention = fitted.instance_attention(bags)
    assert len(attention) == len(bags)
    for a, b in zip(attention, bags, strict=True):
        assert a.shape == (len(b),)
        assert (a >= 0).all()
        np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-5)


# ------------------------------------------------------------- contract


def test_clone_and_params():
    clf = HopfieldMILClassifier(hidden_dim=8, num_heads=2)
    params = clf.get_params()
    assert params["hidden_dim"] == 8 and params["device"] == "cpu"
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    twin.set_params(beta=0.5)
    assert twin.beta == 0.5 and clf.beta == 4.0


def test_not_fitted(data):
    bags, _, _ = data
    clf = HopfieldMILClassifier()
    for method in ("predict", "predict_proba", "decision_function", "instance_attention"):
        with pytest.raises(NotFittedError):
            getattr(clf, method)(bags)


def test_pickle_joblib_skops_round_trips(fitted, data, tmp_path):
    bags, _, _ = data
    want = fitted.predict_proba(bags)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(bags), want)
    path = tmp_path / "clf.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(bags), want)
    sio = pytest.importorskip("skops.io")
    blob = sio.dumps(fitted)
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    np.testing.assert_array_equal(loaded.predict_proba(bags), want)


def test_refit_is_identical_and_global_rng_untouched(data):
    bags, y, _ = data
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is the point)
    a = fit(bags, y, max_iter=5)
    b = fit(bags, y, max_iter=5)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]
    np.testing.assert_array_equal(a.predict_proba(bags), b.predict_proba(bags))
    assert a.loss_curve_ == b.loss_curve_
    c = fit(bags, y, max_iter=5, random_state=1)
    assert not np.array_equal(a.predict_proba(bags), c.predict_proba(bags))


def test_threads_restored(data):
    bags, y, _ = data
    old = torch.get_num_threads()
    fit(bags, y, max_iter=2, n_threads=2)
    assert torch.get_num_threads() == old


def test_cross_val_and_grid_search_with_list_of_bags(data):
    bags, y, _ = data
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pipe = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(**{**FAST, "max_iter": 10}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, bags, y, cv=cv, scoring="roc_auc")
        assert scores.shape == (3,) and scores.mean() > 0.8
        grid = GridSearchCV(
            pipe, {"hopfieldmilclassifier__num_queries": [1, 2]}, cv=cv, scoring="neg_log_loss"
        )
        grid.fit(bags, y)
        # each candidate was fitted with its own value, and the best one refitted on all bags
        means = grid.cv_results_["mean_test_score"]
        assert np.all(np.isfinite(means)) and means[0] != means[1]
        assert grid.best_index_ == int(np.argmax(means))
        best = clone(pipe).set_params(**grid.best_params_).fit(bags, y)
    np.testing.assert_array_equal(grid.predict_proba(bags), best.predict_proba(bags))


def test_pipeline_with_scaler_on_raw_features(data):
    bags, y, _ = data
    raw = [b * 1000.0 + 50.0 for b in bags]
    pipe = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(raw, y)
    assert pipe.score(raw, y) > 0.9


def test_sample_and_class_weight(data):
    bags, y, _ = data
    w = np.ones(len(y))
    a = fit(bags, y, max_iter=3)
    b = fit(bags, y, max_iter=3, class_weight={0: 1.0, 1: 1.0})
    np.testing.assert_array_equal(a.predict_proba(bags), b.predict_proba(bags))
    # "balanced" on imbalanced bags: the weights n / (n_classes * count) of each bag's class
    keep = np.flatnonzero((y == 0) | (np.arange(len(y)) % 3 == 0))
    sub, y_sub = [bags[i] for i in keep], y[keep]
    balanced = fit(sub, y_sub, max_iter=3, class_weight="balanced").predict_proba(sub)
    weighted = HopfieldMILClassifier(**{**FAST, "max_iter": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted.fit(sub, y_sub, sample_weight=compute_sample_weight("balanced", y_sub))
    np.testing.assert_allclose(balanced, weighted.predict_proba(sub), rtol=1e-5, atol=1e-6)
    plain = fit(sub, y_sub, max_iter=3).predict_proba(sub)
    assert np.abs(balanced - plain).max() > 1e-3
    # weights are bag weights: doubling all of them changes nothing
    d = HopfieldMILClassifier(**{**FAST, "max_iter": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        d.fit(bags, y, sample_weight=2 * w)
    np.testing.assert_allclose(a.predict_proba(bags), d.predict_proba(bags), rtol=1e-5)
    with pytest.raises(ValueError, match="[Ss]ample.weight"):
        HopfieldMILClassifier(**FAST).fit(bags, y, sample_weight=np.zeros(60))
    with pytest.raises(ValueError, match="class_weight"):
        fit(bags, y, class_weight={5: 1.0})


def test_early_stopping_and_warm_start(data):
    bags, y, _ = data
    es = fit(bags, y, early_stopping=True, max_iter=40, n_iter_no_change=3)
    assert len(es.validation_scores_) == es.n_iter_
    assert es.best_validation_score_ == max(es.validation_scores_)
    clf = fit(bags, y, max_iter=3, tol=0.0)
    first = clf.module_.members[0].head[1].weight.detach().clone()
    clf.set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(bags, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert not torch.equal(first, clf.module_.members[0].head[1].weight)


@pytest.mark.parametrize("warm_start", [False, True])
def test_interrupted_fit_leaves_estimator_unchanged(fitted, data, monkeypatch, warm_start):
    bags, y, _ = data
    clf = pickle.loads(pickle.dumps(fitted)).set_params(warm_start=warm_start)
    before = clf.predict_proba(bags)
    n_iter = clf.n_iter_

    def interrupt(module, *args, **kwargs):
        with torch.no_grad():  # training had changed the weights when it was stopped
            for p in module.parameters():
                p.add_(1.0)
        raise KeyboardInterrupt

    monkeypatch.setattr("skhop._mil.train", interrupt)
    with pytest.raises(KeyboardInterrupt):
        clf.fit([b + 1 for b in bags], y)
    assert clf.n_iter_ == n_iter
    np.testing.assert_array_equal(clf.predict_proba(bags), before)


# ------------------------------------------------------------- bad input


def _bad_inputs(bags, y):
    nan_bag = bags[3].copy()
    nan_bag[0, 0] = np.nan
    inf_bag = bags[3].copy()
    inf_bag[1, 2] = np.inf
    return {
        "empty bag": (bags[:2] + [np.zeros((0, 5))] + bags[3:], y, ValueError, "bag 2 is empty"),
        "feature counts": (
            bags[:4] + [bags[4][:, :3]] + bags[5:],
            y,
            ValueError,
            "bag 4 has 3 features",
        ),
        "nan": (bags[:3] + [nan_bag] + bags[4:], y, ValueError, "bag 3 contains NaN"),
        "inf": (bags[:3] + [inf_bag] + bags[4:], y, ValueError, "bag 3 contains NaN or inf"),
        "label count": (bags, y[:-1], ValueError, "59 labels but X has 60 bags"),
        "2-D array": (np.vstack(bags), y, TypeError, "sequence of bags"),
        "string": ("bags", y, TypeError, "sequence of bags"),
        "number": (3.0, y, TypeError, "sequence of bags"),
        "1-D bag": (bags[:5] + [bags[5][0]] + bags[6:], y, ValueError, "bag 5 has 1 dim"),
        "no bags": ([], [], ValueError, "no bag"),
        "single class": (bags, np.zeros(60), ValueError, "only one class"),
        "text bag": (
            bags[:1] + [np.array([["a", "b"]])] + bags[2:],
            y,
            TypeError,
            "bag 1 is not numeric",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty bag",
        "feature counts",
        "nan",
        "inf",
        "label count",
        "2-D array",
        "string",
        "number",
        "1-D bag",
        "no bags",
        "single class",
        "text bag",
    ],
)
def test_bad_input_at_fit(data, case):
    bags, y, _ = data
    X, labels, error, match = _bad_inputs(list(bags), y)[case]
    with pytest.raises(error, match=match):
        HopfieldMILClassifier(**FAST).fit(X, labels)


def test_bad_input_at_predict(fitted, data):
    bags, _, _ = data
    with pytest.raises(ValueError, match="bag 1 has 4 features, but 5 features were seen"):
        fitted.predict([bags[0], bags[1][:, :4]])
    with pytest.raises(TypeError, match="sequence of bags"):
        fitted.predict(np.vstack(bags))
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match="bags_from_frame"):
        fitted.predict(pd.DataFrame(np.vstack(bags)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_dim=10, num_heads=4), "divisible by num_heads"),
        (dict(pooling=("mean", "median")), "pooling"),
        (dict(hidden_dim=0), "hidden_dim"),
        (dict(bag_dropout=1.0), "bag_dropout"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_parameters(data, params, match):
    bags, y, _ = data
    with pytest.raises(ValueError, match=match):
        HopfieldMILClassifier(**params).fit(bags, y)


# ------------------------------------------------------------- sklearn checks

# sklearn's common checks feed 2-D arrays; with the two_d_array tag off,
# parametrize_with_checks yields none for a bag estimator. The API checks that
# need no data still apply and run here.
API_CHECKS = [
    ec.check_estimator_cloneable,
    ec.check_estimator_tags_renamed,
    ec.check_valid_tag_types,
    ec.check_estimator_repr,
    ec.check_no_attributes_set_in_init,
    ec.check_do_not_raise_errors_in_init_or_set_params,
    ec.check_mixin_order,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_parameters_default_constructible,
]


@pytest.mark.parametrize(
    "estimator", [HopfieldMILClassifier(), BagStandardScaler()], ids=lambda e: type(e).__name__
)
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(estimator, check):
    check(type(estimator).__name__, estimator)


@parametrize_with_checks([BagStandardScaler()])  # the classifier runs in test_common
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_common_checks_skip_the_2d_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        marks = parametrize_with_checks([HopfieldMILClassifier()])
    # only the cloneable check precedes the tag test that skips the rest
    names = [check.func.__name__ for _, check in marks.args[1]]
    assert names == ["check_estimator_cloneable"]


def test_padded_training_batches_equal_module_inputs(data):
    # pad_bags puts bag i in padded[i, :n_i] and marks the rest as padding
    bags, _, _ = data
    padded, mask = pad_bags(bags)
    for i in (0, 7, 59):
        n = len(bags[i])
        np.testing.assert_array_equal(padded[i, :n], bags[i].astype(np.float32))
        assert not mask[i, :n].any() and mask[i, n:].all()
