"""skhop: modern Hopfield networks as scikit-learn estimators."""

import importlib

__version__ = "0.1.0"

_ESTIMATORS = {
    "HopfieldClassifier": "._classifier",
    "HopfieldMILClassifier": "._mil",
    "KernelHopfieldRetriever": "._retriever",
    "HopfieldImputer": "._imputer",
}
_SUBMODULES = ("nn", "datasets", "preprocessing", "utils", "persistence")

__all__ = ["__version__", *_ESTIMATORS, *_SUBMODULES]


def __getattr__(name):
    # Estimators are imported on first use, so `import skhop.nn` stays light.
    if name in _ESTIMATORS:
        return getattr(importlib.import_module(_ESTIMATORS[name], __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'skhop' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
