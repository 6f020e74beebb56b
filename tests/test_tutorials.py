"""Execute every tutorial notebook top to bottom; any error fails its test.

The notebooks run in a kernel of the interpreter running the tests (``sys.executable``, with the
repository on ``PYTHONPATH``), in a temporary working directory, so the stored notebooks are
never modified. The kernel set-up and the source-to-notebook conversion are shared with
``tutorials/_build_notebooks.py``, which writes the notebooks.
"""

from __future__ import annotations

import importlib.util
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))
#: Notebooks executing at once beside the test process: one per further core, at most 4 (a kernel holds ~1 GB).
NOTEBOOK_WORKERS = max(1, min(4, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) - 1))


def _load_builder():
    spec = importlib.util.spec_from_file_location("_build_notebooks", TUTORIALS / "_build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _load_builder()


def test_every_source_has_a_notebook_and_back():
    sources = {p.stem for p in builder.select_sources([])}
    notebooks = {p.stem for p in NOTEBOOKS}
    assert sources, "no tutorial sources found in tutorials/sources/"
    assert sources == notebooks, (
        f"sources without notebook: {sources - notebooks}; notebooks without source: {notebooks - sources}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_matches_its_source(path):
    """The stored notebook holds exactly the cells of its source (rebuild it after editing the source)."""
    stored = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    assert stored == builder.read_cells(builder.SOURCES / f"{path.stem}.py"), (
        f"{path.name} is out of date with tutorials/sources/{path.stem}.py; run "
        f"`python tutorials/_build_notebooks.py {path.stem[:2]}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_notebook_has_outputs(path):
    """Notebooks are committed executed: every code cell ran, and the figures are stored."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), f"{path.name} has unexecuted cells"
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 1, f"{path.name} stores no figures"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} stores an error output: {errors[0].get('ename')}"


def execute_fresh(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` with its outputs cleared, executed; raises CellExecutionError on any error."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    builder.execute(nb, timeout=builder.CELL_TIMEOUT)
    return nb


#: Notebooks started by :func:`notebook_pool`, by path.
_RUNS: dict[Path, Future] = {}


@contextmanager
def notebook_pool(paths: list[Path]):
    """Execute ``paths`` in the background, ``NOTEBOOK_WORKERS`` at a time, while the rest of the suite runs.

    ``tests/conftest.py`` enters it when the session starts, with the notebooks the session
    selected. Each notebook runs in a kernel process of its own and keeps about one core busy
    (small networks, Python-bound steps), so on two cores the notebooks (most of the suite's
    time) overlap with the other tests instead of following them.
    """
    pool = ThreadPoolExecutor(max_workers=NOTEBOOK_WORKERS, thread_name_prefix="notebook")
    try:
        _RUNS.update({path: pool.submit(execute_fresh, path) for path in paths})
        yield
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _RUNS.clear()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    run = _RUNS.get(path)
    nb = execute_fresh(path) if run is None else run.result()  # re-raises the notebook's CellExecutionError
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
