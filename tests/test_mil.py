import pickle
import subprocess
import sys
import textwrap
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
from skhop._quantile import quantile_fit, quantile_normal
from skhop.datasets import make_mil_bags
from skhop.nn import MILNet
from skhop.nn._mil import drop_instances, sample_instances
from skhop.preprocessing import BagStandardScaler
from skhop.utils import instance_attention, pad_bags

FAST = dict(hidden_dim=16, n_heads=2, n_members=1, batch_size=8, max_iter=25, random_state=0)


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
    clf = fit(bags, y, pooling=(), max_iter=60)
    attention = clf.instance_attention(bags)
    pos = np.flatnonzero(y == 1)
    # within each positive bag, attention relative to the bag's uniform share
    scores = np.concatenate([attention[i] * len(bags[i]) for i in pos])
    labels = np.concatenate([witnesses[i] for i in pos])
    assert roc_auc_score(labels, scores) > 0.85
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


def _dense_reference(net, bag):
    """The textbook forward of member 0 of ``net`` on one bag: keys, softmax, poolings."""
    x = bag.to(torch.float32)
    memories = net.memories
    if net.num_knots:  # numpy's quantile-normal map, in float64
        k, lv = net.knots.double().numpy(), net.levels.double().numpy()
        x = torch.from_numpy(quantile_normal(x.double().numpy(), k, lv)).float()
        memories = torch.from_numpy(quantile_normal(memories.double().numpy(), k, lv)).float()
    h = x
    for layer in net.encoder:
        h = torch.relu(h @ layer.weight[0] + layer.bias[0])
    z = torch.nn.functional.layer_norm(h, (net.width,)) * net.norm_weight[0] + net.norm_bias[0]
    keys = z @ net.k_proj.weight[0] + net.k_proj.bias[0]
    values = z @ net.v_proj.weight[0] + net.v_proj.bias[0]
    H = net.num_heads
    kh = keys.unflatten(-1, (H, -1))  # (n, H, hd)
    vh = values.unflatten(-1, (H, -1))
    qh = net.query[0].unflatten(-1, (H, -1))  # (Q, H, hd)
    att = torch.softmax(net.log_beta.exp() * torch.einsum("nhd,qhd->hqn", kh, qh), dim=-1)
    pooled = torch.einsum("hqn,nhd->qhd", att, vh).flatten(1)  # (Q, hidden)
    pooled = (pooled @ net.out_proj.weight[0] + net.out_proj.bias[0]).flatten()
    feats = [pooled] + [
        {"mean": h.mean(0), "max": h.amax(0), "min": h.amin(0)}[p] for p in net.pooling
    ]
    if len(net.memories):  # similarity of the nearest instance to each stored one
        d2 = torch.cdist(x.double(), memories.double()).square().amin(0)
        feats.append(torch.exp(-d2 / net.input_size).float())
    logits = torch.cat(feats) @ net.head.weight[0] + net.head.bias[0, 0]
    return torch.log_softmax(logits, dim=-1), att.mean(dim=(0, 1))


@pytest.mark.parametrize("num_knots", [0, 16])
def test_packed_network_matches_the_dense_textbook_forward(num_knots):
    torch.manual_seed(0)
    net = MILNet(
        5, 3, 8, 1, 2, 2, 2.0, False, True, 0.0, 0.0, ("mean", "max", "min"), 1, 3, num_knots
    )
    net.eval().init_memories_(torch.randn(3, 5))
    if num_knots:  # knots of heavy-tailed training values, 16 of them kept per feature
        train = torch.randn(200, 5).double() ** 3
        knots, levels = quantile_fit(train.numpy(), np.ones(200))
        net.init_quantiles_(knots[:, :: 256 // num_knots], levels[:, :: 256 // num_knots])
    bags = [torch.randn(n, 5, dtype=torch.float64) for n in (1, 4, 9, 2)]
    with torch.no_grad():
        scores, attention = net([b.float() for b in bags], return_attention=True)
        ref = [_dense_reference(net, b) for b in bags]
    # float32 sums over at most a few hundred terms
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scores, torch.stack([r[0] for r in ref]), **tol)
    torch.testing.assert_close(attention, torch.cat([r[1] for r in ref]), **tol)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 50])
def test_pieces_merge_exactly_whatever_the_chunk_size(chunk_size):
    # a piece may hold several bags or a slice of one; the merged result is the whole
    torch.manual_seed(0)
    net = MILNet(4, 2, 8, 1, 2, 2, 4.0, False, True, 0.0, 0.0, ("mean", "max", "min"), 2, 5)
    net.init_memories_(torch.randn(5, 4))
    bags = [torch.randn(n, 4) for n in (1, 12, 5, 30, 2)]
    keep = drop_instances([len(b) for b in bags], 2, 0.3)
    with torch.no_grad():
        whole, att = net.eval()(bags, return_attention=True)
        parts, att_p = net(bags, return_attention=True, chunk_size=chunk_size)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(att_p, att, rtol=1e-5, atol=1e-7)
    # training: the same loss and gradient through checkpointed pieces
    grads = []
    for c in (None, chunk_size):
        net.zero_grad()
        loss = net.train().member_logits(bags, keep, chunk_size=c).square().sum()
        loss.backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for g0, g1 in zip(*grads, strict=True):
        torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-5)


def test_equal_size_bags_as_3d_array(fitted):
    rng = np.random.RandomState(1)
    cube = rng.normal(size=(6, 4, 5))
    np.testing.assert_array_equal(fitted.predict_proba(cube), fitted.predict_proba(list(cube)))


def test_members_are_independent_and_averaged(data):
    bags, y, _ = data
    clf = fit(bags, y, n_members=2, max_iter=5)
    net = clf.module_
    w = net.head.weight
    assert w.shape[0] == 2 and not torch.equal(w[0], w[1])  # started from different weights
    part = [torch.as_tensor(b, dtype=torch.float32) for b in bags[:7]]
    with torch.no_grad():
        each = torch.log_softmax(net.member_logits(part), dim=-1)
        torch.testing.assert_close(net(part), each.mean(dim=0))
    alone = np.vstack([clf.predict_proba([b]) for b in bags[:7]])
    np.testing.assert_allclose(clf.predict_proba(bags[:7]), alone, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.99])
def test_bag_dropout_keeps_one_instance_per_bag_and_member(rate):
    lengths = torch.randint(1, 8, (200,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    keep = drop_instances(lengths, 3, rate)
    assert keep.shape == (int(lengths.sum()), 3)
    bag = torch.repeat_interleave(torch.arange(200), lengths)
    kept = torch.zeros(200, 3).index_add_(0, bag, keep.float())
    assert bool((kept >= 1).all())  # no bag loses every instance, for any member
    share = 1 - float(keep.float().mean())
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
    clf = HopfieldMILClassifier(hidden_dim=8, n_heads=2)
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
            pipe, {"hopfieldmilclassifier__n_queries": [1, 2]}, cv=cv, scoring="neg_log_loss"
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


def test_quantile_scaling_is_blind_to_a_standardisation(data):
    bags, y, _ = data
    raw = [b * 1000.0 + 50.0 for b in bags]
    a = fit(bags, y, max_iter=3).predict_proba(bags)
    b = fit(raw, y, max_iter=3).predict_proba(raw)
    # the same ranks: only the rounding of the interpolation differs
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_scaling_none_reads_the_inputs_as_given(data):
    bags, y, _ = data
    plain = fit(bags, y, scaling=None, max_iter=3)
    assert plain.module_.num_knots == 0 and plain.module_.knots.shape == (5, 0)
    mapped = fit(bags, y, max_iter=3)
    assert mapped.module_.num_knots == 256
    # each feature's knots are values of the training instances, increasing
    pool = np.vstack(bags).astype(np.float32)
    knots = mapped.module_.knots.numpy()
    assert all(np.isin(k, pool[:, j]).all() for j, k in enumerate(knots))
    assert (np.diff(knots, axis=1) >= 0).all()
    assert not np.allclose(plain.predict_proba(bags), mapped.predict_proba(bags))


def test_instances_mapped_once_or_piece_by_piece_train_alike(monkeypatch, data):
    import skhop._mil as mil

    bags, y, _ = data
    once = fit(bags, y, max_iter=3).predict_proba(bags)
    monkeypatch.setattr(mil, "_MAPPED_ENTRIES", 0)  # as for data too large to copy
    np.testing.assert_allclose(fit(bags, y, max_iter=3).predict_proba(bags), once, rtol=1e-6)


def test_quantiles_weigh_each_instance_as_its_bag(data):
    bags, y, _ = data
    w = np.where(np.arange(len(y)) < 10, 2.0, 1.0)
    w[10:13] = 0.0  # bags of weight 0 do not count
    weighted = fit(bags, y, max_iter=1)
    weighted.fit(bags, y, sample_weight=w)
    copies = [b for b, n in zip(bags, w.astype(int), strict=True) for _ in range(n)]
    y_copies = np.repeat(y, w.astype(int))
    repeated = fit(copies, y_copies, max_iter=1)
    for name in ("knots", "levels"):
        np.testing.assert_allclose(
            getattr(weighted.module_, name), getattr(repeated.module_, name), atol=1e-7
        )


def test_quantiles_of_many_instances_are_fitted_on_a_drawn_share(monkeypatch, data):
    import skhop._mil as mil

    bags, y, _ = data
    monkeypatch.setattr(mil, "_QUANTILE_ENTRIES", 5 * 20)  # 20 instances of 5 features
    a, b = fit(bags, y, max_iter=1), fit(bags, y, max_iter=1)
    knots = a.module_.knots.numpy()
    assert max(len(np.unique(k)) for k in knots) <= 20
    np.testing.assert_array_equal(knots, b.module_.knots.numpy())  # drawn by random_state
    other = fit(bags, y, max_iter=1, random_state=1).module_.knots.numpy()
    assert not np.array_equal(knots, other)


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
    first = clf.module_.head.weight.detach().clone()
    clf.set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(bags, y)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert not torch.equal(first, clf.module_.head.weight)


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
        (dict(hidden_dim=10, n_heads=4), "divisible by n_heads"),
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


# ------------------------------------------------------------- robustness


def test_memories_are_distinct_training_instances(data):
    bags, y, _ = data
    clf = fit(bags, y, n_memories=40, max_iter=2)
    memories = clf.module_.memories.numpy()
    pool = np.vstack(bags).astype(np.float32)
    # every stored pattern is one of the training instances, none twice
    match = (memories[:, None, :] == pool[None, :, :]).all(-1)
    assert match.any(1).all() and len(np.unique(memories, axis=0)) == 40
    total = sum(len(b) for b in bags)
    assert len(fit(bags, y, n_memories=10_000, max_iter=1).module_.memories) == total
    assert len(fit(bags, y, n_memories=0, max_iter=1).module_.memories) == 0


@pytest.mark.parametrize("index", ["shuffled", "offset"])
def test_bags_in_a_pandas_series_are_taken_by_position(fitted, data, index):
    pd = pytest.importorskip("pandas")
    bags, y, _ = data
    labels = (
        np.random.default_rng(0).permutation(60) if index == "shuffled" else 100 + np.arange(60)
    )
    series = pd.Series(list(bags), index=labels, dtype=object)
    np.testing.assert_array_equal(fitted.predict_proba(series), fitted.predict_proba(bags))
    a = fit(series, pd.Series(y, index=labels), max_iter=3)
    b = fit(bags, y, max_iter=3)
    np.testing.assert_array_equal(a.predict_proba(bags), b.predict_proba(bags))


def test_cross_val_score_on_a_pandas_series(data):
    pd = pytest.importorskip("pandas")
    bags, y, _ = data
    series = pd.Series(list(bags), index=np.arange(60)[::-1], dtype=object)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        on_series = cross_val_score(HopfieldMILClassifier(**FAST), series, y, cv=cv)
        on_list = cross_val_score(HopfieldMILClassifier(**FAST), bags, y, cv=cv)
    np.testing.assert_array_equal(on_series, on_list)


def test_fitted_attributes_are_published_in_one_step(data):
    # a reader in another thread sees the old model or the new one, never a mix
    bags, y, _ = data
    set_one_by_one = []

    class Recording(HopfieldMILClassifier):
        def __setattr__(self, name, value):
            if name.endswith("_") and not name.startswith("_"):
                set_one_by_one.append(name)
            super().__setattr__(name, value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = Recording(**{**FAST, "max_iter": 2}).fit(bags, y)
    assert set_one_by_one == []
    assert clf.n_iter_ == 2 and clf.n_features_in_ == 5 and len(clf.loss_curve_) == 2


def test_float64_default_dtype_of_the_caller(data):
    bags, y, _ = data
    want = fit(bags, y, max_iter=3).predict_proba(bags)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = fit(bags, y, max_iter=3).predict_proba(bags)
    finally:
        torch.set_default_dtype(old)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_huge_inputs_are_refused_naming_x_and_the_scale(fitted, data):
    bags, y, _ = data
    big = [b * 1e30 for b in bags]
    with pytest.raises(ValueError, match=r"X: the instances reach \d\.\d+e\+30.*BagStandardScaler"):
        HopfieldMILClassifier(**FAST).fit(big, y)
    with pytest.raises(ValueError, match=r"X: the instances reach"):
        fitted.predict_proba(big[:3])
    # standardised first, the same data fit fine
    pipe = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert pipe.fit(big, y).score(big, y) > 0.9


def test_instance_attention_through_a_fitted_pipeline(data):
    bags, y, _ = data
    raw = [b * 10.0 + 3.0 for b in bags]
    pipe = make_pipeline(BagStandardScaler(), HopfieldMILClassifier(**FAST))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(raw, y)
    want = pipe[-1].instance_attention(pipe[0].transform(raw))
    got = instance_attention(pipe, raw)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    nested = make_pipeline(make_pipeline(pipe))  # pipelines inside pipelines are followed
    for a, b in zip(instance_attention(nested, raw), want, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(instance_attention(pipe[-1], pipe[0].transform(raw)), want, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="no instance_attention"):
        instance_attention(BagStandardScaler().fit(raw), raw)


@pytest.mark.slow
def test_twenty_bags_of_100000_instances_fit_and_predict_in_bounded_memory(monkeypatch):
    from test_robustness import _PEAK, ROOT

    # glibc raises its mmap threshold as buffers are freed and then keeps freed
    # piece buffers in its heap, so the peak RSS would measure the allocator's
    # cache (about 300 MB here, whatever the number of bags) rather than what is
    # live; a fixed threshold makes the RSS follow the live memory.
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")

    setup = """
    import warnings
    from skhop import HopfieldMILClassifier
    rng = np.random.default_rng(0)
    bags = [rng.normal(size=(100_000, 64)).astype(np.float32) for _ in range(20)]
    for b in bags[::2]:
        b[:50] += 2.0  # witnesses in the positive bags
    y = np.arange(20) % 2 == 0
    small = [b[:100] for b in bags]
    warnings.simplefilter("ignore")
    HopfieldMILClassifier(max_iter=1, random_state=0).fit(small, y).predict_proba(small)
    from skhop.nn import MILNet  # the checkpointing machinery loads lazily
    net = MILNet(64, 2, 8, 1, 2, 2, 4.0, False, True, 0.1, 0.0, ("mean",))
    net.member_logits([torch.from_numpy(b[:100]) for b in bags], chunk_size=10).sum().backward()
    proba = np.empty((20, 2))
    """
    work = """
    clf = HopfieldMILClassifier(hidden_dim=16, n_heads=2, max_iter=1, random_state=0)
    clf = clf.fit(bags, y)
    proba = clf.predict_proba(bags)
    """
    code = _PEAK.format(setup=textwrap.dedent(setup).strip(), work=textwrap.dedent(work).strip())
    # a long timeout: the fit of 2 million instances takes minutes on a loaded machine
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=3600
    )
    assert run.returncode == 0, run.stderr
    extra_mb = float(run.stdout.strip().splitlines()[-1])
    print(f"extra peak: {extra_mb:.0f} MB")
    # the bags are 512 MB (float32, used in place); one padded or packed copy would be as much
    assert extra_mb < 256


# ------------------------------------------------- training on a budget


def test_sample_instances_caps_long_bags_without_replacement():
    torch.manual_seed(0)
    short, long = torch.randn(3, 4), torch.arange(200.0).reshape(100, 2)
    out = sample_instances([short, long], 10)
    assert out[0] is short  # bags within the cap are used as they are
    rows = out[1][:, 0] / 2  # row numbers of the drawn instances
    assert out[1].shape == (10, 2)
    assert len(set(rows.tolist())) == 10  # no instance drawn twice
    assert bool((rows[1:] > rows[:-1]).all())  # in bag order
    assert torch.equal(out[1], long[rows.long()])
    again = sample_instances([long], 10)[0]
    assert not torch.equal(again, out[1])  # drawn anew at each call
    assert sample_instances([long], None)[0] is long


def test_max_instances_bounds_what_a_step_reads(monkeypatch, data):
    bags, y, _ = data
    seen = []
    real = MILNet.member_logits

    def spy(self, sel, keep=None, chunk_size=None, mapped=False):
        seen.append(max(len(b) for b in sel))
        return real(self, sel, keep, chunk_size, mapped)

    monkeypatch.setattr(MILNet, "member_logits", spy)
    fit(bags, y, max_iter=2, max_instances=4)
    assert seen and max(seen) == 4  # the bags hold 3 to 9 instances
    seen.clear()
    fit(bags, y, max_iter=2, max_instances=None)
    assert max(seen) == max(len(b) for b in bags)


def test_default_fit_runs_its_budget_without_warning(data):
    bags, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = HopfieldMILClassifier(max_iter=6, tol=0.0, random_state=0).fit(bags, y)
    assert clf.n_iter_ == 6  # the schedule's length, reached without a warning
