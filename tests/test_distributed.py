import numpy as np
import pytest
import torch

from skhop.nn.functional import hopfield_retrieve

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from skhop.distributed import predict_blocks, sharded_retrieve  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _data(M=5000, d=16, L=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(L, d)).astype(np.float32), rng.normal(size=(M, d)).astype(np.float32)


@pytest.mark.parametrize("separation", ["softmax", "softmax1"])
@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_sharded_equals_single_process_local(separation, similarity):
    q, x = _data()
    shards = np.array_split(x, 3)
    out = sharded_retrieve(q, shards, beta=2.0, similarity=similarity, separation=separation)
    ref = hopfield_retrieve(torch.from_numpy(q), torch.from_numpy(x), beta=2.0,
                            similarity=similarity, separation=separation)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5, rtol=1e-5)


def test_sharded_on_a_local_cluster_with_scattered_shards(client):
    q, x = _data()
    v = np.random.default_rng(1).normal(size=(len(x), 3)).astype(np.float32)
    pieces = [(x[i:i + 1700], v[i:i + 1700]) for i in range(0, len(x), 1700)]
    futures = client.scatter(pieces)
    out = sharded_retrieve(q, futures, beta=1.5)
    ref = hopfield_retrieve(torch.from_numpy(q), torch.from_numpy(x), torch.from_numpy(v),
                            beta=1.5)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5, rtol=1e-5)
    # the work ran on the workers
    assert len(client.scheduler_info()["workers"]) == 2


def test_predict_blocks_over_a_dask_array(client):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    Xd = da.from_array(X, chunks=(300, 2))
    np.testing.assert_array_equal(predict_blocks(clf, Xd).compute(), clf.predict(X))
    np.testing.assert_allclose(predict_blocks(clf, Xd, "predict_proba").compute(),
                               clf.predict_proba(X))


def test_bad_arguments():
    q, x = _data(M=10)
    with pytest.raises(ValueError, match="separation"):
        sharded_retrieve(q, [x], separation="sparsemax")
    with pytest.raises(ValueError, match="shards is empty"):
        sharded_retrieve(q, [])
    with pytest.raises(TypeError, match="dask.array"):
        predict_blocks(object(), x)
