"""Run a block with a library's global thread count set, then restore the caller's."""

import contextlib

import torch

__all__ = ["limit_threads", "torch_threads"]


@contextlib.contextmanager
def limit_threads(get, set_, n_threads):
    """Run the block with ``set_(n_threads)``, then restore ``get()``'s value.

    ``None`` leaves the setting alone. One helper for every library with a
    global thread count (torch, faiss's OpenMP).
    """
    if n_threads is None:
        yield
        return
    old = get()
    if n_threads != old:
        set_(n_threads)
    try:
        yield
    finally:
        if n_threads != old:
            set_(old)


def torch_threads(n_threads):
    """:func:`limit_threads` for torch's intra-op threads.

    Small models train far faster on one thread than on several when another
    process shares the cores.
    """
    return limit_threads(torch.get_num_threads, torch.set_num_threads, n_threads)
