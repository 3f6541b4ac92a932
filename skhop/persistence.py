"""Saving and loading fitted skhop estimators safely.

A fitted estimator pickles (``pickle``, ``joblib``) and saves with
``skops.io``. Its networks are stored as class path, constructor arguments
and numpy weights, so a file holds no torch objects. ``skops.io`` refuses
every type it has not been told to trust: pass :func:`trusted_types`, the
short list of skhop's own estimator types, never the list a file itself
names (``skops.io.get_untrusted_types(file=...)`` trusts whatever the file
asks for, an injected ``os.system`` included).
"""

import importlib

__all__ = ["trusted_types"]

# Beside the public estimators, the classes a saved skhop model may contain:
# the bag scaler and the plain holders of fitted state (arrays and numbers).
_ALSO_TRUSTED = {
    "BagStandardScaler": "skhop.preprocessing",
    "HopfieldMemory": "skhop.nn.memory",
}


def trusted_types():
    """The skhop types a ``skops.io`` file of a skhop model may need trusted.

    Types of scikit-learn, numpy and the Python builtins that skops trusts
    by default need no listing; anything else a file names is refused.

    Returns
    -------
    list of str
        Fully qualified names of skhop's estimator classes and of the plain
        classes that hold their fitted state, as skops spells them.

    Examples
    --------
    >>> from skhop.persistence import trusted_types
    >>> "skhop._classifier.HopfieldClassifier" in trusted_types()
    True

    Loading a saved model (``skops`` installed)::

        import skops.io as sio
        model = sio.load("model.skops", trusted=trusted_types())
    """
    import skhop

    classes = [getattr(skhop, name) for name in skhop._ESTIMATORS]
    classes += [getattr(importlib.import_module(m), n) for n, m in _ALSO_TRUSTED.items()]
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in classes]
