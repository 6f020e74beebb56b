#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.10+ and pip.

    python3 dev.py quickstart   # set up .venv, train the quickstart model, write its plots
    python3 dev.py test         # set up .venv, run the test suite
    python3 dev.py docs         # set up .venv, build the documentation (warnings are errors)

The virtual environment lives in ``.venv`` and is (re)installed whenever setup.cfg,
pyproject.toml or requirements.txt change.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".amortflow-installed"
INSTALL_INPUTS = ("setup.cfg", "pyproject.toml", "requirements.txt")


def _install_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT)


def ensure_environment() -> None:
    """Create ``.venv`` and install amortflow with its test and docs extras, once per dependency change."""
    if sys.version_info < (3, 10):
        sys.exit(f"amortflow needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    if not PYTHON.exists():
        print(f"Creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[test,docs]")
    _run(PYTHON, "-m", "ipykernel", "install", "--sys-prefix", "--name", "amortflow", "--display-name", "amortflow")
    STAMP.write_text(fingerprint)


def main(argv: list[str]) -> int:
    commands = {
        "quickstart": [BIN / "amortflow", "quickstart", "--out", "quickstart_output", *argv[1:]],
        "test": [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15", *argv[1:]],
        "docs": [PYTHON, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html"],
    }
    if not argv or argv[0] not in commands:
        print(__doc__.strip())
        return 2
    ensure_environment()
    return subprocess.run([str(a) for a in commands[argv[0]]], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
