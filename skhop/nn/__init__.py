"""Modern Hopfield networks in plain PyTorch: functional core and layers.

Nothing here imports scikit-learn; the modules serve plain PyTorch and
skorch users as well as the skhop estimators.
"""

from . import functional
from ._mil import MILNet
from ._rows import RowHopfieldLayer
from ._separation import separate
from .functional import hopfield_energy, hopfield_partial, hopfield_retrieve, merge_partials
from .modules import Hopfield, HopfieldLayer, HopfieldPooling

__all__ = [
    "functional",
    "separate",
    "hopfield_retrieve",
    "hopfield_energy",
    "hopfield_partial",
    "merge_partials",
    "Hopfield",
    "HopfieldPooling",
    "HopfieldLayer",
    "MILNet",
    "RowHopfieldLayer",
]
