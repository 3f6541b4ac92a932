"""The classifier's input transforms: the quantile-normal scaling and the periodic embedding."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from skhop import HopfieldClassifier
from skhop._quantile import quantile_fit, quantile_normal
from skhop.nn import RowHopfieldLayer
from skhop.nn._embeddings import PeriodicEmbedding


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=100, n_features=5, n_informative=3, n_classes=3, random_state=0
    )
    return X, y


def fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return HopfieldClassifier(**{"max_iter": 15, "random_state": 0, **params}).fit(X, y)


def test_quantile_weight_two_is_two_copies():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(40, 3)).astype(float)
    w = rng.integers(1, 4, size=40).astype(float)
    weighted = quantile_fit(X, w)
    copies = quantile_fit(np.repeat(X, w.astype(int), axis=0), np.ones(int(w.sum())))
    Q = rng.normal(2, 3, size=(30, 3))
    np.testing.assert_allclose(quantile_normal(Q, *weighted), quantile_normal(Q, *copies))


def test_quantile_maps_a_continuous_feature_to_normal_scores():
    x = np.random.default_rng(1).exponential(size=(201, 1))
    z = quantile_normal(x, *quantile_fit(x, np.ones(len(x))))[:, 0]
    # the k-th smallest of n rows goes to Phi^{-1}((k - 1/2) / n)
    expected = norm.ppf((np.arange(1, len(x) + 1) - 0.5) / len(x))
    np.testing.assert_allclose(np.sort(z), expected, atol=1e-12)
    assert np.all(
        np.diff(
            quantile_normal(np.linspace(-5, 50, 200)[:, None], *quantile_fit(x, np.ones(len(x))))[
                :, 0
            ]
        )
        >= 0
    )
    far = quantile_normal(np.array([[-1e9], [1e9]]), *quantile_fit(x, np.ones(len(x))))
    assert np.all(np.isfinite(far)) and np.all(np.abs(far) < 6)


def test_default_fit_ignores_monotone_rescaling_of_a_feature(data):
    X, y = data
    Xt = X.copy()
    Xt[:, 0] = np.exp(3 * Xt[:, 0])  # monotone: the same ranks
    a, b = fit(X, y), fit(Xt, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(Xt), atol=1e-10)
    # the standard scaling does see it
    c, d = fit(X, y, scaling="standard"), fit(Xt, y, scaling="standard")
    assert not np.allclose(c.predict_proba(X), d.predict_proba(Xt), atol=1e-6)


def test_periodic_embedding_keeps_each_feature_beside_its_features():
    emb = PeriodicEmbedding(3, num_frequencies=8, embedding_dim=4, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    out = emb(x).reshape(6, 3, 5)
    assert out.shape[-1] * 3 == emb.output_size
    torch.testing.assert_close(out[..., 0], x)
    # one feature's outputs depend on that feature only
    x2 = x.clone()
    x2[:, 1] += 1.0
    out2 = emb(x2).reshape(6, 3, 5)
    torch.testing.assert_close(out2[:, [0, 2]], out[:, [0, 2]])
    assert not torch.allclose(out2[:, 1], out[:, 1])
    with pytest.raises(ValueError, match="sigma"):
        PeriodicEmbedding(3, sigma=0.0)


def test_periodic_parameters_learn_at_a_tenth_of_the_rate():
    layer = RowHopfieldLayer(4, 10, 3, 8, num_frequencies=6)
    groups = layer.parameter_groups(0.01)
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.001)]
    slow = {id(p) for p in groups[1]["params"]}
    assert slow == {id(p) for p in layer.hidden.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(layer.parameters()))
    assert len(RowHopfieldLayer(4, 10, 3, 8).parameter_groups(0.01)) == 1
    # the residual branch learns slowly too
    layer = RowHopfieldLayer(4, 10, 3, 8, mlp_size=16)
    groups = layer.parameter_groups(0.01)
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in layer.residual.parameters()}
    assert groups[1]["lr"] == pytest.approx(0.001)


def test_embedding_in_blocks_equals_one_block():
    torch.manual_seed(0)
    layer = RowHopfieldLayer(4, 50, 3, 8, num_frequencies=6, dtype="float64")
    layer.store_(torch.randn(50, 4, dtype=torch.float64), torch.arange(50) % 3)
    x = torch.randn(20, 4, dtype=torch.float64)
    whole = layer.log_proba(x)
    layer._block = 7  # several blocks of rows, the last one short
    torch.testing.assert_close(layer.log_proba(x), whole)


def test_classifier_with_periodic_embedding_fits_and_round_trips(data):
    X, y = data
    clf = fit(X, y, n_frequencies=8, max_iter=40)
    assert clf.score(X, y) > 0.8
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(
        fit(X, y, n_frequencies=8, max_iter=40).predict_proba(X), clf.predict_proba(X)
    )


def test_residual_branch_starts_silent_and_trains():
    torch.manual_seed(0)
    layer = RowHopfieldLayer(4, 10, 3, 8, num_heads=2, mlp_size=16, dtype="float64")
    x = torch.randn(5, 4, dtype=torch.float64)
    linear = layer.core._split(layer.proj(x))
    # V starts at zero: the embedding is the linear map's
    torch.testing.assert_close(layer.embed(x), linear, rtol=0, atol=0)
    layer.store_(torch.randn(10, 4, dtype=torch.float64), torch.arange(10) % 3)
    ones = torch.ones(10, dtype=torch.float64)
    # each row left out of its own retrieval
    loss = layer.training_loss(torch.arange(10), layer.labels, ones, ones * -torch.inf)
    loss.backward()
    # the zero output layer has a gradient, so the branch leaves zero in the first step
    assert layer.residual[-1].weight.grad.abs().sum() > 0
    assert RowHopfieldLayer(4, 10, 3, 8).residual is None
