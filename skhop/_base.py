"""Pieces every skhop estimator shares: device, threads, seeding, persistence."""

import contextlib
import functools
import numbers
import re
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

from .nn._threads import torch_threads

__all__ = [
    "resolve_device",
    "torch_threads",
    "seeded",
    "seed_from",
    "VersionedStateMixin",
    "validate_data",
]


def resolve_device(device):
    """Turn ``device`` ("cpu", "cuda", "cuda:N", "auto" or a torch.device) into a torch.device.

    Raises ``ValueError`` for an unknown name or for CUDA without a CUDA device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N', 'auto' or a torch.device, got {device!r}."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA device is available.")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device type {dev.type!r} is not supported; use 'cpu' or 'cuda'.")
    return dev


def seed_from(random_state):
    """An int seed drawn from ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch inside the block and leave the caller's global RNG untouched."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(seed)
        yield


def check_n_threads(n_threads):
    if n_threads is None:
        return
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) or n_threads < 1:
        raise ValueError(f"n_threads must be None or a positive int, got {n_threads!r}.")


def _atomic(method):
    """Wrap ``fit``/``partial_fit``: atomic, and trained whatever the caller's grad mode.

    On an error or a ``KeyboardInterrupt`` the instance's attributes, and the
    weights of any torch module among them, are put back as they were before
    the call: a new estimator stays unfitted, a fitted one stays as it was.

    The call runs with gradients enabled and outside inference mode, so a fit
    inside the caller's ``torch.no_grad()`` or ``torch.inference_mode()``
    trains as any other; the caller's mode is back on return.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        before = dict(self.__dict__)
        weights = {
            key: {n: t.detach().clone() for n, t in value.state_dict().items()}
            for key, value in before.items()
            if isinstance(value, torch.nn.Module)
        }
        try:
            with torch.inference_mode(False), torch.enable_grad():
                return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            for key, state in weights.items():
                before[key].load_state_dict(state)
            raise

    return wrapper


def _is_int_interval(constraint):
    from sklearn.utils._param_validation import Interval

    return isinstance(constraint, Interval) and constraint.type is numbers.Integral


class VersionedStateMixin:
    """Portable pickles, atomic fits: the shared base of every skhop estimator.

    ``fit`` and ``partial_fit`` of a subclass are atomic: if they raise
    (including ``KeyboardInterrupt``), the estimator is left exactly as it was
    before the call.

    Every fitted ``torch.nn.Module`` attribute built from a
    :class:`skhop.nn._rebuild.Rebuildable` class is stored as its class path,
    constructor arguments and numpy weights, so a pickle (or a ``skops.io``
    file) holds no torch objects and loads on any machine. The skhop and
    torch versions are recorded; loading under other versions warns. A
    subclass may name its fitted attributes in ``_fitted_state`` (the first
    one marks a fitted model): a saved fitted model lacking any of them is
    refused with a ``ValueError`` instead of failing later in ``predict``, as
    is a saved model that lacks one of the current constructor parameters.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("fit", "partial_fit"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_skhop_atomic", False):
                wrapped = _atomic(method)
                wrapped._skhop_atomic = True
                setattr(cls, name, wrapped)

    def _validate_params(self):
        """sklearn's parameter validation, with bools refused where an int is asked for.

        ``True`` is an ``Integral`` to Python, so sklearn's ``Interval(Integral, ...)``
        takes it as 1; a parameter that counts (``n_memories``, ``max_iter``, ...)
        refuses it unless its constraints also name booleans.
        """
        from sklearn.utils._param_validation import InvalidParameterError

        constraints = getattr(self, "_parameter_constraints", {})
        for name, value in self.get_params(deep=False).items():
            if not isinstance(value, (bool, np.bool_)):
                continue
            allowed = constraints.get(name, [])
            counts = any(_is_int_interval(c) for c in allowed)
            if counts and not any(c == "boolean" or c is bool for c in allowed):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an int, "
                    f"got {value} (a bool)."
                )
        super()._validate_params()

    def __getstate__(self):
        from . import __version__
        from .nn._rebuild import Rebuildable, module_to_state

        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(self.__dict__)
        state = dict(state)
        for key, value in state.items():
            if isinstance(value, torch.nn.Module) and isinstance(value, Rebuildable):
                state[key] = module_to_state(value)
        state["_skhop_versions"] = {"skhop": __version__, "torch": str(torch.__version__)}
        return state

    def __setstate__(self, state):
        from . import __version__
        from .nn._rebuild import is_module_state, module_from_state

        state = dict(state)
        saved = state.pop("_skhop_versions", None)
        now = {"skhop": __version__, "torch": str(torch.__version__)}
        if saved is None:
            warnings.warn(
                f"{type(self).__name__} was saved without skhop's version record (not by "
                "skhop, or edited); predictions may differ from the saved model's.",
                UserWarning,
                stacklevel=2,
            )
        elif not (isinstance(saved, dict) and all(isinstance(saved.get(k), str) for k in now)):
            raise ValueError(
                f"{type(self).__name__}: malformed version record {saved!r} in the saved "
                "model; expected {'skhop': str, 'torch': str}."
            )
        else:
            changed = [f"{k} {saved[k]} -> {now[k]}" for k in now if saved.get(k) != now[k]]
            if changed:
                warnings.warn(
                    f"{type(self).__name__} was pickled under other versions ("
                    + ", ".join(changed)
                    + "); predictions may differ.",
                    UserWarning,
                    stacklevel=2,
                )
        required = getattr(type(self), "_fitted_state", ())
        missing = [k for k in type(self)._get_param_names() if k not in state]
        if required and required[0] in state:
            missing += [k for k in required if k not in state]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: the saved model lacks {', '.join(missing)}; it "
                "was saved in an older format that this skhop cannot load. Refit it."
            )
        state = {k: module_from_state(v) if is_module_state(v) else v for k, v in state.items()}
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)


_NAMED = re.compile(r"\b(X|y|sample_weight)\b|`(X|y|sample_weight)`")


def validate_data(estimator, /, X="no_validation", y="no_validation", **check_params):
    """:func:`sklearn.utils.validation.validate_data`, with errors that name the argument.

    sklearn's messages for empty, zero-feature, complex or non-numeric input
    describe the array but not which argument it was; this prefixes them
    with ``X:`` or ``y:``. Everything else is sklearn's behaviour unchanged.
    """
    from sklearn.utils.validation import validate_data as _validate_data

    try:
        return _validate_data(estimator, X, y, **check_params)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if _NAMED.search(message) or type(exc).__name__ == "InvalidParameterError":
            raise
        name = "X" if _is_unset(y) or _fails_alone(X, check_params) else "y"
        kind = ValueError if isinstance(exc, ValueError) else TypeError
        raise kind(f"{name}: {message}") from exc


def _is_unset(y):
    return y is None or (isinstance(y, str) and y == "no_validation")


def _fails_alone(X, check_params):
    """Whether ``X`` on its own fails sklearn's array checks."""
    import inspect

    from sklearn.utils.validation import check_array

    if isinstance(X, str) and X == "no_validation":
        return False
    allowed = inspect.signature(check_array).parameters
    params = {k: v for k, v in check_params.items() if k in allowed}
    try:
        check_array(X, **params)
    except (ValueError, TypeError):
        return True
    return False
