#!/usr/bin/env python3
"""Write the tutorial notebooks from their Python sources and execute them, storing the outputs.

Each notebook ``tutorials/NN_name.ipynb`` is generated from ``tutorials/sources/NN_name.py``,
a plain Python file in the "percent" format (as used by Jupytext and VS Code)::

    # %% [markdown]
    # # A title
    # Some *markdown* text.

    # %%
    import amortflow as af

Edit the source, then rebuild::

    python tutorials/_build_notebooks.py                 # all notebooks
    python tutorials/_build_notebooks.py 01 03           # only those whose name starts so
    python tutorials/_build_notebooks.py --no-execute    # write the cells, keep no outputs

Execution runs every notebook top to bottom in a fresh kernel of *this* Python interpreter
(``sys.executable``) with the repository on ``PYTHONPATH``, inside a temporary working
directory (files a notebook writes do not land in the repository). ``tests/test_tutorials.py``
uses the same kernel set-up to execute the stored notebooks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat

TUTORIALS = Path(__file__).resolve().parent
ROOT = TUTORIALS.parent
SOURCES = TUTORIALS / "sources"
KERNEL_NAME = "amortflow-tutorials"
#: Seconds one cell may run before execution fails.
CELL_TIMEOUT = 600
#: Resolution of the stored figures.
FIGURE_DPI = 72
_CELL_MARKER = re.compile(r"^# %%(?P<markdown>\s*\[markdown\])?\s*$")


# --- sources -> notebook ---------------------------------------------------------------------
def read_cells(path: Path) -> list[tuple[str, str]]:
    """The cells of a percent-format source as ``[(kind, text)]``, kind ``"markdown"`` or ``"code"``.

    Markdown lines lose their leading ``# `` (or a lone ``#``); leading and trailing blank
    lines of every cell are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        marker = _CELL_MARKER.match(line)
        if marker:
            cells.append(("markdown" if marker.group("markdown") else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"{path}: text before the first '# %%' cell marker: {line!r}")
    result = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [_uncomment(line, path) for line in lines]
        text = "\n".join(lines).strip("\n")
        if text:
            result.append((kind, text))
    return result


def _uncomment(line: str, path: Path) -> str:
    if line.strip() == "" or line == "#":
        return ""
    if not line.startswith("# "):
        raise ValueError(f"{path}: a markdown line must start with '# ', received {line!r}")
    return line[2:]


def build_notebook(source: Path) -> nbformat.NotebookNode:
    """A notebook (no outputs) with the cells of ``source``."""
    nb = nbformat.v4.new_notebook()
    for kind, text in read_cells(source):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    _stable_ids(nb, source.stem)
    return nb


def _stable_ids(nb: nbformat.NotebookNode, stem: str) -> None:
    """Deterministic cell ids, so rebuilding an unchanged source gives an unchanged file."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem[:2]}-{i:03d}"


def notebook_path(source: Path) -> Path:
    return TUTORIALS / f"{source.stem}.ipynb"


# --- kernel -------------------------------------------------------------------------------
@contextmanager
def kernel_manager():
    """A ``jupyter_client.KernelManager`` for a kernel of this interpreter, with the repository importable.

    The kernel spec lives in a temporary folder, so nothing is installed and the result does not
    depend on which "python3" kernel happens to be registered on the machine.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="amortflow-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        # Modest resolution keeps the stored notebooks small (figures are base64 PNGs).
        rc_file = Path(tmp) / "matplotlibrc"
        rc_file.write_text(f"figure.dpi: {FIGURE_DPI}\n")
        env = {
            "PYTHONPATH": python_path,
            # Inline figures even when the calling process runs headless (MPLBACKEND=Agg).
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MATPLOTLIBRC": str(rc_file),
        }
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "amortflow tutorials",
            "language": "python",
            "env": env,
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        specs = KernelSpecManager(kernel_dirs=[str(Path(tmp) / "kernels")])
        yield KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def execute(nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT) -> float:
    """Execute ``nb`` in place in a temporary working directory; return the wall time in seconds."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="amortflow-tutorial-") as workdir, kernel_manager() as km:
        client = NotebookClient(
            nb, km=km, timeout=timeout, record_timing=False, allow_errors=False, resources={"metadata": {"path": workdir}}
        )
        start = time.perf_counter()
        client.execute()
        return time.perf_counter() - start


# --- tidy outputs -------------------------------------------------------------------------
#: Start-up lines of TensorFlow's C++ runtime (with time stamps and process ids) and tqdm's notice
#: that ipywidgets is missing: machine-specific noise that would change at every rebuild.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\]"
    r"|.*TqdmWarning: IProgress not found|\s+from \.autonotebook import tqdm as notebook_tqdm)"
)


def tidy_outputs(nb: nbformat.NotebookNode) -> None:
    """Keep what a reader saw: consecutive stream outputs are merged, progress bars redrawn with
    carriage returns keep their final state, and machine-specific start-up noise is dropped."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            previous = outputs[-1] if outputs else None
            if output.get("output_type") == "stream" and previous is not None and previous.get("output_type") == "stream" \
                    and previous["name"] == output["name"]:  # fmt: skip
                previous["text"] += output["text"]
            else:
                outputs.append(output)
        for output in outputs:
            if output.get("output_type") == "stream":
                lines = collapse_carriage_returns(output["text"]).split("\n")
                output["text"] = "\n".join(line for line in lines if not _NOISE.match(line))
        cell["outputs"] = [o for o in outputs if not (o.get("output_type") == "stream" and not o["text"].strip())]


def collapse_carriage_returns(text: str) -> str:
    """What a terminal shows for ``text``: every ``\\r`` overwrites its line from the start."""
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------
def select_sources(prefixes: list[str]) -> list[Path]:
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if prefixes:
        sources = [s for s in sources if any(s.stem.startswith(p) for p in prefixes)]
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (e.g. 01 03_likelihood); default all")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    args = parser.parse_args(argv)
    sources = select_sources(args.names)
    if not sources:
        parser.error(f"no source in {SOURCES} matches {args.names}")
    for source in sources:
        nb = build_notebook(source)
        if not args.no_execute:
            try:
                seconds = execute(nb)
            except Exception:
                failed = Path(tempfile.gettempdir()) / f"{source.stem}.failed.ipynb"
                tidy_outputs(nb)
                nbformat.write(nb, failed)
                print(f"{source.stem}: execution failed; the partly executed notebook is in {failed}", flush=True)
                raise
            tidy_outputs(nb)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{source.stem}: executed in {seconds:.1f} s (load average {load:.1f})", flush=True)
        target = notebook_path(source)
        nbformat.write(nb, target)
        print(f"  wrote {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
