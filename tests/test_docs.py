"""The documentation builds with warnings treated as errors (what ``python3 dev.py docs`` runs).

Sphinx renders the stored tutorial notebooks (myst-nb, no execution) and the API reference
from the docstrings, so a broken docstring, a notebook missing from the toctree or a dead
cross-reference fails here. The HTML goes to a temporary folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(tmp_path / "html")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    # Only Sphinx's own lines: TensorFlow's start-up messages on stderr are not warnings.
    problems = [line for line in result.stderr.splitlines() if "WARNING:" in line or "ERROR:" in line]
    problems = [line for line in problems if "absl::InitializeLog" not in line]
    assert result.returncode == 0, "Sphinx failed:\n" + "\n".join(problems or result.stderr.splitlines()[-30:])
    assert (tmp_path / "html" / "tutorials" / "01_quickstart.html").exists()
