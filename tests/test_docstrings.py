"""Every public class and function has a numpydoc docstring with an example.

The examples themselves run as doctests (``--doctest-modules`` over
``skhop/``); this file checks that they are there, that the docstrings parse
as numpydoc, and that every parameter of a public function, constructor or
public method is documented (and nothing undocumented is listed).
"""

import importlib
import inspect

import pytest

docscrape = pytest.importorskip("numpydoc.docscrape")

# Public namespaces and, for the top level, where each estimator lives.
MODULES = [
    "skhop.nn.functional",
    "skhop.nn",
    "skhop.datasets",
    "skhop.preprocessing",
    "skhop.utils",
    "skhop.distributed",
    "skhop.persistence",
]


def _public_objects():
    """(qualified name, object) for every public class and function.

    An import error in the project's own code fails collection: nothing is skipped.
    """
    skhop = importlib.import_module("skhop")
    found, seen = [(f"skhop.{name}", getattr(skhop, name)) for name in skhop._ESTIMATORS], set()
    for module in MODULES:
        mod = importlib.import_module(module)
        names = getattr(mod, "__all__", None)
        if names is None:
            names = [n for n in vars(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if id(obj) in seen:  # e.g. skhop.nn.hopfield_retrieve, from skhop.nn.functional
                continue
            seen.add(id(obj))
            found.append((f"{module}.{name}", obj))
    return found


PUBLIC = _public_objects()

# Known gaps, each with what is missing. Strict: once a gap is filled the test
# reports XPASS as a failure, so the entry is removed in the same change.
KNOWN_GAPS = {}


def _cases(test, items):
    return [
        pytest.param(
            name, obj, id=name, marks=pytest.mark.xfail(reason=KNOWN_GAPS[test, name], strict=True)
        )
        if (test, name) in KNOWN_GAPS
        else pytest.param(name, obj, id=name)
        for name, obj in items
    ]


def _doc(obj):
    if inspect.isclass(obj):
        return docscrape.ClassDoc(obj, config={"show_class_members": False})
    return docscrape.FunctionDoc(obj)


def _documented(section):
    """Parameter names listed in a numpydoc section; "a, b : int" lists both."""
    names = set()
    for param in section:
        for part in param.name.split(","):
            names.add(part.strip().lstrip("*"))
    return names


def _signature_params(func, skip_first):
    params = list(inspect.signature(func).parameters.values())
    if skip_first:
        params = params[1:]
    return {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def test_public_api_is_found():
    present = [name for name, _ in PUBLIC]
    assert "skhop.nn.functional.hopfield_retrieve" in present
    assert "skhop.nn.Hopfield" in present


@pytest.mark.parametrize("name, obj", _cases("test_has_summary_and_examples", PUBLIC))
def test_has_summary_and_examples(name, obj):
    assert inspect.getdoc(obj), f"{name} has no docstring"
    doc = _doc(obj)
    assert "".join(doc["Summary"]).strip(), f"{name}: no one-line summary"
    examples = "\n".join(doc["Examples"])
    assert ">>>" in examples, f"{name}: no Examples section with a runnable example"


@pytest.mark.parametrize("name, obj", _cases("test_parameters_are_documented", PUBLIC))
def test_parameters_are_documented(name, obj):
    doc = _doc(obj)
    if inspect.isclass(obj):
        expected = _signature_params(obj.__init__, skip_first=True)
    else:
        expected = _signature_params(obj, skip_first=False)
    documented = _documented(doc["Parameters"])
    assert expected - documented == set(), f"{name}: undocumented {expected - documented}"
    assert documented - expected == set(), f"{name}: documents unknown {documented - expected}"


def _public_methods():
    out = []
    for name, obj in PUBLIC:
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_") or not inspect.isfunction(member):
                continue
            out.append((f"{name}.{attr}", member))
    return out


METHODS = _public_methods()


@pytest.mark.parametrize("name, method", METHODS, ids=[n for n, _ in METHODS])
def test_public_methods_document_their_parameters(name, method):
    assert inspect.getdoc(method), f"{name} has no docstring"
    documented = _documented(docscrape.FunctionDoc(method)["Parameters"])
    expected = _signature_params(method, skip_first=True)
    assert expected - documented == set(), f"{name}: undocumented {expected - documented}"
    assert documented - expected == set(), f"{name}: documents unknown {documented - expected}"


def _api_reference_entries():
    """(current module, name) for every autosummary entry of doc/api.rst."""
    from pathlib import Path

    api = Path(__file__).resolve().parent.parent / "doc" / "api.rst"
    if not api.exists():
        return None
    entries, module, in_summary = set(), None, False
    for line in api.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(".. currentmodule::"):
            module = stripped.split("::", 1)[1].strip()
        elif stripped.startswith(".. autosummary::"):
            in_summary = True
        elif in_summary and line.startswith("   ") and stripped and not stripped.startswith(":"):
            entries.add(f"{module}.{stripped}")
        elif stripped and not line.startswith(" "):
            in_summary = False
    return entries


def test_api_reference_lists_every_public_name():
    entries = _api_reference_entries()
    if entries is None:
        pytest.skip("doc/api.rst is not there (installed package)")
    missing = []
    for name, _ in PUBLIC:
        short = name.rsplit(".", 1)[1]
        # a function of skhop.nn.functional may be listed there or under skhop.nn
        candidates = {name, f"skhop.nn.{short}"} if name.startswith("skhop.nn.") else {name}
        if not candidates & entries:
            missing.append(name)
    assert not missing, f"not in doc/api.rst: {missing}"


@pytest.mark.parametrize("name", importlib.import_module("skhop")._ESTIMATORS)
def test_shared_parameters_come_from_one_text(name):
    from skhop._docs import _SHARED

    doc = docscrape.ClassDoc(getattr(importlib.import_module("skhop"), name))
    params = {p.name: p for p in doc["Parameters"]}
    for shared, (head, body) in _SHARED.items():
        assert f"{params[shared].name} : {params[shared].type}" == head
        text = " ".join(" ".join(params[shared].desc).split())
        for fixed in body.split("{}"):
            assert " ".join(fixed.split()) in text


def test_shared_parameters_needs_its_marker():
    from skhop._docs import shared_parameters

    class Documented:
        """A class.

        Parameters
        ----------
        %(verbose)s
        """

    assert "verbose : int, default=0" in shared_parameters(verbose="dots")(Documented).__doc__

    class Undocumented:
        """A class without the marker."""

    with pytest.raises(RuntimeError, match="no %\\(verbose\\)s line"):
        shared_parameters(verbose="dots")(Undocumented)
