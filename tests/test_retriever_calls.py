"""KernelHopfieldRetriever at every call: top-k, distances, partial rows, names, one copy."""

import pickle

import numpy as np
import pytest
import torch

from skhop import KernelHopfieldRetriever
from skhop.nn._separation import blockwise_topk, stable_topk


@pytest.fixture(scope="module")
def images():
    """Stored non-negative patterns; noisy queries (neg_l2) and half-zeroed ones (cosine)."""
    rng = np.random.RandomState(3)
    X = rng.rand(300, 64).astype(np.float32)
    noisy = X[:40] + 0.05 * rng.randn(40, 64).astype(np.float32)
    zeroed = X[40:80].copy()
    zeroed[:, 32:] = 0.0
    return X, np.vstack([noisy, zeroed]), np.arange(80)


# -- stable top-k without a full sort ---------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_stable_topk_equals_the_head_of_a_stable_sort(k):
    g = torch.Generator().manual_seed(0)
    ties = torch.randint(0, 4, (6, 3, 50), generator=g).float()  # many ties
    ties[0, 0] = float("-inf")  # a row of padding only
    ties[1, 1, :45] = float("-inf")  # fewer finite entries than some k
    for scores in (ties, torch.randn(6, 3, 50, generator=g)):
        v, i = stable_topk(scores, k)
        ref_v, ref_i = torch.sort(scores, dim=-1, descending=True, stable=True)
        torch.testing.assert_close(v, ref_v[..., :k], rtol=0, atol=0)
        torch.testing.assert_close(i, ref_i[..., :k], rtol=0, atol=0)
        bv, bi = blockwise_topk(lambda a, b, s=scores: s[..., a:b], 50, k, 7)
        torch.testing.assert_close(bi, ref_i[..., :k], rtol=0, atol=0)


def test_stable_topk_sorts_no_full_row(monkeypatch):
    """Rows without a tie at the k-th score are never sorted whole (the slow path)."""
    widths = []
    real = torch.sort

    def watch(x, *args, **kwargs):
        widths.append(x.shape[-1])
        return real(x, *args, **kwargs)

    monkeypatch.setattr(torch, "sort", watch)
    scores = torch.randn(100, 4096, generator=torch.Generator().manual_seed(1))
    for k in (1, 3, 10):
        stable_topk(scores, k)
    assert all(w <= 10 for w in widths), widths


# -- distances: one unit per call -------------------------------------------------


def _ray_distance(q, m):
    """min over s >= 0 of |q - s m| (float64)."""
    c = np.clip(q @ m / np.linalg.norm(m), 0, None)
    return np.sqrt(max(q @ q - c * c, 0.0))


def test_auto_distances_are_euclidean_for_every_query(images):
    X, Q, _ = images
    ret = KernelHopfieldRetriever().fit(X)
    choice = ret.query_similarity(Q)
    assert {"neg_l2", "cosine"} <= set(choice)  # both models are exercised
    dist, ind = ret.kneighbors(Q, 3)
    X64, Q64 = X.astype(np.float64), Q.astype(np.float64)
    for r in range(len(Q)):
        for j in range(3):
            m = X64[ind[r, j]]
            want = np.linalg.norm(Q64[r] - m) if choice[r] == "neg_l2" else _ray_distance(Q64[r], m)
            np.testing.assert_allclose(dist[r, j], want, rtol=1e-4, atol=1e-4)
    assert (np.diff(dist, axis=1) >= -1e-6).all()  # ascending
    # the routing affects the ranking only: the neg_l2 rows equal the fixed neg_l2 retriever
    rows = choice == "neg_l2"
    f_dist, f_ind = KernelHopfieldRetriever(similarity="neg_l2").fit(X).kneighbors(Q[rows], 3)
    np.testing.assert_array_equal(ind[rows], f_ind)
    np.testing.assert_allclose(dist[rows], f_dist, rtol=1e-4, atol=1e-5)


def test_partial_auto_distances_use_observed_entries(images):
    X, Q, _ = images
    Q = Q.copy()
    Q[:, :8] = np.nan
    ret = KernelHopfieldRetriever().fit(X)
    choice = ret.query_similarity(Q)
    dist, ind = ret.kneighbors(Q, 2)
    obs = slice(8, None)
    scale = 64 / 56  # nan_euclidean_distances' rescaling
    for r in range(len(Q)):
        q, m = Q[r, obs].astype(np.float64), X[ind[r, 0], obs].astype(np.float64)
        want = np.linalg.norm(q - m) if choice[r] == "neg_l2" else _ray_distance(q, m)
        np.testing.assert_allclose(dist[r, 0], np.sqrt(scale) * want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "neg_l2"])
def test_fixed_similarity_distances_keep_their_documented_unit(images, similarity):
    X, Q, _ = images
    dist, ind = KernelHopfieldRetriever(similarity=similarity).fit(X).kneighbors(Q, 2)
    q, m = Q.astype(np.float64), X[ind[:, 0]].astype(np.float64)
    dot = (q * m).sum(1)
    want = {
        "cosine": 1 - dot / np.linalg.norm(q, axis=1) / np.linalg.norm(m, axis=1),
        "dot": -dot,
        "neg_l2": np.linalg.norm(q - m, axis=1),
    }[similarity]
    np.testing.assert_allclose(dist[:, 0], want, rtol=1e-4, atol=1e-4)


def test_kneighbors_matches_brute_force_with_chunks(images):
    X, Q, _ = images
    ind = KernelHopfieldRetriever(similarity="neg_l2", chunk_size=37).fit(X).kneighbors(Q, 4)[1]
    d2 = ((Q[:, None, :].astype(np.float64) - X[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(ind, np.argsort(d2, axis=1, kind="stable")[:, :4])


# -- queries with nothing observed ------------------------------------------------


@pytest.mark.parametrize("method", ["transform", "kneighbors", "score", "query_similarity"])
def test_all_nan_rows_are_refused_by_name(images, method):
    X, Q, y = images
    Q = Q[:6].copy()
    Q[[1, 4]] = np.nan
    ret = KernelHopfieldRetriever().fit(X)
    call = getattr(ret, method)
    args = (Q, y[:6]) if method == "score" else (Q,)
    with pytest.raises(ValueError, match=r"2 row\(s\) with no observed entry .*rows 1, 4\b"):
        call(*args)


# -- feature names ----------------------------------------------------------------


def test_set_output_pandas_keeps_the_input_names(images):
    pd = pytest.importorskip("pandas")
    X, Q, _ = images
    names = [f"pixel_{i}" for i in range(X.shape[1])]
    ret = KernelHopfieldRetriever().set_output(transform="pandas")
    out = ret.fit(pd.DataFrame(X, columns=names)).transform(pd.DataFrame(Q, columns=names))
    assert list(out.columns) == names
    np.testing.assert_array_equal(ret.get_feature_names_out(), names)
    plain = KernelHopfieldRetriever().fit(X)
    assert list(plain.get_feature_names_out()[:2]) == ["x0", "x1"]


# -- one copy of the memory bank --------------------------------------------------


@pytest.mark.parametrize("similarity", ["auto", "cosine", "dot", "neg_l2"])
def test_a_fitted_retriever_holds_the_bank_once(similarity):
    X = np.random.RandomState(12).rand(2000, 16).astype(np.float32)
    ret = KernelHopfieldRetriever(similarity=similarity).fit(X)
    arrays = [v for v in vars(ret._memory_).values() if isinstance(v, np.ndarray)]
    assert arrays and all(a is ret.memories_ for a in arrays)
    assert len(pickle.dumps(ret)) < 1.2 * X.nbytes
