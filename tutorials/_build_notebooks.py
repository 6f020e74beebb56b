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
    python tutorials/_build_notebooks.py 01 --text-only  # only markdown changed: keep the stored outputs

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
        resources = {"metadata": {"path": workdir}}  # the working directory of the kernel
        client = NotebookClient(
            nb, km=km, timeout=timeout, record_timing=False, allow_errors=False, resources=resources
        )
        start = time.perf_counter()
        try:
            client.execute()
        finally:
            # nbclient shuts down only kernels of managers it created itself: stop ours here.
            if km.has_kernel:
                km.shutdown_kernel()
        return time.perf_counter() - start


# --- tidy outputs -------------------------------------------------------------------------
#: Start-up lines of TensorFlow's C++ runtime (with time stamps and process ids) and tqdm's notice
#: that ipywidgets is missing: machine-specific noise that would change at every rebuild.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\]"
    r"|.*TqdmWarning: IProgress not found|\s+from \.autonotebook import tqdm as notebook_tqdm"
    r"|\*{20,}$|\[Compiling module .*Very slow compile\?)"  # XLA's alarm when a busy machine compiles slowly
)
#: A TensorFlow C++ log line that interrupted another line (e.g. a progress bar) without a newline.
_LOG_TAIL = re.compile(r"[IWE]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\].*$")
#: A tqdm progress bar: its description, then a percentage.
_PROGRESS = re.compile(r"^(?P<description>[^|]*?):\s+\d+%\|")


def tidy_outputs(nb: nbformat.NotebookNode) -> None:
    """Keep what a reader saw: consecutive stream outputs are merged, progress bars redrawn with
    carriage returns keep their final state, and machine-specific start-up noise is dropped."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if outputs and _same_stream(outputs[-1], output):
                outputs[-1]["text"] += output["text"]
            else:
                outputs.append(output)
        for output in outputs:
            if output.get("output_type") == "stream":
                lines = [_LOG_TAIL.sub("", line) for line in collapse_carriage_returns(output["text"]).split("\n")]
                lines = [line for line in lines if not _NOISE.match(line)]
                output["text"] = "\n".join(_last_state_of_progress_bars(lines))
        cell["outputs"] = [o for o in outputs if not (o.get("output_type") == "stream" and not o["text"].strip())]


def _last_state_of_progress_bars(lines: list[str]) -> list[str]:
    """Drop a progress bar's line when a later line shows the same bar (cut off by a log message)."""
    last = {}
    for i, line in enumerate(lines):
        match = _PROGRESS.match(line)
        if match:
            last[match.group("description")] = i
    return [line for i, line in enumerate(lines) if not ((m := _PROGRESS.match(line)) and last[m.group("description")] != i)]


def _same_stream(first, second) -> bool:
    return first.get("output_type") == second.get("output_type") == "stream" and first["name"] == second["name"]


def collapse_carriage_returns(text: str) -> str:
    """What a terminal shows for ``text``: every ``\\r`` overwrites its line from the start."""
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p]
        lines.append(parts[-1] if parts else "")
    return "\n".join(lines)


# --- markdown-only updates ---------------------------------------------------------------
def refresh_text(source: Path) -> nbformat.NotebookNode:
    """The notebook of ``source`` with the outputs stored in its executed notebook.

    Only markdown may differ between the two: edited prose does not change what the code
    cells print, so the stored outputs stay valid. Raises ``ValueError`` if any code cell
    changed (or cells were added, removed or reordered): that notebook must be re-executed.
    """
    stored = nbformat.read(notebook_path(source), as_version=4)
    nb = build_notebook(source)
    old_code = [c for c in stored.cells if c.cell_type == "code"]
    new_code = [c for c in nb.cells if c.cell_type == "code"]
    if [c.source for c in old_code] != [c.source for c in new_code]:
        raise ValueError(f"{source.name}: code cells changed since the notebook was executed; re-execute it")
    for old, new in zip(old_code, new_code):
        new["outputs"], new["execution_count"] = old["outputs"], old["execution_count"]
    tidy_outputs(nb)  # idempotent: applies filters added since the notebook was executed
    return nb


# --- command line -------------------------------------------------------------------------
def select_sources(prefixes: list[str]) -> list[Path]:
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if prefixes:
        sources = [s for s in sources if any(s.stem.startswith(p) for p in prefixes)]
    return sources


def _children_cpu_seconds() -> float:
    """User + system CPU time of the finished child processes (the kernels): a measure of a
    notebook's work that, unlike wall time, hardly depends on what else the machine runs."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (e.g. 01 03_likelihood); default all")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    parser.add_argument("--text-only", action="store_true",
                        help="only markdown changed: update it and keep the stored outputs (no execution)")  # fmt: skip
    args = parser.parse_args(argv)
    sources = select_sources(args.names)
    if not sources:
        parser.error(f"no source in {SOURCES} matches {args.names}")
    for source in sources:
        nb = refresh_text(source) if args.text_only else build_notebook(source)
        if not (args.no_execute or args.text_only):
            cpu_before = _children_cpu_seconds()
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
            cpu = _children_cpu_seconds() - cpu_before
            print(f"{source.stem}: executed in {seconds:.1f} s, kernel CPU time {cpu:.1f} s (load average {load:.1f})",
                  flush=True)  # fmt: skip
        target = notebook_path(source)
        nbformat.write(nb, target)
        print(f"  wrote {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
