"""Benchmark tests never touch the user's cache of reference samples."""

import pytest

from amortflow.benchmarks.cache import CACHE_ENV_VAR


@pytest.fixture(autouse=True)
def isolated_reference_cache(tmp_path, monkeypatch):
    """Point ``$AMORTFLOW_CACHE_DIR`` at a fresh temporary folder for every test."""
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache" / "reference"
