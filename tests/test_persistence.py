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


def _module_states(state):
    from skhop.nn._rebuild import is_module_state

    return [key for key, value in state.items() if is_module_state(value)]


def _restore(est, state):
    new = type(est).__new__(type(est))
    new.__setstate__(state)
    return new


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_stored_network_arguments_are_checked_before_anything_is_built(spec, monkeypatch):
    est, _ = fitted(spec)
    state = est.__getstate__()
    keys = _module_states(state)
    if not keys:
        pytest.skip(f"a fitted {spec.name} stores no network, only arrays")
    built = []
    monkeypatch.setattr(torch.nn.Module, "to_empty", lambda self, **kw: built.append(self))
    for key in keys:
        stored = state[key]
        # sizes 1000x larger than the stored weights: the file would ask for gigabytes
        bigger = {
            k: v * 1000 if type(v) is int and v > 1 else v for k, v in stored["kwargs"].items()
        }
        big_args = [v * 1000 if type(v) is int and v > 1 else v for v in stored["args"]]
        tampered = dict(state, **{key: dict(stored, args=big_args, kwargs=bigger)})
        with pytest.raises(ValueError, match="other weights than the stored ones"):
            _restore(est, tampered)
        odd = dict(state, **{key: dict(stored, kwargs={**stored["kwargs"], "x": object()})})
        with pytest.raises(ValueError, match="plain values"):
            _restore(est, odd)
    assert built == []  # refused before any real tensor was allocated


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_stored_networks_are_skhop_nn_classes(spec):
    # a pickle names its networks by skhop.nn class paths only: rebuilding one never
    # imports an estimator module, and a path outside skhop.nn is refused
    est, _ = fitted(spec)
    state = est.__getstate__()
    for key in _module_states(state):
        assert state[key]["__skhop_module__"].startswith("skhop.nn.")
        outside = dict(state, **{key: dict(state[key], __skhop_module__="skhop._mil:Anything")})
        with pytest.raises(ValueError, match="not a skhop.nn class"):
            _restore(est, outside)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_a_saved_model_missing_fitted_state_is_refused(spec):
    est, _ = fitted(spec)
    required = getattr(type(est), "_fitted_state", ())
    if not required:
        pytest.skip(f"{spec.name} names no required fitted state")
    state = est.__getstate__()
    for key in required:
        partial = {k: v for k, v in state.items() if k != key}
        if key == required[0]:
            _restore(est, partial)  # without its marker the state is an unfitted one
            continue
        with pytest.raises(ValueError, match=f"lacks {key}; .*older format"):
            _restore(est, partial)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_a_saved_model_from_other_parameters_is_refused(spec):
    est, _ = fitted(spec)
    state = est.__getstate__()
    name = sorted(est.get_params(deep=False))[0]
    with pytest.raises(ValueError, match=f"lacks {name}; .*older format"):
        _restore(est, {k: v for k, v in state.items() if k != name})


@pytest.mark.parametrize("spec", SPECS[:1], ids=ids[:1])
def test_missing_or_malformed_version_record(spec):
    est, query = fitted(spec)
    state = est.__getstate__()
    bare = {k: v for k, v in state.items() if k != "_skhop_versions"}
    with pytest.warns(UserWarning, match="without skhop's version record"):
        loaded = _restore(est, bare)
    _same(outputs(est, spec, query), outputs(loaded, spec, query))
    for bad in ("0.1.0", {"skhop": 1}, {"torch": "2.0"}):
        with pytest.raises(ValueError, match="malformed version record"):
            _restore(est, dict(state, _skhop_versions=bad))


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_skops_refuses_a_tampered_file_with_the_trusted_list(spec, tmp_path):
    import os

    sio = pytest.importorskip("skops.io")
    from skops.io.exceptions import UntrustedTypesFoundException

    from skhop.persistence import trusted_types

    est, query = fitted(spec)
    good, bad = tmp_path / "model.skops", tmp_path / "tampered.skops"
    sio.dump(est, good)
    _same(outputs(est, spec, query), outputs(sio.load(good, trusted=trusted_types()), spec, query))
    sio.dump({"model": est, "payload": os.system}, bad)
    # the file names the injected function, so trusting what it lists would load it
    assert any(t.endswith(".system") for t in sio.get_untrusted_types(file=bad))
    with pytest.raises(UntrustedTypesFoundException, match="system"):
        sio.load(bad, trusted=trusted_types())
