"""Sphinx configuration for the skhop documentation.

Build from the repository root with::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

The gallery scripts ``examples/plot_*.py`` run during the build
(sphinx-gallery) at their full size, each well under a minute on two cores.
``SKHOP_EXAMPLES_QUICK=1`` runs them with reduced sizes (seconds each), for a
fast check of the pages; ``SKHOP_DOCS_NO_GALLERY=1`` does not run them at all.

Benchmark tables are not retyped: each ``benchmarks/results/<name>.md``
written by a committed benchmark script is included as it is (see
:func:`_benchmark_includes`).
"""

import inspect
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
sys.path.insert(0, str(ROOT))

import skhop

project = "skhop"
author = "The skhop developers"
copyright = "2026, The skhop developers"
version = release = skhop.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "generated/bench/*",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
]
root_doc = "index"
default_role = "literal"
myst_enable_extensions = []

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
# The class template lists the methods defined by the class itself; no stub
# pages for every inherited method.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# reStructuredText reads a bare word ending in "_" (``n_features_in_``) as a
# link to a target of that name. Docstrings write fitted attributes the
# sklearn way, e.g. "ndarray of shape (n_features_in_,)" in a type; escape
# the underscore of such words outside literals, bold names and doctests.
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w\\])([A-Za-z]\w*)_(?![\w`])")
_PROTECTED = re.compile(r"(``.*?``|`[^`]*`|\*\*.*?\*\*)")


def _escape_trailing_underscores(app, what, name, obj, options, lines):
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">>>"):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if in_doctest or stripped.startswith(".."):
            continue
        parts = _PROTECTED.split(line)
        parts[::2] = [_TRAILING_UNDERSCORE.sub(r"\1\\_", p) for p in parts[::2]]
        lines[i] = "".join(parts)


def _constructor_signature(app, what, name, obj, options, signature, return_annotation):
    # The torch modules record their constructor arguments in a generic
    # ``__new__(cls, *args, **kwargs)`` (see skhop.nn._rebuild), which autodoc
    # would show; show the signature of ``__init__`` instead.
    if what == "class" and signature == "(*args, **kwargs)" and "__init__" in vars(obj):
        params = list(inspect.signature(obj.__init__).parameters.values())[1:]
        return str(inspect.Signature(params)), return_annotation
    return None


def setup(app):
    # after numpydoc (priority 500), which turns sections into field lists
    app.connect("autodoc-process-docstring", _escape_trailing_underscores, priority=600)
    app.connect("autodoc-process-signature", _constructor_signature)


# -- Benchmark tables ----------------------------------------------------------
# Benchmark scripts write markdown tables to benchmarks/results/. The pages
# include generated/bench/<name>.md, a copy of that file, or a note saying
# which command produces it when it has not been produced in this checkout.
BENCHMARKS = {
    "bench_core": "python benchmarks/bench_core.py",
    "uci": "python benchmarks/uci.py",
    "grid_search": "python benchmarks/grid_search.py",
    "mil": "python benchmarks/mil.py",
    "retrieval": "python benchmarks/retrieval.py",
    "retrieval_speed": "python benchmarks/retrieval_speed.py",
    "dask_scaling": "python benchmarks/dask_scaling.py",
}


def _copied_image(match, results, out):
    """The markdown image link of ``match``, its file copied into ``out`` when it exists."""
    link, image = match.groups()
    if (results / image).exists():
        shutil.copyfile(results / image, out / image)
    return f"{link}/generated/bench/{image})"


def _benchmark_includes():
    out = DOC / "generated" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    results = ROOT / "benchmarks" / "results"
    names = dict(BENCHMARKS)
    names.update({p.stem: None for p in results.glob("*.md") if p.stem not in names})
    for name, command in names.items():
        src = results / f"{name}.md"
        if src.exists():
            # headings of the file would become sections of the including
            # page; keep them as bold lines
            text = re.sub(
                r"^#{1,6}\s+(.+)$", r"**\1**", src.read_text(encoding="utf-8"), flags=re.MULTILINE
            )
            # an image beside the results file is copied beside the copy, and
            # linked from the source root, so every including page finds it
            text = re.sub(
                r"(!\[[^\]]*\]\()([^)/]+\.png)\)",
                lambda m: _copied_image(m, results, out),
                text,
            )
        else:
            text = (
                f"*This table is written by `{command}` into "
                f"`benchmarks/results/{name}.md`; it has not been produced in this "
                "checkout.*\n"
            )
        target = out / f"{name}.md"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


_benchmark_includes()

# -- Gallery -----------------------------------------------------------------
QUICK = os.environ.get("SKHOP_EXAMPLES_QUICK", "0") not in ("", "0")
NO_GALLERY = bool(os.environ.get("SKHOP_DOCS_NO_GALLERY"))


def _rerun_examples_when_the_mode_changes():
    # sphinx-gallery re-runs an example only when its source changed (by
    # MD5); a full build after a quick one (or one that ran nothing) must
    # run them all again, so forget the checksums when the mode changes.
    gallery = DOC / "auto_examples"
    mode = "none" if NO_GALLERY else "quick" if QUICK else "full"
    marker = gallery / ".skhop-build-mode"
    if gallery.is_dir() and (not marker.exists() or marker.read_text() != mode):
        for checksum in gallery.glob("*.md5"):
            checksum.unlink()
    gallery.mkdir(exist_ok=True)
    marker.write_text(mode)


_rerun_examples_when_the_mode_changes()
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|demo)\.py",
    "doc_module": ("skhop",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skhop": None},
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "plot_gallery": "False" if NO_GALLERY else "True",
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "show_memory": False,
    "run_stale_examples": False,
    "min_reported_time": 1,
}

warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skhop {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
}
html_sidebars = {"index": []}
html_show_sourcelink = False
