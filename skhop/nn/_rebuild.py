"""Modules that can be rebuilt from (class path, constructor arguments, weights).

A fitted estimator stores its network in that form when pickled, so the
pickle holds only numbers, strings and numpy arrays: it loads on any device,
and safe loaders such as ``skops.io`` need to trust no torch type.
"""

import importlib

import numpy as np
import torch

from ._checks import plain

__all__ = ["Rebuildable", "module_to_state", "module_from_state", "is_module_state"]

_MARKER = "__skhop_module__"


class Rebuildable:
    """Mixin for ``torch.nn.Module`` subclasses: remembers the constructor arguments.

    Put it first in the bases, ``class Net(Rebuildable, nn.Module)``; the
    arguments must be plain Python values (numbers, strings, tuples, None).
    """

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        # numpy scalars (a size from ``y.max() + 1``) are kept as plain Python values
        args = tuple(plain(a) for a in args)
        kwargs = {k: plain(v) for k, v in kwargs.items()}
        object.__setattr__(obj, "_skhop_init_args", (args, kwargs))
        return obj


def module_to_state(module):
    """Describe a :class:`Rebuildable` module by class path, arguments and numpy weights."""
    cls = type(module)
    args, kwargs = module._skhop_init_args
    return {
        _MARKER: f"{cls.__module__}:{cls.__qualname__}",
        "args": list(args),
        "kwargs": dict(kwargs),
        "state": {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()},
        "training": bool(module.training),
    }


def is_module_state(value):
    return isinstance(value, dict) and _MARKER in value


_PLAIN = (bool, int, float, str, type(None))


def _is_plain(value):
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def module_from_state(state):
    """Rebuild a module described by :func:`module_to_state` (``skhop.nn`` classes only).

    Nothing is allocated before the description is checked: the constructor
    arguments must be plain values, and the module they describe, built
    first on torch's ``meta`` device (no memory, no random numbers), must
    have exactly the parameter and buffer shapes of the stored weights.
    Loading can therefore never allocate more than the weights it carries.
    """
    if not isinstance(state, dict) or not isinstance(state.get(_MARKER), str):
        raise ValueError("not a stored skhop module: the class path is missing.")
    path = state[_MARKER]
    mod_name, _, qualname = path.partition(":")
    if not (mod_name == "skhop.nn" or mod_name.startswith("skhop.nn.")):
        raise ValueError(f"refusing to rebuild a module of class {path!r}: not a skhop.nn class.")
    obj = importlib.import_module(mod_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (
        isinstance(obj, type) and issubclass(obj, Rebuildable) and issubclass(obj, torch.nn.Module)
    ):
        raise ValueError(f"{path!r} is not a rebuildable skhop module.")
    args, kwargs, weights = state.get("args"), state.get("kwargs"), state.get("state")
    if not (
        isinstance(args, (list, tuple))
        and isinstance(kwargs, dict)
        and all(isinstance(k, str) for k in kwargs)
        and _is_plain(list(args))
        and _is_plain(list(kwargs.values()))
    ):
        raise ValueError(f"stored {path}: constructor arguments must be plain values.")
    if not isinstance(weights, dict):
        raise ValueError(f"stored {path}: the weights are missing.")
    weights = {k: np.asarray(v) for k, v in weights.items()}
    try:
        with torch.device("meta"):
            skeleton = obj(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"stored {path}: invalid constructor arguments ({exc}).") from exc
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != stored:
        raise ValueError(
            f"stored {path}: the constructor arguments describe other weights than the "
            f"stored ones (expected {expected}, stored {stored})."
        )
    module = skeleton.to_empty(device="cpu")
    module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    module.train(bool(state.get("training", False)))
    return module
