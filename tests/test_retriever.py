import math
import pickle
import sys

import numpy as np
import pytest
import torch
from numerics import retrieval_atol, sum_tol

from skhop import KernelHopfieldRetriever
from skhop._kernel import (
    AUTO_BETA_EPS,
    FeatureMap,
    auto_beta,
    fit_feature_map,
    min_separation,
    nearest_rival,
    scale_statistic,
    scale_threshold,
    separation_loss_value,
)
from skhop.nn.functional import hopfield_retrieve, similarity_scores

STAGE_I = dict(separation_loss="lse", max_iter=30, learning_rate=0.05, random_state=0)


@pytest.fixture(scope="module")
def patterns():
    return np.random.RandomState(0).randn(60, 16)


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.RandomState(1)
    return rng.randn(80, 12) * 0.3 + rng.randn(12) * 2.0


# ---------------------------------------------------------------- Stage I module


def test_feature_map_is_linear_and_rebuildable():
    fmap = FeatureMap(5, 3)
    x = torch.randn(4, 5)
    torch.testing.assert_close(fmap(x), x @ fmap.weight.T)
    assert fmap._skhop_init_args == ((5, 3), {})


def test_stage_one_lowers_its_loss_and_raises_separation(correlated):
    X = torch.from_numpy(correlated).float()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        phi, curve = fit_feature_map(
            X, feature_dim=12, separation_loss="lse", tau=0.1, max_iter=40, learning_rate=0.05
        )
    assert curve[-1] < curve[0]
    assert min_separation(phi(X)) > min_separation(X) + 0.1
    assert not any(p.requires_grad for p in phi.parameters())


@pytest.mark.parametrize("loss", ["lse", "uniformity", "min_sep"])
def test_losses_are_in_cosine_units(loss):
    z = torch.randn(20, 6, requires_grad=True)
    c = torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(z, dim=1).T
    off = c[~torch.eye(20, dtype=torch.bool)]
    value = separation_loss_value(z, loss, tau=0.05)
    # a smooth or hard maximum of the cosines: between their mean and their max (+ slack)
    assert off.mean() - 1e-5 <= value <= off.max() + 1e-5
    value.backward()
    assert torch.isfinite(z.grad).all()


def test_stage_one_batches_bound_pair_matrix():
    X = torch.randn(300, 8)
    calls = []
    orig = torch.Tensor.__matmul__

    def spy(a, b):
        out = orig(a, b)
        if out.dim() == 2:
            calls.append(out.shape)
        return out

    torch.Tensor.__matmul__ = spy
    try:
        fit_feature_map(
            X,
            feature_dim=4,
            separation_loss="lse",
            tau=0.1,
            max_iter=2,
            learning_rate=0.01,
            batch_size=50,
        )
    finally:
        torch.Tensor.__matmul__ = orig
    assert max(s[0] * s[1] for s in calls if s[1] != 4) <= 50 * 50


def test_no_stage_one_initial_maps():
    X = torch.randn(40, 6)
    ident, curve = fit_feature_map(
        X, feature_dim=None, separation_loss=None, tau=0.1, max_iter=10, learning_rate=0.1
    )
    assert curve == []
    torch.testing.assert_close(ident.weight, torch.eye(6))
    pca, _ = fit_feature_map(
        X, feature_dim=3, separation_loss=None, tau=0.1, max_iter=10, learning_rate=0.1
    )
    w = pca.weight
    torch.testing.assert_close(w @ w.T, torch.eye(3), atol=1e-5, rtol=0)
    # the top principal directions keep more energy than any other 3 coordinates
    assert (X @ w.T).pow(2).sum() >= X.pow(2).sum(0).topk(3).values.sum() - 1e-4


def test_min_separation_known_codes():
    assert min_separation(torch.eye(4)) == pytest.approx(math.pi / 2)
    assert min_separation(torch.ones(1, 3)) == pytest.approx(math.pi)
    assert min_separation(torch.tensor([[1.0, 0.0], [2.0, 0.0]])) == pytest.approx(0.0, abs=1e-3)
    X = torch.randn(300, 5)
    exact = min_separation(X)
    sampled = min_separation(X, max_rows=50)
    assert sampled >= exact - 1e-6  # an estimate from anchors can only be larger


@pytest.mark.parametrize("similarity", ["cosine", "dot", "neg_l2"])
def test_nearest_rival_blocks_equal_brute_force(similarity):
    X = torch.randn(70, 5)
    S = similarity_scores(X, X, similarity)
    own_ref = S.diagonal().clone()
    rival_ref = S.masked_fill(torch.eye(70, dtype=torch.bool), float("-inf")).amax(1)
    own, rival = nearest_rival(X, similarity, chunk_size=9)
    tol = sum_tol(torch.float32, 5, scale=float((X**2).sum(1).max()))
    torch.testing.assert_close(own, own_ref, **tol)
    torch.testing.assert_close(rival, rival_ref, **tol)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_auto_beta_makes_stored_patterns_fixed_points(patterns, similarity):
    X = torch.from_numpy(patterns).float()
    beta = auto_beta(X, similarity)
    assert math.isfinite(beta) and beta > 0
    _, attn = hopfield_retrieve(X, X, beta=beta, similarity=similarity, return_attention=True)
    assert attn.diagonal().min() >= 1 - 1.5e-3
    dup = torch.cat([X, X[:1]])
    assert math.isfinite(auto_beta(dup, similarity))


# ---------------------------------------------------------------- estimator


@pytest.mark.parametrize(
    "params",
    [{}, {"similarity": "dot"}, {"similarity": "neg_l2"}, STAGE_I, {"feature_dim": 8, **STAGE_I}],
)
def test_stored_patterns_are_fixed_points(patterns, params):
    ret = KernelHopfieldRetriever(**params).fit(patterns)
    out = ret.transform(patterns)
    scale = np.abs(patterns).max()
    np.testing.assert_allclose(out, patterns, atol=5e-3 * scale)
    np.testing.assert_array_equal(
        ret.kneighbors(patterns, return_distance=False)[:, 0], np.arange(len(patterns))
    )


@pytest.mark.parametrize("params", [{}, STAGE_I, {"similarity": "neg_l2"}, {"n_steps": 2}])
def test_half_masked_queries_are_recovered(params):
    rng = np.random.RandomState(2)
    X = rng.randn(100, 64)
    Q = X.copy()
    Q[rng.rand(*Q.shape) < 0.5] = np.nan
    ret = KernelHopfieldRetriever(**params).fit(X)
    assert ret.score(Q, np.arange(len(Q))) == 1.0
    np.testing.assert_array_equal(ret.kneighbors(Q, return_distance=False)[:, 0], np.arange(len(Q)))
    np.testing.assert_allclose(ret.transform(Q), X, atol=0.05)


def test_masked_entry_is_ignored_not_zeroed(patterns):
    # a query whose hidden half is filled with garbage: NaN ignores it, zeros would not
    q = patterns[:1].copy()
    q[0, :8] = np.nan
    ret = KernelHopfieldRetriever(similarity="cosine").fit(patterns)
    same = ret.transform(q)
    q2 = patterns[:1].copy()
    q2[0, :8] = 0.0
    mem = torch.from_numpy(patterns).float()
    ref = hopfield_retrieve(
        torch.from_numpy(q2).float(),
        mem,
        mem,
        beta=ret.beta_,
        similarity="cosine",
        query_mask=torch.arange(16) < 8,
    )
    np.testing.assert_allclose(same, ref.numpy(), atol=1e-5)


def test_noisy_queries_beat_zero_fill(patterns):
    rng = np.random.RandomState(3)
    Q = patterns + 0.5 * rng.randn(*patterns.shape)
    ret = KernelHopfieldRetriever().fit(patterns)
    assert ret.score(Q, np.arange(len(Q))) >= 0.95


def test_stage_one_raises_min_separation(correlated):
    plain = KernelHopfieldRetriever().fit(correlated)
    learned = KernelHopfieldRetriever(**STAGE_I).fit(correlated)
    assert learned.min_separation_ > plain.min_separation_ + 0.1
    assert learned.separation_loss_curve_[-1] < learned.separation_loss_curve_[0]
    assert learned.n_iter_ == len(learned.separation_loss_curve_) >= 1
    assert plain.n_iter_ == 0 and plain.separation_loss_curve_ == []


def test_refit_identical_and_global_rng_untouched(correlated):
    torch.manual_seed(123)
    np.random.seed(5)  # noqa: NPY002 (the global state must stay untouched)
    t_state, n_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = KernelHopfieldRetriever(**STAGE_I, feature_dim=5).fit(correlated)
    b = KernelHopfieldRetriever(**STAGE_I, feature_dim=5).fit(correlated)
    assert torch.equal(torch.get_rng_state(), t_state)
    assert np.random.get_state()[1].tolist() == n_state[1].tolist()  # noqa: NPY002
    np.testing.assert_array_equal(a.transform(correlated), b.transform(correlated))
    assert a.separation_loss_curve_ == b.separation_loss_curve_


def test_chunked_equals_unchunked(patterns):
    Q = patterns + 0.3 * np.random.RandomState(4).randn(*patterns.shape)
    whole = KernelHopfieldRetriever(beta=5.0).fit(patterns)
    chunked = KernelHopfieldRetriever(beta=5.0, chunk_size=7).fit(patterns)
    atol = retrieval_atol(np.float32, patterns, Q, 5.0)
    np.testing.assert_allclose(chunked.transform(Q), whole.transform(Q), rtol=0, atol=atol)
    np.testing.assert_array_equal(chunked.kneighbors(Q, 4)[1], whole.kneighbors(Q, 4)[1])


def test_kneighbors_matches_brute_force(patterns):
    Q = np.random.RandomState(5).randn(10, 16)
    ret = KernelHopfieldRetriever(similarity="cosine").fit(patterns)
    dist, ind = ret.kneighbors(Q, n_neighbors=5)
    Xn = patterns / np.linalg.norm(patterns, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    ref = np.argsort(-(Qn @ Xn.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ind, ref)
    assert np.all(np.diff(dist, axis=1) >= -1e-7)
    np.testing.assert_allclose(dist, 1 - np.take_along_axis(Qn @ Xn.T, ref, 1), atol=1e-5)
    assert ret.kneighbors(Q, 2, return_distance=False).shape == (10, 2)


def test_kneighbors_euclidean_matches_brute_force(patterns):
    Q = np.random.RandomState(5).randn(10, 16)
    dist, ind = KernelHopfieldRetriever(similarity="neg_l2").fit(patterns).kneighbors(Q, 3)
    d = np.linalg.norm(Q[:, None, :] - patterns[None], axis=2)
    np.testing.assert_array_equal(ind, np.argsort(d, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :3], rtol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_steps": 3, "beta": 2.0},
        {"similarity": "neg_l2"},
        {"similarity": "cosine"},
        {"n_steps": 2},
        {"separation": "topk", "top_k": 3, "beta": 2.0},
    ],
)
def test_approximate_equals_exact_when_candidates_cover_memory(patterns, params):
    pytest.importorskip("faiss")
    noisy = patterns[:40] + 0.5 * np.random.RandomState(6).randn(40, 16)
    Q = np.vstack([noisy, 0.2 * patterns[40:]])  # dimmed queries: the scaled model
    exact = KernelHopfieldRetriever(index="exact", **params).fit(patterns)
    approx = KernelHopfieldRetriever(
        index="approximate", n_candidates=60, n_probe=1000, **params
    ).fit(patterns)
    assert approx.index_ == "approximate" and exact.index_ == "exact"
    if approx.similarity == "auto":  # both models in play
        assert set(approx.query_similarity(Q)) == {"neg_l2", "cosine"}
        np.testing.assert_array_equal(approx.query_similarity(Q), exact.query_similarity(Q))
    np.testing.assert_allclose(approx.transform(Q), exact.transform(Q), atol=1e-4)
    np.testing.assert_array_equal(approx.kneighbors(Q, 3)[1], exact.kneighbors(Q, 3)[1])
    restored = pickle.loads(pickle.dumps(approx))
    np.testing.assert_allclose(restored.transform(Q), approx.transform(Q), atol=1e-6)


def test_missing_faiss_is_a_clear_import_error(patterns, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"skhop\[faiss\]"):
        KernelHopfieldRetriever(index="approximate").fit(patterns)
    assert KernelHopfieldRetriever(index="auto").fit(patterns).index_ == "exact"


def test_partial_fit_adds_memories(patterns):
    inc = KernelHopfieldRetriever().partial_fit(patterns[:30]).partial_fit(patterns[30:])
    full = KernelHopfieldRetriever().fit(patterns)
    np.testing.assert_array_equal(inc.memories_, full.memories_)
    assert inc.beta_ == pytest.approx(full.beta_)
    np.testing.assert_allclose(inc.transform(patterns), full.transform(patterns), atol=1e-6)
    with pytest.raises(ValueError, match="features"):
        inc.partial_fit(patterns[:, :5])


def test_set_output_pandas(patterns):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(patterns, columns=[f"p{i}" for i in range(16)])
    ret = KernelHopfieldRetriever().set_output(transform="pandas").fit(df)
    out = ret.transform(df.iloc[:5])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(ret.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(), patterns[:5], atol=1e-3)


def test_energy_does_not_increase_under_update(patterns):
    Q = patterns[:10] + 0.5 * np.random.RandomState(7).randn(10, 16)
    ret = KernelHopfieldRetriever(similarity="dot", beta=0.1).fit(patterns)
    e0 = ret.energy(Q)
    e1 = ret.energy(ret.transform(Q))
    assert e0.shape == (10,)
    assert np.all(e1 <= e0 + 1e-4)


def test_energy_per_query_similarity(patterns):
    rng = np.random.RandomState(8)
    Q = np.vstack([patterns[:6] + 0.3 * rng.randn(6, 16), 0.3 * patterns[6:12]])
    auto = KernelHopfieldRetriever().fit(patterns)
    sims = auto.query_similarity(Q)
    assert set(sims[:6]) == {"neg_l2"} and set(sims[6:]) == {"cosine"}
    e = auto.energy(Q)
    noise = KernelHopfieldRetriever(similarity="neg_l2", beta=auto.beta_["neg_l2"])
    scaled = KernelHopfieldRetriever(similarity="cosine", beta=auto.beta_["cosine"])
    np.testing.assert_allclose(e[:6], noise.fit(patterns).energy(Q[:6]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e[6:], scaled.fit(patterns).energy(Q[6:]), rtol=1e-5, atol=1e-6)


def test_neg_l2_energy_does_not_increase_under_update(patterns):
    Q = patterns[:10] + 0.5 * np.random.RandomState(7).randn(10, 16)
    ret = KernelHopfieldRetriever(similarity="neg_l2", beta=0.5).fit(patterns)
    e = [ret.energy(Q)]
    for _ in range(3):
        Q = ret.transform(Q)
        e.append(ret.energy(Q))
    e = np.array(e)
    assert np.all(e >= 0)
    assert np.all(e[1:] <= e[:-1] + 1e-4)
    assert np.any(e[1:] < e[:-1] - 1e-3)


def test_persistence_round_trip(correlated):
    ret = KernelHopfieldRetriever(**STAGE_I, feature_dim=6).fit(correlated)
    restored = pickle.loads(pickle.dumps(ret))
    np.testing.assert_array_equal(restored.transform(correlated), ret.transform(correlated))
    assert isinstance(restored.feature_map_, FeatureMap)


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda X: X[:, :5], "features"),
        (lambda X: np.where(np.eye(*X.shape, dtype=bool), np.inf, X), "infinity"),
    ],
)
def test_bad_queries(patterns, bad, match):
    ret = KernelHopfieldRetriever().fit(patterns)
    with pytest.raises(ValueError, match=match):
        ret.transform(bad(patterns))


def test_bad_memories_and_settings(patterns):
    X = patterns.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN is allowed in queries only"):
        KernelHopfieldRetriever().fit(X)
    with pytest.raises(ValueError, match="0 sample"):
        KernelHopfieldRetriever().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="top_k"):
        KernelHopfieldRetriever(separation="topk").fit(patterns)
    ret = KernelHopfieldRetriever().fit(patterns)
    with pytest.raises(ValueError, match="n_neighbors"):
        ret.kneighbors(patterns, n_neighbors=61)
    with pytest.raises(ValueError, match="indices"):
        ret.score(patterns, np.full(60, 60))
    partial = patterns[:1].copy()
    partial[0, 0] = np.nan
    with pytest.raises(ValueError, match="complete"):
        KernelHopfieldRetriever(similarity="cosine").fit(patterns).energy(partial)
    with pytest.raises(ValueError, match="similarity"):
        KernelHopfieldRetriever(similarity="euclidean").fit(patterns)


def test_approximate_pads_missing_candidates():
    pytest.importorskip("faiss")
    X = np.random.RandomState(8).randn(400, 8)
    ret = KernelHopfieldRetriever(
        index="approximate", n_lists=10, n_probe=1, n_candidates=200, random_state=0
    ).fit(X)
    out = ret.transform(X[:50])
    assert np.isfinite(out).all()
    # each stored pattern falls in the list it probes first, so it still retrieves itself
    np.testing.assert_array_equal(
        ret.kneighbors(X[:50], return_distance=False)[:, 0], np.arange(50)
    )


# ---------------------------------------------------------------- similarity="auto"


@pytest.fixture(scope="module")
def images():
    """Non-negative patterns (like pixel intensities), with noisy and half-zeroed queries."""
    rng = np.random.RandomState(9)
    X = rng.rand(80, 64)
    noisy = X[:40] + 0.3 * rng.randn(40, 64)
    zeroed = X[40:].copy()
    zeroed[:, 32:] = 0.0
    return X, noisy, zeroed


def test_scale_statistic_equals_brute_force():
    rng = np.random.RandomState(10)
    X = torch.from_numpy(rng.rand(50, 12)).float()
    Q = torch.from_numpy(rng.rand(7, 12)).float()
    observed = torch.from_numpy(rng.rand(7, 12) < 0.7).float()
    exclude = torch.from_numpy(rng.rand(7, 50) < 0.3)
    for obs, exc in ((None, None), (observed, None), (None, exclude)):
        q = Q if obs is None else Q * obs
        o = torch.ones_like(Q) if obs is None else obs
        dot = q.double() @ X.double().T
        kk = o.double() @ (X.double() ** 2).T
        r_noise = (q.double() ** 2).sum(1, keepdim=True) - 2 * dot + kk
        r_scaled = (q.double() ** 2).sum(1, keepdim=True) - dot.clamp_min(0) ** 2 / kk
        if exc is not None:
            r_noise, r_scaled = r_noise.masked_fill(exc, np.inf), r_scaled.masked_fill(exc, np.inf)
        rn, i_n = r_noise.min(1)
        rs, i_s = r_scaled.min(1)
        ref = o.sum(1) * torch.log(rn / rs)
        # each float32 residual sums 12 features of magnitude |q|^2 + 2|q.x| + |x|^2 (at the
        # minimising memory); the statistic n_obs * log(r_noise / r_scaled) scales their
        # relative errors by n_obs
        size = (q.double() ** 2).sum(1, keepdim=True) + 2 * dot.abs() + kk
        rel = size.gather(1, i_n[:, None])[:, 0] / rn + size.gather(1, i_s[:, None])[:, 0] / rs
        bound = o.sum(1) * rel * sum_tol(torch.float32, X.shape[1])["rtol"]
        blocked = scale_statistic(q, X, observed=obs, exclude=exc, block_size=9)
        default = scale_statistic(q, X, observed=obs, exclude=exc)
        for got in (blocked, default):
            assert torch.all((got.double() - ref).abs() <= bound), (got, ref, bound)
        assert torch.all((blocked.double() - default.double()).abs() <= 2 * bound)


def test_scale_statistic_calibration():
    # the noise model holds: about 0.1% of queries above the threshold (level 0.999)
    rng = np.random.RandomState(11)
    X = torch.from_numpy(rng.rand(100, 64)).float()
    noisy = X[rng.randint(100, size=3000)] + 0.3 * torch.from_numpy(rng.randn(3000, 64)).float()
    threshold = float(scale_threshold(64))
    assert (scale_statistic(noisy, X) > threshold).float().mean() < 0.01
    # occluded (half zeroed) or dimmed queries: far above it; exact ones score 0
    zeroed = X.clone()
    zeroed[:, 32:] = 0
    assert bool((scale_statistic(zeroed, X) > threshold).all())
    assert bool((scale_statistic(0.3 * X, X) > threshold).all())
    torch.testing.assert_close(scale_statistic(X, X), torch.zeros(100))


def test_scale_threshold_is_the_f_test():
    from scipy.stats import chi2, f

    n = np.array([2.0, 5.0, 64.0, 784.0])
    # the statistic's threshold is the F(1, n - 1) quantile of (n - 1) (ratio - 1)
    ratio = np.exp(scale_threshold(torch.from_numpy(n)).numpy() / n)
    np.testing.assert_allclose((n - 1) * (ratio - 1), f.ppf(0.999, 1, n - 1), rtol=1e-8)
    # decreasing in n, towards the chi-square(1) quantile; no test below two coordinates
    t = scale_threshold(torch.tensor([2.0, 5.0, 64.0, 784.0, 1e7])).numpy()
    assert np.all(np.diff(t) < 0) and t[-1] == pytest.approx(chi2.ppf(0.999, 1), rel=1e-4)
    assert scale_threshold(1).item() == np.inf and scale_threshold(0).item() == np.inf
    assert scale_threshold(64, level=0.99) < scale_threshold(64)


def test_auto_keeps_the_noise_model_without_enough_coordinates():
    # in one dimension a free scale fits any query: the test never prefers it
    line = np.linspace(0.1, 2.0, 20)[:, None]
    ret = KernelHopfieldRetriever().fit(line)
    Q = np.array([[0.05], [1.03], [3.0]])
    assert (ret.query_similarity(Q) == "neg_l2").all()
    np.testing.assert_array_equal(ret.kneighbors(Q, return_distance=False)[:, 0], [0, 9, 19])
    partial = np.full((1, 16), np.nan)
    partial[0, 3] = 0.5  # one observed entry
    wide = KernelHopfieldRetriever().fit(np.random.RandomState(13).rand(30, 16))
    assert wide.query_similarity(partial)[0] == "neg_l2"


def test_auto_picks_the_model_that_explains_each_query(images):
    X, noisy, zeroed = images
    ret = KernelHopfieldRetriever().fit(X)
    assert ret.similarity == "auto"
    assert set(ret.beta_) == {"neg_l2", "cosine"}
    choice = ret.query_similarity(np.vstack([noisy, zeroed]))
    assert (choice[:40] == "neg_l2").mean() >= 0.95
    assert (choice[40:] == "cosine").all()
    # NaN-marked entries: compared on the observed ones (dimmed: scaled; noisy: noise)
    partial = np.vstack([0.3 * X[:20], noisy[:20]])
    partial[:, 32:] = np.nan
    choice = ret.query_similarity(partial)
    assert (choice[:20] == "cosine").all() and (choice[20:] == "neg_l2").mean() >= 0.9
    fixed = KernelHopfieldRetriever(similarity="dot").fit(X)
    assert (fixed.query_similarity(zeroed) == "dot").all()


def _beta_rtol(fitted, X):
    """How far two float32 computations of ``beta_`` may differ.

    ``beta = log((M - 1) / eps) / gap`` with ``gap = own - rival``, two scores
    of magnitude up to ``scale`` (2 for cosine, the largest squared norm, twice
    for neg_l2), each a sum over the features: the gap's absolute error is
    about two sums' worth, so its relative error (and beta's) is that times
    ``scale / gap = beta * scale / log((M - 1) / eps)``.
    """
    F = torch.from_numpy(X).float()
    if fitted.feature_map_ is not None:
        F = fitted.feature_map_(F).detach()
    sq = float((F.double() ** 2).sum(1).max())
    scale = {"cosine": 2.0, "dot": sq, "neg_l2": 2.0 * sq}[fitted.similarity]
    condition = fitted.beta_ * scale / math.log((len(X) - 1) / AUTO_BETA_EPS)
    return 2.0 * sum_tol(torch.float32, F.shape[1])["rtol"] * max(condition, 1.0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"feature_dim": 16},
        {"feature_dim": 64, **STAGE_I, "max_iter": 5},
        {"separation": "topk", "top_k": 3},
    ],
)
@pytest.mark.parametrize("nan", [False, True])
def test_auto_equals_the_chosen_similarity_per_query(images, params, nan):
    X, noisy, zeroed = images
    Q = np.vstack([noisy, zeroed])
    if nan:
        Q[::3, 50:] = np.nan
    auto = KernelHopfieldRetriever(**params).fit(X)
    choice = auto.query_similarity(Q)
    assert {"neg_l2", "cosine"} <= set(choice)
    out = auto.transform(Q)
    dist, ind = auto.kneighbors(Q, 3)
    for sim in ("neg_l2", "cosine"):
        fixed = KernelHopfieldRetriever(similarity=sim, **params).fit(X)
        assert auto.beta_[sim] == pytest.approx(fixed.beta_, rel=_beta_rtol(fixed, X))
        rows = choice == sim
        np.testing.assert_allclose(out[rows], fixed.transform(Q[rows]), atol=5e-4)
        f_dist, f_ind = fixed.kneighbors(Q[rows], 3)
        np.testing.assert_array_equal(ind[rows], f_ind)
        # auto reports Euclidean distances for every query (units: test_retriever_calls.py);
        # a fixed cosine model reports 1 - cosine, so only neg_l2 rows share the unit
        if sim == "neg_l2":
            np.testing.assert_allclose(dist[rows], f_dist, rtol=1e-4, atol=1e-5)


def test_auto_with_several_steps_iterates_the_chosen_similarity(images):
    # every update uses the query's similarity on the raw stored patterns
    X, noisy, zeroed = images
    Q = np.vstack([noisy, zeroed])
    auto = KernelHopfieldRetriever(n_steps=3).fit(X)
    choice = auto.query_similarity(Q)
    out = auto.transform(Q)
    mem = torch.from_numpy(X).float()
    for sim in ("neg_l2", "cosine"):
        rows = choice == sim
        ref = hopfield_retrieve(
            torch.from_numpy(Q[rows]).float(),
            mem,
            beta=auto.beta_[sim],
            similarity=sim,
            num_steps=3,
        )
        np.testing.assert_allclose(out[rows], ref.numpy(), atol=1e-4)
        # the neighbours: the most similar stored patterns to the state after two updates
        state = hopfield_retrieve(
            torch.from_numpy(Q[rows]).float(),
            mem,
            beta=auto.beta_[sim],
            similarity=sim,
            num_steps=2,
        )
        ref_ind = similarity_scores(state, mem, sim).argsort(dim=1, descending=True, stable=True)
        np.testing.assert_array_equal(auto.kneighbors(Q[rows], 2)[1], ref_ind[:, :2].numpy())


def test_auto_chunked_equals_unchunked(images):
    X, noisy, zeroed = images
    Q = np.vstack([noisy, zeroed])
    Q[::4, :10] = np.nan
    whole = KernelHopfieldRetriever().fit(X)
    chunked = KernelHopfieldRetriever(chunk_size=7).fit(X)
    np.testing.assert_array_equal(chunked.query_similarity(Q), whole.query_similarity(Q))
    # cosine scores are those of the unit-norm patterns and queries
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    beta = max(whole.beta_.values())
    atol = max(retrieval_atol(np.float32, X, Q, beta), retrieval_atol(np.float32, unit, unit, beta))
    np.testing.assert_allclose(chunked.transform(Q), whole.transform(Q), rtol=0, atol=atol)
    np.testing.assert_array_equal(chunked.kneighbors(Q, 4)[1], whole.kneighbors(Q, 4)[1])


def test_auto_recovers_both_corruptions_better_than_either_fixed_similarity(images):
    X, noisy, zeroed = images
    Q = np.vstack([noisy, zeroed])
    y = np.arange(80)
    scores = {
        sim: KernelHopfieldRetriever(similarity=sim).fit(X).score(Q, y)
        for sim in ("auto", "cosine", "neg_l2")
    }
    assert scores["auto"] >= max(scores["cosine"], scores["neg_l2"])


def test_identity_map_stores_the_patterns_once():
    # every similarity compares the raw patterns: no second copy, in memory or in a pickle
    X = np.random.RandomState(12).rand(1000, 32).astype(np.float32)
    for sim in ("auto", "neg_l2", "cosine", "dot"):
        ret = KernelHopfieldRetriever(similarity=sim).fit(X)
        size = len(pickle.dumps(ret)) / X.nbytes
        assert 1 <= size < 1.5, (sim, size)
        held = [v for v in vars(ret._memory_).values() if isinstance(v, np.ndarray)]
        assert all(np.shares_memory(v, ret.memories_) for v in held), sim
        restored = pickle.loads(pickle.dumps(ret))
        np.testing.assert_array_equal(restored.transform(X[:5]), ret.transform(X[:5]))
    grown = KernelHopfieldRetriever().partial_fit(X[:400]).partial_fit(X[400:])
    assert len(pickle.dumps(grown)) < 1.5 * X.nbytes
