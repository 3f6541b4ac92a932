import numpy as np
import pytest
import torch

from skhop.nn.functional import hopfield_retrieve

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from skhop.distributed import predict_blocks, sharded_retrieve  # noqa: E402

pytestmark = pytest.mark.heavy  # a Dask cluster of worker processes


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
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
    ref = hopfield_retrieve(
        torch.from_numpy(q),
        torch.from_numpy(x),
        beta=2.0,
        similarity=similarity,
        separation=separation,
    )
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5, rtol=1e-5)


def test_sharded_on_a_local_cluster_with_scattered_shards(client):
    q, x = _data()
    v = np.random.default_rng(1).normal(size=(len(x), 3)).astype(np.float32)
    pieces = [(x[i : i + 1700], v[i : i + 1700]) for i in range(0, len(x), 1700)]
    futures = client.scatter(pieces)
    out = sharded_retrieve(q, futures, beta=1.5)
    ref = hopfield_retrieve(torch.from_numpy(q), torch.from_numpy(x), torch.from_numpy(v), beta=1.5)
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
    np.testing.assert_allclose(
        predict_blocks(clf, Xd, "predict_proba").compute(), clf.predict_proba(X)
    )


def test_bad_arguments():
    q, x = _data(M=10)
    with pytest.raises(ValueError, match="separation"):
        sharded_retrieve(q, [x], separation="sparsemax")
    with pytest.raises(ValueError, match="shards is empty"):
        sharded_retrieve(q, [])
    with pytest.raises(TypeError, match="dask.array"):
        predict_blocks(object(), x)


def test_grid_search_through_the_joblib_dask_backend(client):
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV

    from skhop import HopfieldClassifier

    X, y = load_iris(return_X_y=True)
    grid = {"beta": [0.5, 2.0]}

    def search(n_jobs):
        est = HopfieldClassifier(max_iter=15, random_state=0)
        return GridSearchCV(est, grid, cv=3, n_jobs=n_jobs).fit(X, y)

    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        remote = search(-1)
    local = search(1)
    # the fits ran as tasks on the cluster's workers and gave the same scores
    assert len(tasks.data) >= 6
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))
