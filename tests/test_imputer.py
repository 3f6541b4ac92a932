import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.impute import KNNImputer, MissingIndicator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import nan_euclidean_distances
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skhop import HopfieldImputer
from skhop.nn import masked
from skhop.nn.functional import hopfield_retrieve


def _data(n=60, d=5, rate=0.2, seed=0):
    rng = np.random.RandomState(seed)
    latent = rng.randn(n, 2)
    X = latent @ rng.randn(2, d) + 0.3 * rng.randn(n, d)
    Xm = X.copy()
    Xm[rng.rand(n, d) < rate] = np.nan
    return X, Xm


def _fixed(**kw):
    # no training: a fixed beta and uniform weights, for exact comparisons
    kw.setdefault("beta", 0.7)
    kw.setdefault("feature_weights", "uniform")
    return HopfieldImputer(**kw)


def test_observed_entries_come_back_bit_identical():
    _, Xm = _data()
    for dtype in (np.float64, np.float32):
        Xd = Xm.astype(dtype)
        out = HopfieldImputer(random_state=0, max_iter=5).fit(Xd).transform(Xd)
        assert out.dtype == dtype
        obs = ~np.isnan(Xd)
        assert np.array_equal(out[obs], Xd[obs])
        assert np.isfinite(out).all()


def test_matches_naive_reference_with_missing_memory_entries():
    # every missing entry: softmax over the training rows that observe its column,
    # scored by -beta/2 * squared nan-Euclidean distance (sklearn's scaling)
    _, Xm = _data(n=30, d=4, rate=0.25, seed=1)
    beta = 0.4
    out = _fixed(beta=beta, standardize=False).fit(Xm).transform(Xm)
    d2 = nan_euclidean_distances(Xm, Xm) ** 2
    ref = Xm.copy()
    for i, j in zip(*np.nonzero(np.isnan(Xm)), strict=True):
        donors = np.flatnonzero(~np.isnan(Xm[:, j]) & np.isfinite(d2[i]))
        s = -0.5 * beta * d2[i, donors]
        w = np.exp(s - s.max())
        ref[i, j] = w @ Xm[donors, j] / w.sum()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_masking_an_entry_equals_removing_that_coordinate():
    X, _ = _data(n=40, d=6, seed=2)
    memory, queries = X[:30], X[30:].copy()
    queries[:, 2] = np.nan  # hidden coordinate
    queries[:, 5] = np.nan  # the one to fill
    keep = [0, 1, 3, 4, 5]
    for similarity, factor in (("cosine", 1.0), ("neg_l2", 6 / 5), ("dot", 6 / 5)):
        # neg_l2 and dot are rescaled by d / n_observed, so dropping a column changes d
        full = _fixed(beta=0.5, similarity=similarity, standardize=False).fit(memory)
        drop = _fixed(beta=0.5 * factor, similarity=similarity, standardize=False).fit(
            memory[:, keep]
        )
        np.testing.assert_allclose(
            full.transform(queries)[:, 5], drop.transform(queries[:, keep])[:, 4], rtol=1e-4
        )


def test_complete_memories_agree_with_the_core_masked_query():
    X, _ = _data(n=50, d=6, seed=3)
    queries = X[:10].copy() + 0.1
    hidden = np.random.RandomState(0).rand(*queries.shape) < 0.3
    queries[hidden] = np.nan
    imp = _fixed(beta=0.9, similarity="cosine", standardize=False).fit(X)
    core = hopfield_retrieve(
        torch.tensor(queries), torch.tensor(X), beta=0.9, similarity="cosine", query_mask="nan"
    ).numpy()
    np.testing.assert_allclose(imp.transform(queries), core, rtol=1e-4, atol=1e-5)


def test_stored_row_with_hidden_entries_is_completed_exactly_at_large_beta():
    memory = load_digits().data[:300]
    rng = np.random.RandomState(0)
    queries = memory.copy()
    queries[rng.rand(*queries.shape) < 0.4] = np.nan
    imp = _fixed(beta=1e3).fit(memory)
    np.testing.assert_allclose(imp.transform(queries), memory, atol=1e-3)


def test_defaults_complete_half_hidden_digits_to_the_right_stored_image():
    memory = load_digits().data[:500]
    queries = memory.copy()
    queries[:, 32:] = np.nan  # the lower half of each image
    out = HopfieldImputer(random_state=0, max_iter=10).fit(memory).transform(queries)
    nearest = ((out[:, None, :] - memory[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == np.arange(500)).mean() >= 0.97


def test_top1_equals_knn_imputer_with_one_neighbour():
    _, Xm = _data(n=40, d=5, rate=0.2, seed=4)
    ours = _fixed(separation="topk", top_k=1, standardize=False).fit(Xm).transform(Xm)
    knn = KNNImputer(n_neighbors=1).fit(Xm).transform(Xm)
    np.testing.assert_allclose(ours, knn, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("separation", ["sparsemax", "entmax15", "topk"])
def test_sparse_separations_fill_within_the_observed_range(separation):
    _, Xm = _data(seed=5)
    out = (
        HopfieldImputer(separation=separation, top_k=5, random_state=0, max_iter=3)
        .fit(Xm)
        .transform(Xm)
    )
    lo, hi = np.nanmin(Xm, 0), np.nanmax(Xm, 0)
    assert np.all((out >= lo - 1e-6) & (out <= hi + 1e-6))


def test_chunking_does_not_change_the_result():
    _, Xm = _data(seed=6)
    a = _fixed(batch_size=1).fit(Xm).transform(Xm)
    b = _fixed().fit(Xm).transform(Xm)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rows_with_nothing_observed_get_column_means():
    _, Xm = _data(seed=7)
    imp = HopfieldImputer(random_state=0, max_iter=3).fit(Xm)
    out = imp.transform(np.full((2, Xm.shape[1]), np.nan))
    np.testing.assert_allclose(out, np.tile(np.nanmean(Xm, 0), (2, 1)))
    np.testing.assert_allclose(imp.statistics_, np.nanmean(Xm, 0))


def test_empty_features_dropped_or_kept_and_named():
    _, Xm = _data(seed=8)
    Xm[:, 1] = np.nan
    dropped = _fixed().fit(Xm)
    assert dropped.transform(Xm).shape[1] == Xm.shape[1] - 1
    assert list(dropped.get_feature_names_out()) == ["x0", "x2", "x3", "x4"]
    kept = _fixed(keep_empty_features=True).fit(Xm)
    out = kept.transform(Xm)
    assert out.shape == Xm.shape and np.all(out[:, 1] == 0)
    np.testing.assert_allclose(np.delete(out, 1, axis=1), dropped.transform(Xm))


def test_add_indicator_appends_the_missing_indicator():
    _, Xm = _data(seed=9)
    imp = _fixed(add_indicator=True).fit(Xm)
    out = imp.transform(Xm)
    ind = MissingIndicator().fit(Xm)
    np.testing.assert_array_equal(out[:, Xm.shape[1] :], ind.transform(Xm))
    names = imp.get_feature_names_out()
    assert len(names) == out.shape[1] and names[-1].startswith("missingindicator_")


def test_numeric_missing_value_placeholder_matches_nan():
    _, Xm = _data(seed=10)
    Xc = np.where(np.isnan(Xm), -999.0, Xm)
    a = _fixed().fit(Xm).transform(Xm)
    b = _fixed(missing_values=-999.0).fit(Xc).transform(Xc)
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError):
        _fixed(missing_values=-999.0).fit(Xm)  # NaN is not the placeholder here


def test_standardizing_makes_the_fill_unit_free():
    _, Xm = _data(seed=11)
    scaled = Xm * np.array([1.0, 1000.0, 0.01, 1.0, 50.0])
    a = HopfieldImputer(random_state=0, max_iter=5).fit_transform(Xm)
    b = HopfieldImputer(random_state=0, max_iter=5).fit_transform(scaled)
    np.testing.assert_allclose(
        b / np.array([1.0, 1000.0, 0.01, 1.0, 50.0]), a, rtol=1e-3, atol=1e-4
    )


def test_learned_weights_downweight_a_noise_feature():
    rng = np.random.RandomState(12)
    t = rng.rand(300) * 6
    X = np.c_[np.sin(t), np.cos(t), t / 3, rng.randn(300) * 3]  # last column: noise
    Xm = X.copy()
    Xm[rng.rand(*X.shape) < 0.2] = np.nan
    imp = HopfieldImputer(random_state=0).fit(Xm)
    w = imp.feature_weights_
    assert w[3] < w[:3].min() and w[3] < 0.5  # weights have mean 1
    err = np.sqrt(np.mean((imp.transform(Xm)[:, :3] - X[:, :3])[np.isnan(Xm[:, :3])] ** 2))
    uni = HopfieldImputer(random_state=0, feature_weights="uniform").fit_transform(Xm)
    err_uniform = np.sqrt(np.mean((uni[:, :3] - X[:, :3])[np.isnan(Xm[:, :3])] ** 2))
    assert err < err_uniform


def test_refit_is_identical_and_global_rng_untouched():
    _, Xm = _data(seed=13)
    torch.manual_seed(0)
    np.random.seed(0)
    expect_t, expect_np = torch.rand(1), np.random.rand()
    torch.manual_seed(0)
    np.random.seed(0)
    a = HopfieldImputer(random_state=3, max_iter=5).fit(Xm)
    b = HopfieldImputer(random_state=3, max_iter=5).fit(Xm)
    assert torch.rand(1) == expect_t and np.random.rand() == expect_np
    assert a.beta_ == b.beta_
    np.testing.assert_array_equal(a.transform(Xm), b.transform(Xm))


def test_pickle_round_trip():
    _, Xm = _data(seed=14)
    imp = HopfieldImputer(random_state=0, max_iter=5).fit(Xm)
    back = pickle.loads(pickle.dumps(imp))
    np.testing.assert_array_equal(back.transform(Xm), imp.transform(Xm))


def test_stage_i_feature_map_option():
    _, Xm = _data(seed=15)
    imp = HopfieldImputer(feature_dim=3, separation_loss="lse", max_iter=5, random_state=0).fit(Xm)
    out = imp.transform(Xm)
    assert imp.feature_map_ is not None and np.isfinite(out).all()
    assert np.array_equal(out[~np.isnan(Xm)], Xm[~np.isnan(Xm)])
    back = pickle.loads(pickle.dumps(imp))
    np.testing.assert_array_equal(back.transform(Xm), out)


def test_pandas_output_and_pipeline_grid_search():
    pd = pytest.importorskip("pandas")
    X, Xm = _data(n=80, seed=16)
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    df = pd.DataFrame(Xm, columns=list("abcde"))
    out = _fixed().set_output(transform="pandas").fit_transform(df)
    assert list(out.columns) == list("abcde") and not out.isna().any().any()
    pipe = make_pipeline(HopfieldImputer(max_iter=3, random_state=0), LogisticRegression())
    search = GridSearchCV(pipe, {"hopfieldimputer__similarity": ["neg_l2", "cosine"]}, cv=2)
    assert search.fit(Xm, y).best_score_ > 0.6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_with_hopfield_classifier():
    from skhop import HopfieldClassifier

    X, Xm = _data(n=80, seed=17)
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    pipe = make_pipeline(
        HopfieldImputer(max_iter=3, random_state=0), HopfieldClassifier(max_iter=20, random_state=0)
    )
    assert pipe.fit(Xm, y).score(Xm, y) > 0.7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(separation="topk"), "top_k"),
        (dict(feature_dim=2, feature_weights="learned"), "feature_weights"),
        (dict(device="tpu"), "device"),
        (dict(n_threads=0), "n_threads"),
        (dict(beta=-1.0), "beta"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    _, Xm = _data()
    with pytest.raises(ValueError, match=match):
        HopfieldImputer(**kwargs).fit(Xm)


def test_interrupted_refit_leaves_the_fitted_state(monkeypatch):
    import skhop._impute_fit as module

    _, Xm = _data(seed=18)
    imp = HopfieldImputer(random_state=0, max_iter=5).fit(Xm)
    before = imp.transform(Xm)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_learn_weights", interrupt)
    with pytest.raises(KeyboardInterrupt):
        imp.fit(Xm[:30] * 2.0)
    np.testing.assert_array_equal(imp.transform(Xm), before)


def test_more_steps_and_auto_device_keep_observed_entries():
    _, Xm = _data(seed=19)
    out = (
        HopfieldImputer(n_steps=3, device="auto", random_state=0, max_iter=3).fit(Xm).transform(Xm)
    )
    obs = ~np.isnan(Xm)
    assert np.array_equal(out[obs], Xm[obs]) and np.isfinite(out).all()


def test_float16_input_is_computed_in_float32_and_statistics_in_float64():
    # sums of 200 values near 1000 overflow float16 (max 65504)
    rng = np.random.RandomState(20)
    X = (1000.0 + 10.0 * rng.randn(200, 3)).astype(np.float16)
    X[rng.rand(200, 3) < 0.2] = np.nan
    imp = HopfieldImputer(random_state=0, max_iter=3).fit(X)
    ref = np.nanmean(X.astype(np.float64), axis=0)
    np.testing.assert_allclose(imp.statistics_, ref, rtol=1e-12)
    assert np.isfinite(imp.scale_).all() and (imp.scale_ > 1.0).all()
    out = imp.transform(np.full((1, 3), np.nan, dtype=np.float16))
    np.testing.assert_allclose(out[0], ref, rtol=1e-3)  # float16 rounding of the output
    filled = imp.transform(X)
    assert np.isfinite(filled).all() and np.abs(filled - 1000.0).max() < 100.0


def test_chunk_size_never_changes_the_chosen_beta_or_the_fills():
    _, Xm = _data(n=80, d=5, rate=0.3, seed=21)
    ref = HopfieldImputer(random_state=0, max_iter=0).fit(Xm)
    for chunk in (1, 7, 200):
        imp = HopfieldImputer(random_state=0, max_iter=0, batch_size=chunk).fit(Xm)
        assert imp.beta_ == pytest.approx(ref.beta_, rel=1e-6)
        assert imp.sharpen_ == ref.sharpen_
        np.testing.assert_allclose(imp.transform(Xm), ref.transform(Xm), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "fitted, change",
    [
        ({}, {"similarity": "cosine"}),
        ({}, {"separation": "sparsemax"}),
        ({}, {"n_steps": 3}),
        ({}, {"missing_values": -1.0}),
        ({"separation": "topk", "top_k": 5}, {"top_k": 1}),
    ],
)
def test_transform_uses_what_fit_decided_not_changed_parameters(fitted, change):
    _, Xm = _data(seed=22)
    imp = HopfieldImputer(random_state=0, max_iter=3, **fitted).fit(Xm)
    before = imp.transform(Xm)
    imp.set_params(**change)
    np.testing.assert_array_equal(imp.transform(Xm), before)


def test_concurrent_transform_during_refits_sees_one_model():
    import threading

    _, Xa = _data(n=60, d=4, seed=23)
    _, Xb = _data(n=40, d=4, seed=24)
    Xb = Xb * 5.0 + 3.0
    query = Xa[:10].copy()
    imp = HopfieldImputer(random_state=0, max_iter=2)
    expected = [imp.fit(X).transform(query) for X in (Xa, Xb)]
    stop = threading.Event()
    outputs = []

    def read():
        while not stop.is_set():
            outputs.append(imp.transform(query))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(12):
            imp.fit((Xa, Xb)[i % 2])
    finally:
        stop.set()
        reader.join()
    assert outputs
    for out in outputs:
        assert any(np.array_equal(out, e) for e in expected)


def test_verbose_prints_beta_and_epochs(capsys):
    _, Xm = _data(seed=25)
    HopfieldImputer(random_state=0, max_iter=3, verbose=1).fit(Xm)
    text = capsys.readouterr().out
    assert "beta =" in text and "Iteration 1, loss" in text
    HopfieldImputer(random_state=0, max_iter=3).fit(Xm)
    assert capsys.readouterr().out == ""


def _mixed_frame(n=150, seed=26):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(seed)
    group = rng.randint(0, 3, n)
    frame = pd.DataFrame(
        {
            "a": group * 2.0 + 0.2 * rng.randn(n),
            "b": (-group + 0.2 * rng.randn(n)).astype(np.float32),
            "colour": np.array(["red", "green", "blue"], dtype=object)[group],
            "size": pd.Categorical(np.array(["S", "M", "L"])[group], categories=["S", "M", "L"]),
        }
    )
    truth = frame.copy()
    hide = rng.rand(n, 4) < 0.25
    for j, name in enumerate(frame.columns):
        frame.loc[hide[:, j], name] = np.nan if j < 2 else None
    return frame, truth, hide


def test_mixed_frame_fills_categories_by_vote_and_keeps_dtypes():
    pd = pytest.importorskip("pandas")
    frame, truth, hide = _mixed_frame()
    imp = HopfieldImputer(random_state=0, max_iter=5).set_output(transform="pandas")
    out = imp.fit_transform(frame)
    assert list(out.columns) == list(frame.columns)
    assert list(out.dtypes) == list(frame.dtypes)
    assert not out.isna().any().any()
    for j, name in enumerate(frame.columns):
        obs = ~hide[:, j]
        assert (out[name][obs] == frame[name][obs]).all()  # observed entries unchanged
    for j in (2, 3):
        name = frame.columns[j]
        acc = (out[name][hide[:, j]] == truth[name][hide[:, j]]).mean()
        top = truth[name].value_counts(normalize=True).iloc[0]
        assert acc > top + 0.3  # far above the most-frequent fill
    assert set(imp.categories_[2]) == {"red", "green", "blue"} and imp.categories_[0] is None
    plain = HopfieldImputer(random_state=0, max_iter=5).fit(frame).transform(frame)
    assert plain.dtype == object and plain.shape == frame.shape
    with pytest.raises(ValueError, match="not seen in fit"):
        imp.transform(pd.DataFrame({**frame, "colour": ["pink"] * len(frame)}))
    with pytest.raises(ValueError, match="missing_values must be np.nan"):
        HopfieldImputer(missing_values=-1).fit(frame)


def test_sample_posterior_draws_are_seeded_donor_values_plus_calibrated_noise():
    _, Xm = _data(n=50, d=4, rate=0.3, seed=27)
    draws = [
        HopfieldImputer(random_state=s, max_iter=3, sample_posterior=True).fit_transform(Xm)
        for s in (0, 0, 1)
    ]
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    miss = np.isnan(Xm)
    assert np.array_equal(draws[0][~miss], Xm[~miss])
    auto = HopfieldImputer(random_state=0, max_iter=3, sample_posterior=True).fit(Xm)
    assert auto._posterior_noise.shape == (4,) and (auto._posterior_noise >= 0).all()
    # a given beta is calibrated too; without the noise each draw is a stored row's value
    fixed = _fixed(beta=1.0, sample_posterior=True, random_state=0).fit(Xm)
    assert fixed._posterior_beta in {f * 1.0 for f in masked.POSTERIOR_FACTORS}
    fixed._posterior_noise = np.zeros(4)
    out = fixed.transform(Xm)
    for j in range(Xm.shape[1]):
        donors = Xm[~miss[:, j], j]
        gaps = np.abs(out[miss[:, j], j][:, None] - donors[None]).min(1)
        assert gaps.max() < 1e-5 * (1 + np.abs(donors).max())


def test_mixed_frame_with_indicator_and_empty_features():
    pd = pytest.importorskip("pandas")
    frame, _, hide = _mixed_frame(n=60, seed=28)
    frame["empty"] = np.nan
    imp = HopfieldImputer(random_state=0, max_iter=2, add_indicator=True)
    out = imp.set_output(transform="pandas").fit_transform(frame)
    assert "empty" not in out.columns
    ind = out[[c for c in out.columns if c.startswith("missingindicator_")]].to_numpy()
    np.testing.assert_array_equal(ind[:, :4], hide)
    kept = HopfieldImputer(random_state=0, max_iter=2, keep_empty_features=True)
    full = kept.set_output(transform="pandas").fit_transform(frame)
    assert list(full.columns) == list(frame.columns) and (full["empty"] == 0).all()
    assert isinstance(full, pd.DataFrame)


def _central_coverage(draws, truth, level):
    # share of the truths whose rank among the draws lies in the central band (no ties)
    u = ((draws < truth).sum(0) + 0.5) / (draws.shape[0] + 1)
    return float((np.abs(u - 0.5) <= level / 2).mean())


def test_sample_posterior_draws_cover_the_removed_values_at_the_nominal_rate():
    rng = np.random.RandomState(31)
    z = rng.randn(400, 2)
    X = np.c_[z, z @ rng.randn(2, 3)] + 0.5 * rng.randn(400, 5)
    hide = rng.rand(*X.shape) < 0.3
    Xm = np.where(hide, np.nan, X)
    imp = HopfieldImputer(random_state=0, max_iter=5, sample_posterior=True).fit(Xm)

    def coverage(level):
        draws = np.stack([imp.set_params(random_state=s).transform(Xm)[hide] for s in range(39)])
        return _central_coverage(draws, X[hide], level)

    assert abs(coverage(0.8) - 0.8) < 0.06 and abs(coverage(0.5) - 0.5) < 0.06
    # draws from the nearest stored rows only (a far colder posterior, no noise) are not
    imp._posterior_noise, imp._posterior_beta = np.zeros(5), imp.beta_ * 16
    assert coverage(0.8) < 0.74
