import numpy as np
import pytest

from skhop.datasets import MIL_DATASETS, load_mil, make_mil_bags
from skhop.preprocessing import BagStandardScaler
from skhop.utils import bags_from_frame, bags_from_long, check_bags, pad_bags

SHAPES = {  # bags, positives, instances, features, smallest and largest bag
    "elephant": (200, 100, 1391, 230, 2, 13),
    "fox": (200, 100, 1320, 230, 2, 13),
    "tiger": (200, 100, 1220, 230, 1, 13),
    "ucsb_breast_cancer": (58, 26, 2002, 708, 21, 40),
}


@pytest.mark.parametrize("name", MIL_DATASETS)
def test_load_mil_shapes(name):
    data = load_mil(name)
    n_bags, n_pos, n_inst, d, lo, hi = SHAPES[name]
    assert len(data.bags) == n_bags == len(data.target) == len(data.bag_ids)
    assert int(data.target.sum()) == n_pos and set(data.target) == {0, 1}
    sizes = [len(b) for b in data.bags]
    assert sum(sizes) == n_inst and (min(sizes), max(sizes)) == (lo, hi)
    assert all(b.shape[1] == d and b.dtype == np.float64 for b in data.bags)
    assert len(data.feature_names) == d and data.feature_names[0] == "f0"
    assert np.isfinite(np.concatenate(data.bags)).all()
    np.testing.assert_array_equal(data.bag_ids, np.arange(n_bags))
    assert name in data.DESCR


def test_load_mil_return_X_y_and_errors():
    bags, y = load_mil("tiger", return_X_y=True)
    full = load_mil("tiger")
    assert len(bags) == len(y) == 200
    np.testing.assert_array_equal(bags[5], full.bags[5])
    with pytest.raises(ValueError, match="name must be one of"):
        load_mil("musk")


def test_make_mil_bags_plants_witnesses():
    bags, y, inst = make_mil_bags(
        n_bags=50, n_features=4, min_instances=2, max_instances=6, witness_rate=0.3, random_state=0
    )
    assert len(bags) == len(y) == len(inst) == 50
    assert all(2 <= len(b) <= 6 and b.shape[1] == 4 for b in bags)
    # a bag is positive exactly when it holds a witness
    np.testing.assert_array_equal([w.any() for w in inst], y.astype(bool))
    # witnesses are shifted along one direction: their mean differs from the others'
    X, w = np.concatenate(bags), np.concatenate(inst).astype(bool)
    assert np.linalg.norm(X[w].mean(0) - X[~w].mean(0)) > 1.5
    again = make_mil_bags(
        n_bags=50, n_features=4, min_instances=2, max_instances=6, witness_rate=0.3, random_state=0
    )
    assert all(np.array_equal(a, b) for a, b in zip(bags, again[0], strict=True))


def test_make_mil_bags_errors():
    with pytest.raises(ValueError, match="n_bags"):
        make_mil_bags(n_bags=0)
    with pytest.raises(ValueError, match="max_instances"):
        make_mil_bags(min_instances=5, max_instances=2)
    with pytest.raises(ValueError, match="witness_rate"):
        make_mil_bags(witness_rate=1.5)


def test_bags_from_long_groups_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3))
    ids = rng.choice(["x", "y", "z"], size=30)
    labels = {"x": 1, "y": 0, "z": 1}
    y = np.array([labels[i] for i in ids])
    bags, bag_y, bag_ids = bags_from_long(X, ids, y)
    assert bag_ids.tolist() == ["x", "y", "z"]
    for bag, label, bid in zip(bags, bag_y, bag_ids, strict=True):
        np.testing.assert_array_equal(bag, X[ids == bid])  # rows keep their order
        assert label == labels[bid]
    with pytest.raises(ValueError, match="constant within each bag"):
        bags_from_long(X, ids, rng.randint(2, size=30))
    with pytest.raises(ValueError, match="bag_ids"):
        bags_from_long(X, ids[:-1])
    assert bags_from_long(X, ids)[1] is None


def test_bags_from_frame_matches_long():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(1)
    df = pd.DataFrame(rng.normal(size=(12, 2)), columns=["a", "b"])
    df["bag"] = [3, 1, 3, 2, 1, 1, 2, 3, 3, 2, 1, 2]
    df["label"] = df["bag"].map({1: "no", 2: "yes", 3: "no"})
    bags, bag_y, ids = bags_from_frame(df, "bag", label_column="label")
    ref, ref_y, ref_ids = bags_from_long(df[["a", "b"]], df["bag"], df["label"])
    assert ids.tolist() == [1, 2, 3] and bag_y.tolist() == ["no", "yes", "no"]
    assert all(np.array_equal(a, b) for a, b in zip(bags, ref, strict=True))
    only_a = bags_from_frame(df, "bag", feature_columns=["a"])[0]
    assert only_a[0].shape == (4, 1)
    with pytest.raises(ValueError, match="not in the frame"):
        bags_from_frame(df, "missing")
    with pytest.raises(TypeError, match="DataFrame"):
        bags_from_frame(df.to_numpy(), "bag")


def test_check_bags_accepts_lists_frames_and_cubes():
    pd = pytest.importorskip("pandas")
    bags = check_bags([[[1, 2], [3, 4]], pd.DataFrame([[5, 6]]), np.ones((2, 2), int)])
    assert [b.shape for b in bags] == [(2, 2), (1, 2), (2, 2)]
    assert all(b.dtype == np.float64 for b in bags)
    cube = check_bags(np.zeros((3, 4, 2)), dtype=np.float32)
    assert len(cube) == 3 and cube[0].dtype == np.float32
    with pytest.raises(ValueError, match="bag 1 has 3 features but bag 0 has 2"):
        check_bags([np.ones((1, 2)), np.ones((1, 3))])
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="got csr_matrix"):
        check_bags(sp.csr_matrix(np.ones((2, 2))))
    with pytest.raises(TypeError, match="bag 0 is a sparse matrix"):
        check_bags([sp.csr_matrix(np.ones((2, 2)))])


def test_pad_bags_round_trip():
    rng = np.random.RandomState(0)
    bags = [rng.normal(size=(n, 3)) for n in (4, 1, 6)]
    padded, mask = pad_bags(bags, dtype=np.float64)
    assert padded.shape == (3, 6, 3) and mask.sum() == 18 - 11
    back = [p[~m] for p, m in zip(padded, mask, strict=True)]
    assert all(np.array_equal(a, b) for a, b in zip(back, bags, strict=True))
    assert (padded[mask] == 0).all()


def test_bag_standard_scaler_equals_scaling_the_stacked_instances():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(0)
    bags = [rng.normal(3, 5, size=(n, 4)) for n in (3, 7, 1, 5)]
    for b in bags:
        b[:, 3] = 2.0  # a constant feature is left unscaled
    scaler = BagStandardScaler().fit(bags)
    ref = StandardScaler().fit(np.vstack(bags))
    np.testing.assert_allclose(scaler.mean_, ref.mean_)
    np.testing.assert_allclose(scaler.scale_, ref.scale_)
    out = scaler.transform(bags)
    np.testing.assert_allclose(np.vstack(out), ref.transform(np.vstack(bags)), atol=1e-12)
    assert [len(b) for b in out] == [3, 7, 1, 5]
    back = scaler.inverse_transform(out)
    np.testing.assert_allclose(np.vstack(back), np.vstack(bags))
    assert scaler.n_samples_seen_ == 16 and scaler.n_features_in_ == 4
    plain = BagStandardScaler(with_mean=False, with_std=False).fit(bags)
    assert plain.mean_ is None and plain.scale_ is None
    np.testing.assert_array_equal(plain.transform(bags)[1], bags[1])
    with pytest.raises(ValueError, match="4 features were seen"):
        scaler.transform([np.ones((2, 3))])
