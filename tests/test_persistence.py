"""pickle, joblib and skops round trips of every estimator; version records."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from estimator_specs import SPECS, fitted, outputs

import skhop

ids = [s.name for s in SPECS]


def _same(a, b):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_pickle_round_trip_predicts_identically(spec):
    est, query = fitted(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same versions: no warning
        loaded = pickle.loads(pickle.dumps(est))
    _same(outputs(est, spec, query), outputs(loaded, spec, query))


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_joblib_round_trip_predicts_identically(spec, tmp_path):
    est, query = fitted(spec)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    _same(outputs(est, spec, query), outputs(joblib.load(path), spec, query))


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_pickle_holds_no_torch_objects(spec):
    """The pickle stores plain weights: it loads without unpickling any torch type."""
    est, _ = fitted(spec)
    seen = []

    class Watch(pickle.Unpickler):
        def find_class(self, module, name):
            seen.append(module)
            return super().find_class(module, name)

    Watch(io.BytesIO(pickle.dumps(est))).load()
    assert not [m for m in seen if m.split(".")[0] == "torch"]


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_skops_round_trip_with_a_short_trusted_list(spec, tmp_path):
    sio = pytest.importorskip("skops.io")
    est, query = fitted(spec)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    # Only skhop's own classes need trusting; no torch or arbitrary types.
    assert untrusted and all(t.startswith("skhop.") for t in untrusted), untrusted
    loaded = sio.load(path, trusted=untrusted)
    _same(outputs(est, spec, query), outputs(loaded, spec, query))


@pytest.mark.parametrize("spec", SPECS[:1], ids=ids[:1])
@pytest.mark.parametrize("package", ["skhop", "torch"])
def test_loading_under_other_versions_warns(spec, package, monkeypatch):
    est, query = fitted(spec)
    blob = pickle.dumps(est)
    module = skhop if package == "skhop" else torch
    monkeypatch.setattr(module, "__version__", "0.0.0-other")
    with pytest.warns(UserWarning, match=f"{package} .* -> 0.0.0-other"):
        loaded = pickle.loads(blob)
    _same(outputs(est, spec, query), outputs(loaded, spec, query))


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_fitted_networks_live_on_cpu(spec):
    est, _ = fitted(spec)
    for value in vars(est).values():
        if isinstance(value, torch.nn.Module):
            devices = {p.device.type for p in value.parameters()}
            devices |= {b.device.type for b in value.buffers()}
            assert devices <= {"cpu"}
