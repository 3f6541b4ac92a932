"""``device=`` on every estimator: resolution, refusal, and CUDA runs (skipped without one)."""

import numpy as np
import pytest
import torch
from estimator_specs import SPECS, fitted, outputs

ids = [s.name for s in SPECS]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_auto_device_without_cuda_runs_on_cpu_and_matches_cpu(spec, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args, query = spec.data()
    auto = spec.make().set_params(device="auto").fit(*args)
    cpu = spec.make().set_params(device="cpu").fit(*args)
    for a, b in zip(outputs(auto, spec, query), outputs(cpu, spec, query), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_cuda_without_a_device_is_a_clear_error(spec, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args, _ = spec.data()
    with pytest.raises(ValueError, match="no CUDA device"):
        spec.make().set_params(device="cuda").fit(*args)


@pytest.mark.cuda
@pytest.mark.parametrize("spec", SPECS, ids=ids)
def test_cuda_fit_matches_cpu_and_returns_modules_to_cpu(spec):
    args, query = spec.data()
    gpu = spec.make().set_params(device="cuda").fit(*args)
    cpu, _ = fitted(spec)
    for value in vars(gpu).values():
        if isinstance(value, torch.nn.Module):
            assert {p.device.type for p in value.parameters()} <= {"cpu"}
    for a, b in zip(outputs(gpu, spec, query), outputs(cpu, spec, query), strict=True):
        assert a.shape == b.shape
        if np.issubdtype(a.dtype, np.floating):
            assert np.isfinite(a).all()
            if not spec.supervised:  # no training: the same computation on another device
                np.testing.assert_allclose(a, b, atol=1e-3)
    # a GPU-fitted model predicts on the CPU after a pickle round trip
    import pickle

    loaded = pickle.loads(pickle.dumps(gpu.set_params(device="cpu")))
    for a, b in zip(outputs(loaded, spec, query), outputs(gpu, spec, query), strict=True):
        np.testing.assert_array_equal(a, b)
