"""Pieces every skhop estimator shares: device, threads, seeding, persistence."""

import contextlib
import numbers
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["resolve_device", "torch_threads", "seeded", "seed_from", "VersionedStateMixin"]


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


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch intra-op threads, then restore the caller's.

    ``None`` leaves torch's setting alone. Small models train far faster on one
    thread than on several when another process shares the cores.
    """
    if n_threads is None:
        yield
        return
    old = torch.get_num_threads()
    if n_threads != old:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        if n_threads != old:
            torch.set_num_threads(old)


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
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, bool) \
            or n_threads < 1:
        raise ValueError(f"n_threads must be None or a positive int, got {n_threads!r}.")


class VersionedStateMixin:
    """Portable pickles: versions recorded, networks stored as plain weights.

    Every fitted ``torch.nn.Module`` attribute built from a
    :class:`skhop.nn._rebuild.Rebuildable` class is stored as its class path,
    constructor arguments and numpy weights, so a pickle (or a ``skops.io``
    file) holds no torch objects and loads on any machine. The skhop and
    torch versions are recorded; loading under other versions warns.
    """

    def __getstate__(self):
        from . import __version__
        from .nn._rebuild import Rebuildable, module_to_state

        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(
            self.__dict__)
        state = dict(state)
        for key, value in state.items():
            if isinstance(value, torch.nn.Module) and isinstance(value, Rebuildable):
                state[key] = module_to_state(value)
        state["_skhop_versions"] = {"skhop": __version__, "torch": torch.__version__}
        return state

    def __setstate__(self, state):
        from . import __version__
        from .nn._rebuild import is_module_state, module_from_state

        state = {k: module_from_state(v) if is_module_state(v) else v for k, v in state.items()}
        saved = state.pop("_skhop_versions", None)
        if saved is not None:
            now = {"skhop": __version__, "torch": torch.__version__}
            changed = [f"{k} {saved[k]} -> {now[k]}" for k in now if saved.get(k) != now[k]]
            if changed:
                warnings.warn(
                    f"{type(self).__name__} was pickled under other versions ("
                    + ", ".join(changed) + "); predictions may differ.",
                    UserWarning, stacklevel=2,
                )
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)
