import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhop import HopfieldClassifier

FAST = dict(max_iter=30, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=120,
        n_features=6,
        n_informative=4,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return StandardScaler().fit_transform(X), y


def fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return HopfieldClassifier(**{**FAST, **params}).fit(X, y)


def test_learns_separable_data(data):
    X, y = data
    assert fit(X, y, max_iter=100).score(X, y) > 0.9


@pytest.mark.parametrize("labels", [np.array(["cat", "dog"]), np.array([3, 7])])
def test_arbitrary_labels(data, labels):
    X, y = data
    yb = labels[(y > 0).astype(int)]
    clf = fit(X, yb)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, yb) > 0.8
    # binary decision_function is positive exactly where classes_[1] is predicted
    np.testing.assert_array_equal(clf.decision_function(X) > 0, clf.predict(X) == clf.classes_[1])


def test_pandas_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    np.testing.assert_array_equal(clf.predict(df), fit(X, y).predict(X))
    assert not hasattr(fit(X, y), "feature_names_in_")


@pytest.mark.heavy  # GridSearchCV(n_jobs=2) starts worker processes
def test_pipeline_gridsearch_and_cv(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), HopfieldClassifier(**FAST))
    grid = GridSearchCV(
        pipe,
        {"hopfieldclassifier__beta": [0.5, 2.0], "hopfieldclassifier__n_memories": [8, 32]},
        cv=3,
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
        scores = cross_val_score(pipe, X, y, cv=3)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.6
    assert scores.shape == (3,) and scores.mean() > 0.6


def test_refit_and_pickle_identical(data):
    X, y = data
    a, b = fit(X, y, n_memories=50), fit(X, y, n_memories=50)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), c.predict_proba(X))
    assert next(c.module_.parameters()).device.type == "cpu"


def test_different_seeds_differ(data):
    X, y = data
    a, b = fit(X, y, random_state=0), fit(X, y, random_state=1)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_global_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    np.random.seed(123)
    expected_t, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    fit(X, y, random_state=0, n_memories=50)
    np.testing.assert_array_equal(torch.rand(3), expected_t)
    np.testing.assert_array_equal(np.random.rand(3), expected_np)
    # random_state=None draws its seed from numpy's global RNG (as sklearn does),
    # but torch's global RNG is still left alone
    torch.manual_seed(123)
    fit(X, y, random_state=None, n_memories=50)
    np.testing.assert_array_equal(torch.rand(3), expected_t)


def test_proba_log_proba_decision_consistent(data):
    X, y = data
    clf = fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.log(proba), clf.predict_log_proba(X), atol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_array_equal(clf.decision_function(X).argmax(axis=1), proba.argmax(axis=1))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_rejected(data, bad):
    X, y = data
    Xb = X.copy()
    Xb[0, 0] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        fit(Xb, y)
    clf = fit(X, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        clf.predict(Xb)


def test_wrong_feature_count_at_predict(data):
    X, y = data
    clf = fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :-1])


def test_single_class_rejected(data):
    X, _ = data
    with pytest.raises(ValueError, match="one class"):
        fit(X, np.zeros(len(X)))


def test_sparse_rejected(data):
    sp = pytest.importorskip("scipy.sparse")
    X, y = data
    with pytest.raises(TypeError, match="[Ss]parse"):
        fit(sp.csr_matrix(X), y)


def test_negative_sample_weight_rejected(data):
    X, y = data
    w = np.ones(len(y))
    w[0] = -1
    with pytest.raises(ValueError, match="[Nn]egative"):
        HopfieldClassifier(**FAST).fit(X, y, sample_weight=w)


def test_bad_parameters_rejected(data):
    X, y = data
    with pytest.raises(ValueError, match="n_heads"):
        fit(X, y, n_heads=0)
    with pytest.raises(ValueError, match="n_threads"):
        fit(X, y, n_threads=0)
    with pytest.raises(ValueError, match="class_weight"):
        fit(X, y, class_weight={5: 2.0})


def test_sample_weight_matters(data):
    X, y = data
    w = np.where(y == 0, 1e-3, 1.0)  # class 0 all but ignored
    plain = fit(X, y, max_iter=60)
    weighted = HopfieldClassifier(max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted.fit(X, y, sample_weight=w)
    p0 = plain.predict_proba(X)[:, 0].mean()
    w0 = weighted.predict_proba(X)[:, 0].mean()
    assert w0 < p0


def test_class_weight_matters(data):
    X, y = data
    plain = fit(X, y, max_iter=60)
    heavy = fit(X, y, max_iter=60, class_weight={0: 20.0, 1: 1.0, 2: 1.0})
    assert heavy.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean()
    balanced = fit(X, y, max_iter=60, class_weight="balanced")
    assert balanced.score(X, y) > 0.8


def test_warm_start_continues(data):
    X, y = data
    clf = fit(X, y, max_iter=5, tol=0.0, warm_start=True)
    first = list(clf.loss_curve_)
    state = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == 10
    assert clf.loss_curve_[:5] == first
    # continued from where it was: the second run starts below the first run's start
    assert clf.loss_curve_[5] < first[0]
    assert any(not torch.equal(state[k], v) for k, v in clf.module_.state_dict().items())
    cold = fit(X, y, max_iter=5, tol=0.0)
    assert cold.n_iter_ == 5


def test_early_stopping(data):
    X, y = data
    clf = fit(X, y, early_stopping=True, validation_fraction=0.25, max_iter=200, n_iter_no_change=5)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 200
    assert fit(X, y).validation_scores_ is None


def test_convergence_warning(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        HopfieldClassifier(max_iter=2, tol=0.0, random_state=0).fit(X, y)


def test_verbose_prints_epochs(data, capsys):
    X, y = data
    fit(X, y, max_iter=3, tol=0.0, verbose=1)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Iteration")]
    assert len(lines) == 3 and "loss = " in lines[0]


@pytest.mark.parametrize("n_threads", [1, None])
def test_threads_restored(data, n_threads):
    X, y = data
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf = fit(X, y, n_threads=n_threads, max_iter=3)
        clf.predict(X)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_embedding_heads_and_similarities(data):
    X, y = data
    for params in [
        dict(hidden_dim=8, n_heads=2),
        dict(similarity="cosine", beta=8.0),  # cosine scores lie in [-1, 1]
        dict(similarity="dot"),
        dict(mlp_dim=16),
        dict(n_memories=50),  # a sample of 50 stored rows per training step
    ]:
        clf = fit(X, y, max_iter=60, **params)
        assert clf.score(X, y) > 0.8, params
        assert clf.n_memories_ == len(X)


@pytest.mark.parametrize("warm_start", [False, True])
def test_interrupted_fit_leaves_estimator_unchanged(data, monkeypatch, warm_start):
    X, y = data
    clf = fit(X, y).set_params(warm_start=warm_start)
    before = clf.predict_proba(X)
    n_iter, classes = clf.n_iter_, clf.classes_.copy()
    import skhop._classifier as mod

    def interrupt(module, *args, **kwargs):
        with torch.no_grad():  # training had changed the weights when it was stopped
            for p in module.parameters():
                p.add_(1.0)
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "train", interrupt)
    # a cold fit would change the width and the classes; a warm one only the weights
    X_new, y_new = (X + 1.0, y[::-1].copy()) if warm_start else (X[:, :2], y + 5)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(max_iter=7).fit(X_new, y_new)
    assert clf.n_iter_ == n_iter and clf.max_iter == 7 and clf.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(clf.classes_, classes)
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.parametrize("similarity", ["neg_l2", "cosine", "dot"])
@pytest.mark.parametrize("n_heads, mlp_size", [(1, None), (3, 6)])
def test_training_formula_matches_core_retrieval(similarity, n_heads, mlp_size):
    # the differentiable training path and the chunked retrieval of skhop.nn give
    # the same probabilities; leaving key i out is the retrieval without row i
    from skhop.nn import RowHopfieldLayer

    torch.manual_seed(0)
    net = RowHopfieldLayer(
        5, 9, 3, 4, num_heads=n_heads, mlp_size=mlp_size, beta=0.7, similarity=similarity
    ).double()
    rows, labels = torch.randn(9, 5, dtype=torch.float64), torch.arange(9) % 3
    mass = torch.rand(9, dtype=torch.float64) + 0.5
    net.store_(rows, labels, mass)
    x = torch.randn(11, 5, dtype=torch.float64)
    with torch.no_grad():
        keys = net.embed(rows)
        direct = net.log_proba_from(net.embed(x), keys, labels, mass.log())
        for chunk in (None, 2):
            torch.testing.assert_close(net.log_proba(x, chunk_size=chunk), direct)
        left_out = net.log_proba_from(
            keys, keys, labels, mass.log(), diagonal=torch.full((9,), -np.inf)
        )
        for i in range(9):
            keep = torch.arange(9) != i
            alone = net.log_proba_from(
                keys[:, i : i + 1], keys[:, keep], labels[keep], mass[keep].log()
            )
            torch.testing.assert_close(left_out[i : i + 1], alone)
    np.testing.assert_allclose(direct.exp().sum(-1).numpy(), 1.0)


def test_fitted_network_is_rebuildable(data):
    from skhop.nn._rebuild import Rebuildable, module_from_state, module_to_state

    X, y = data
    clf = fit(X, y, hidden_dim=4, n_heads=2)
    assert isinstance(clf.module_, Rebuildable)
    rebuilt = module_from_state(module_to_state(clf.module_))
    x = torch.as_tensor(X[:5], dtype=clf.module_.stored.dtype)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), clf.module_(x))
    assert not any(isinstance(v, torch.optim.Optimizer) for v in vars(clf).values())


def test_skops_round_trip(data):
    sio = pytest.importorskip("skops.io")
    X, y = data
    clf = fit(X, y)
    blob = sio.dumps(clf)
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_zero_weight_rows_are_not_stored(data):
    X, y = data
    w = np.ones(len(y))
    w[:30] = 0
    clf = HopfieldClassifier(max_iter=5, random_state=0).fit(X, y, sample_weight=w)
    assert clf.n_memories_ == len(y) - 30
    dropped = HopfieldClassifier(max_iter=5, random_state=0).fit(X[30:], y[30:])
    np.testing.assert_allclose(clf.predict_proba(X), dropped.predict_proba(X), rtol=1e-6)


def test_heads_differ(data):
    X, y = data
    clf = fit(X, y, n_heads=3, max_iter=1)
    emb = clf.module_.embed(torch.as_tensor(X[:5], dtype=clf.module_.stored.dtype)).detach()
    assert emb.shape[0] == 3
    assert not torch.equal(emb[0], emb[1])
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_default_fit_emits_no_warning(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HopfieldClassifier(random_state=0).fit(X, y)


def test_weights_equal_repetitions(data):
    # a row of weight k is k copies of it: same model, up to float rounding, when
    # every step sees all rows (mini-batches then differ only by their draw)
    X, y = data
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=len(y))
    params = dict(max_iter=20, batch_size=1000, random_state=0)
    weighted = HopfieldClassifier(**params).fit(X, y, sample_weight=w)
    repeated = HopfieldClassifier(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_float64_default_dtype_does_not_break_fit(data):
    X, y = data
    expected = fit(X, y, max_iter=3, hidden_dim=2048).predict_proba(X)  # a float32 fit
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        clf = fit(X, y, max_iter=3, hidden_dim=2048)
        proba = clf.predict_proba(X)
    finally:
        torch.set_default_dtype(before)
    assert clf.module_.stored.dtype == torch.float32
    # the same model: only AdamW's step counter follows the default dtype
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-6)


def test_prediction_of_a_row_does_not_depend_on_its_batch(data):
    # the documented guarantee: equal up to float64 rounding
    X, y = data
    clf = fit(X, y)
    together = clf.predict_proba(X)
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(0, len(X), 17)])
    np.testing.assert_allclose(together[::17], alone, rtol=1e-12, atol=1e-15)


def test_refit_is_published_in_one_step(data, monkeypatch):
    # a reader during a refit sees the old fitted attributes or the new ones, never a mix
    import skhop._classifier as mod

    X, y = data
    clf = fit(X, y, max_iter=3)
    old = dict(vars(clf))
    seen = []

    real_train = mod.train

    def spy(*args, **kwargs):
        seen.append({k: vars(clf).get(k) for k in mod._FITTED})
        return real_train(*args, **kwargs)

    monkeypatch.setattr(mod, "train", spy)
    X2 = np.hstack([X, X[:, :1]])  # new feature count and new classes
    clf.fit(X2, np.where(y == 2, 1, y))
    assert all(seen[0][k] is old.get(k) for k in mod._FITTED)
    assert clf.n_features_in_ == X2.shape[1] and len(clf.classes_) == 2


def test_dataframe_categorical_columns_are_one_hot_encoded():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], size=90)
    size = rng.normal(size=90)
    y = (colour == "red").astype(int)  # the label is in the categorical column only
    X = pd.DataFrame(
        {"size": size, "colour": pd.Categorical(colour), "kind": colour.astype(object)}
    )
    clf = fit(X, y, max_iter=40)
    assert clf.n_features_in_ == 3
    assert list(clf.feature_names_in_) == ["size", "colour", "kind"]
    assert sorted(clf.categories_) == [1, 2]
    assert clf.score(X, y) == 1.0
    unseen = X.iloc[:2].copy()
    unseen["kind"] = ["violet", None]  # unseen and missing categories: all-zero one-hot
    assert np.isfinite(clf.predict_proba(unseen)).all()
    with pytest.raises(ValueError, match="categorical"):
        clf.predict(X.to_numpy()[:, [0]].astype(float).repeat(3, axis=1))


def _coded_table(n=200, seed=0):
    # a code column (4 values, stored as scaled integers), a binary one, a continuous one
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 4, size=n)
    X = np.c_[0.5 * code - 0.7, rng.integers(0, 2, size=n), rng.normal(size=n)]
    return X, (code == 2).astype(int)  # the label is one value of the code: not monotone


def test_numeric_columns_that_read_as_codes_are_one_hot_encoded():
    from skhop._columns import code_columns, value_codes

    X, y = _coded_table()
    clf = fit(X, y)
    assert list(clf.code_columns_) == [0]  # 2 values are no code, many values neither
    values = clf.code_columns_[0]
    np.testing.assert_array_equal(values, 0.5 * np.arange(4) - 0.7)
    assert clf.module_.input_size == 4 + 1 + 1
    assert clf.score(X, y) == 1.0
    off = fit(X, y, categorical_features="from_dtype")
    assert off.code_columns_ == {} and off.module_.input_size == 3
    # a value fit never saw encodes as all zeros, as an unseen category does
    rows = np.array([[values[2], 0.0, 0.0], [values[2] + 0.01, 0.0, 0.0]])
    np.testing.assert_array_equal(value_codes(rows, clf.code_columns_)[:, 0], [2, -1])
    assert np.isfinite(clf.predict_proba(rows)).all()
    # rows of weight 0 are not looked at, and the weights count the rows
    w = np.ones(len(X))
    w[:3] = 0
    Xw = X.copy()
    Xw[:3, 0] = [5.0, 6.0, 7.0]  # 7 values with these rows, 4 without
    assert len(code_columns(Xw, w, {})[0]) == 4
    assert code_columns(X[:25], np.ones(25), {}) == {}  # 25 rows < 5 per each of 6 columns
    assert list(code_columns(X[:25], np.full(25, 2.0), {})) == [0]  # 50 rows by weight
    # the columns a DataFrame declares categorical are left to their own encoding
    assert code_columns(X, np.ones(len(X)), {0: np.array(["a", "b"])}) == {}


def test_code_columns_in_blocks_equal_one_block(monkeypatch):
    import skhop._columns as columns

    rng = np.random.default_rng(0)
    X = np.c_[rng.integers(0, 4, (1000, 30)), rng.normal(size=(1000, 5))]
    whole = columns.code_columns(X, np.ones(1000), {5: np.array(["a"])})
    monkeypatch.setattr(columns, "_BLOCK_ELEMENTS", 1500)  # one column a block
    blocks = columns.code_columns(X, np.ones(1000), {5: np.array(["a"])})
    assert len(whole) == 29 and 5 not in whole and list(whole) == list(blocks)
    assert all(np.array_equal(whole[j], blocks[j]) for j in whole)


def test_code_columns_follow_weights_as_repetitions():
    X, y = _coded_table(n=60)
    w = np.random.default_rng(1).integers(0, 3, size=60).astype(float)
    est = HopfieldClassifier(**{**FAST, "batch_size": 1000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = clone(est).fit(X, y, sample_weight=w)
        keep = np.repeat(np.arange(60), w.astype(int))
        b = clone(est).fit(X[keep], y[keep])
    assert list(a.code_columns_) == list(b.code_columns_) == [0]
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-8)


@pytest.mark.parametrize("block", [1, 7, 65536])
def test_row_groups_are_the_unique_rows_with_their_label(block):
    from skhop._supervised import row_groups

    rng = np.random.default_rng(0)
    Z = rng.integers(0, 3, size=(300, 4)).astype(float)
    Z[::5] = Z[0]  # many copies of one row, some with another label
    y = rng.integers(0, 2, 300)
    Z[7] = -0.0 * Z[7]  # -0.0 equals 0.0, as np.unique has it
    expected = np.unique(np.column_stack([Z, y]), axis=0, return_inverse=True)[1].ravel()
    np.testing.assert_array_equal(row_groups(Z, y, block=block), expected)


def test_key_draw_keeps_groups_together_at_the_given_share():
    from skhop.nn import RowHopfieldLayer

    net = RowHopfieldLayer(3, 400, 2, 4, dtype="float64")
    groups = torch.arange(400) // 4  # 100 groups of 4 rows
    torch.manual_seed(0)
    counts = torch.zeros(400)
    for _ in range(200):
        kept = torch.zeros(400, dtype=torch.bool)
        kept[net._draw_keys(0.7, groups)] = True
        # the rows of a group are kept or left out together
        assert torch.equal(kept.view(100, 4).all(1), kept.view(100, 4).any(1))
        counts += kept
    share = counts / 200
    # each group kept with probability 0.7: binomial(200, 0.7), 5 standard deviations
    assert ((share - 0.7).abs() < 5 * (0.7 * 0.3 / 200) ** 0.5).all()


def test_sampled_training_loss_is_the_loss_over_the_drawn_keys():
    from skhop.nn import RowHopfieldLayer

    torch.manual_seed(0)
    net = RowHopfieldLayer(5, 30, 3, 4, dtype="float64")
    rows, labels = torch.randn(30, 5, dtype=torch.float64), torch.arange(30) % 3
    mass = torch.rand(30, dtype=torch.float64) + 0.5
    net.store_(rows, labels, mass)
    own = torch.full((30,), -np.inf, dtype=torch.float64)
    weights = torch.rand(30, dtype=torch.float64)
    for idx in (torch.arange(30), torch.tensor([3, 7, 8, 20])):
        torch.manual_seed(1)
        loss = net.training_loss(idx, labels[idx], weights[idx], own, key_share=0.5)
        torch.manual_seed(1)
        keys_idx = net._draw_keys(0.5, None)
        assert 0 < len(keys_idx) < 30
        keep = torch.isin(torch.arange(30), keys_idx)
        with torch.no_grad():
            nll = []
            for i in idx.tolist():  # row i retrieves from the drawn keys, itself left out
                sel = keep & (torch.arange(30) != i)
                log_p = net.log_proba_from(
                    net.embed(rows[i : i + 1]), net.embed(rows[sel]), labels[sel], mass[sel].log()
                )
                nll.append(-log_p[0, labels[i]])
            expected = torch.stack(nll).dot(weights[idx]) / weights[idx].sum()
        torch.testing.assert_close(loss.detach(), expected)


def test_a_query_that_sees_no_key_reads_the_uniform_distribution():
    from skhop.nn import RowHopfieldLayer

    net = RowHopfieldLayer(2, 3, 4, 2, floor=0.0, dtype="float64")
    keys = torch.randn(1, 3, 2, dtype=torch.float64)
    log_p = net.log_proba_from(
        keys,
        keys,
        torch.tensor([0, 1, 1]),
        torch.zeros(3, dtype=torch.float64),
        mask=torch.full((3, 3), -np.inf, dtype=torch.float64),
    )
    torch.testing.assert_close(log_p, torch.full((3, 4), -np.log(4.0), dtype=torch.float64))


def test_n_memories_as_a_count_or_a_share(data):
    X, y = data  # 120 rows
    share = fit(X, y, n_memories=0.5).predict_proba(X)
    np.testing.assert_array_equal(fit(X, y, n_memories=60).predict_proba(X), share)
    # all rows, as a count or a share: no draw at all
    every = fit(X, y, n_memories=1.0).predict_proba(X)
    np.testing.assert_array_equal(fit(X, y, n_memories=500).predict_proba(X), every)
    assert not np.allclose(every, share)
    for bad in (0.0, 1.5, -3, "all"):
        with pytest.raises(ValueError, match="n_memories"):
            HopfieldClassifier(n_memories=bad).fit(X, y)


def test_cut_short_reads_a_trend_not_the_noise_of_the_draws():
    from skhop._training import TrainResult
    from skhop._training import cut_short_schedule as _cut_short

    def result(curve):
        return TrainResult(loss_curve=list(curve), n_iter=len(curve))

    rng = np.random.default_rng(0)
    # flat curves with the draws' noise only, Gaussian or with spikes: about one
    # in a hundred is a cut (the endpoints' fall would call 83 of these 200 cut
    # short, a least-squares slope over twice its standard error 9 of each kind)
    plateaus = 0.5 + 0.02 * rng.standard_normal((200, 30))
    assert sum(_cut_short(result(c), 30, 1e-4) for c in plateaus) <= 6
    spiky = 0.2 + 0.02 * rng.standard_t(1.5, (200, 30))
    assert sum(_cut_short(result(c), 30, 1e-4) for c in spiky) <= 6
    # a plateau whose draws spiked early in the last fifth: no trend
    spiked = [0.5] * 22 + [0.099, 0.271, 0.226, 0.267, 0.139, 0.246, 0.099, 0.091]
    assert not _cut_short(result(spiked), 30, 1e-4)
    # a steady fall is a cut, through noise up to a few tenths of its step
    for noise in (0.002, 0.005):
        falls = np.linspace(1.0, 0.5, 30) + noise * rng.standard_normal((20, 30))
        assert all(_cut_short(result(c), 30, 1e-4) for c in falls)
    falling = np.linspace(1.0, 0.5, 30) + 0.002 * rng.standard_normal(30)
    # a fall smaller than 10 * tol an epoch is not a cut
    assert not _cut_short(result(falling), 30, 1e-2)
    # fewer than 5 epochs: the fall from the first to the last decides
    assert _cut_short(result([1.0, 0.9]), 2, 1e-4)
    assert _cut_short(result([1.0, 0.95, 0.97, 0.9]), 4, 1e-4)
    assert not _cut_short(result([1.0, 1.0]), 2, 1e-4)


def test_default_fit_on_many_batches_emits_no_warning():
    # several batches an epoch, each epoch's loss on its own draws of keys
    X, y = make_classification(
        n_samples=600, n_features=10, n_classes=3, n_informative=5, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HopfieldClassifier(random_state=0).fit(X, y)
