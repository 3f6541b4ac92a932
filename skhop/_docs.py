"""The parameter docs every estimator shares, written once and substituted.

An estimator's docstring holds a line ``%(device)s`` (likewise ``n_threads``,
``verbose``, ``random_state``) where the shared entry goes, and the class is
decorated with :func:`shared_parameters`, which fills in the entry with the
estimator's own detail (what is seeded, what is printed).
"""

import re
import textwrap

__all__ = ["shared_parameters"]

_SHARED = {
    "device": (
        'device : {"cpu", "cuda", "auto"} or torch.device, default="cpu"',
        'Where the Torch work runs ("auto": CUDA when available). {}',
    ),
    "n_threads": (
        "n_threads : int or None, default=1",
        "Torch threads while {}, restored afterwards; ``None`` leaves the caller's "
        "setting alone. Small work runs fastest on one thread when other processes "
        "share the cores.",
    ),
    "verbose": ("verbose : int, default=0", "When > 0, print {}."),
    "random_state": (
        "random_state : int, RandomState instance or None, default=None",
        "Seeds {}. The caller's global random state is left untouched; an int gives "
        "identical refits.",
    ),
}


def shared_parameters(**details):
    """Class decorator: put the shared entry for each named parameter in the docstring.

    Parameters
    ----------
    **details : str
        For each parameter (``device``, ``n_threads``, ``verbose``,
        ``random_state``), the estimator's own part of the sentence.
    """

    def decorate(cls):
        doc = cls.__doc__
        for name, detail in details.items():
            head, body = _SHARED[name]
            found = re.search(rf"^( *)%\({name}\)s$", doc, flags=re.MULTILINE)
            if found is None:
                raise RuntimeError(f"{cls.__name__}'s docstring has no %({name})s line.")
            indent = found.group(1)
            text = textwrap.fill(
                body.format(detail).strip(),
                width=79,
                initial_indent=indent + "    ",
                subsequent_indent=indent + "    ",
            )
            doc = doc[: found.start()] + indent + head + "\n" + text + doc[found.end() :]
        cls.__doc__ = doc
        return cls

    return decorate
