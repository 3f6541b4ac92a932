"""Modules that can be rebuilt from (class path, constructor arguments, weights).

A fitted estimator stores its network in that form when pickled, so the
pickle holds only numbers, strings and numpy arrays: it loads on any device,
and safe loaders such as ``skops.io`` need to trust no torch type.
"""

import importlib

import numpy as np
import torch

__all__ = ["Rebuildable", "module_to_state", "module_from_state", "is_module_state"]

_MARKER = "__skhop_module__"


class Rebuildable:
    """Mixin for ``torch.nn.Module`` subclasses: remembers the constructor arguments.

    Put it first in the bases, ``class Net(Rebuildable, nn.Module)``; the
    arguments must be plain Python values (numbers, strings, tuples, None).
    """

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
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


def module_from_state(state):
    """Rebuild a module described by :func:`module_to_state` (skhop classes only)."""
    path = state[_MARKER]
    mod_name, _, qualname = path.partition(":")
    if not (mod_name == "skhop" or mod_name.startswith("skhop.")):
        raise ValueError(f"refusing to rebuild a module of class {path!r}: not a skhop class.")
    obj = importlib.import_module(mod_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (
        isinstance(obj, type) and issubclass(obj, Rebuildable) and issubclass(obj, torch.nn.Module)
    ):
        raise ValueError(f"{path!r} is not a rebuildable skhop module.")
    module = obj(*state["args"], **state["kwargs"])
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state["state"].items()})
    module.train(state["training"])
    return module
