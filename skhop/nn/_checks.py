"""The one set of argument checks of ``skhop.nn``, run where a value enters.

Integral numbers of any kind (``int``, ``numpy.int64``, ...) count as ints,
as ``torch.nn.Linear`` accepts them; bools do not. Messages show values as
a reader wrote them (``10``, not ``np.int64(10)``).
"""

import math
import numbers

import numpy as np

__all__ = ["plain", "show", "positive_int", "positive_number", "fraction"]


def plain(value):
    """``value`` with numpy scalars (also inside lists and tuples) as plain Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def show(value):
    """A value for an error message: numpy scalars as plain Python values."""
    return repr(plain(value))


def positive_int(name, value, *, allow_none=False):
    """``value`` as a Python int >= 1 (or None when allowed); ValueError otherwise."""
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < 1:
        what = "None or a positive int" if allow_none else "a positive int"
        raise ValueError(f"{name} must be {what}, got {show(value)}.")
    return int(value)


def positive_number(name, value, *, allow_none=False):
    """``value`` as a finite Python float > 0 (or None when allowed); ValueError otherwise."""
    if value is None and allow_none:
        return None
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, (bool, np.bool_))
        or not math.isfinite(value)
        or value <= 0
    ):
        what = "None or a positive number" if allow_none else "a positive number"
        raise ValueError(f"{name} must be {what}, got {show(value)}.")
    return float(value)


def fraction(name, value):
    """``value`` as a Python float in [0, 1); ValueError otherwise."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, (bool, np.bool_))
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(f"{name} must be in [0, 1), got {show(value)}.")
    return float(value)
