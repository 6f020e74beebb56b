"""Execute every tutorial notebook top to bottom; any error fails its test.

The notebooks run in a kernel of the interpreter running the tests (``sys.executable``, with the
repository on ``PYTHONPATH``), in a temporary working directory, so the stored notebooks are
never modified. The kernel set-up and the source-to-notebook conversion are shared with
``tutorials/_build_notebooks.py``, which writes the notebooks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    builder.execute(nb, timeout=builder.CELL_TIMEOUT)  # raises CellExecutionError on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
