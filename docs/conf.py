"""Sphinx configuration: myst-nb renders the stored tutorial notebooks (never re-executes them)."""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# Sphinx only reads files below docs/: copy the notebooks in (the copy is git-ignored).
_TUTORIALS_COPY = DOCS / "tutorials"
shutil.rmtree(_TUTORIALS_COPY, ignore_errors=True)
_TUTORIALS_COPY.mkdir()
for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
    shutil.copy2(notebook, _TUTORIALS_COPY / notebook.name)

project = "amortflow"
author = "The amortflow developers"
copyright = "2026, The amortflow developers"
release = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
# Methods we override without a docstring would otherwise show Keras' own (Google-style) text.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True, "show-inheritance": True}
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "amsmath"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
html_theme = "alabaster"
html_title = "amortflow"
