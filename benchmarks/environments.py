"""Build the competitor libraries' virtual environments under ``benchmarks/.envs/`` (git-ignored).

None of these libraries is a dependency of amortflow; each lives in its own environment:

| name | Python | packages |
|---|---|---|
| ``bayesflow1`` | 3.10/3.11 | bayesflow 1.1.6, tensorflow-cpu 2.15.1, tensorflow-probability 0.23 |
| ``bayesflow2`` | 3.12 if found (bayesflow 2.1), else 3.11 (bayesflow 2.0.12) | bayesflow 2.x, tensorflow |
| ``sbi`` | 3.11 | sbi 0.27, torch 2.13 (CPU) |

    python benchmarks/environments.py            # build all missing environments
    python benchmarks/environments.py sbi        # build one
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ENVS = Path(__file__).resolve().parent / ".envs"

# BayesFlow 1.1.6 pins tensorflow<2.16 (the GPU-capable wheel); the CPU wheel is the same code
# and a third of the download, so its other requirements are installed explicitly and
# bayesflow itself without dependencies (its optional `aesara` import is not needed here).
SPECS: dict[str, dict] = {
    "bayesflow1": {
        "pythons": ["python3.11", "python3.10"],
        "steps": [
            ["tensorflow-cpu==2.15.1", "tensorflow-probability==0.23.0", "numpy<2", "pandas<2.3", "h5py",
             "scikit-learn", "scipy", "seaborn", "tqdm", "matplotlib"],
            ["--no-deps", "bayesflow==1.1.6"],
        ],
    },
    "bayesflow2": {
        "pythons": ["python3.12", "python3.13"],
        "steps": [["bayesflow==2.1.0", "tensorflow==2.21.0"]],
        "fallback": {"pythons": ["python3.11"], "steps": [["bayesflow==2.0.12", "tensorflow==2.21.0"]]},
    },
    "sbi": {"pythons": ["python3.11", "python3.12"], "steps": [["torch==2.13.0", "sbi==0.27.0"]]},
}


def _runs(python: str) -> bool:
    """True if ``python`` starts (a pyenv shim for a version not selected exits with status 127)."""
    try:
        return subprocess.run([python, "-c", "pass"], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def find_python(candidates: list[str]) -> str | None:
    """Return the first working interpreter of ``candidates`` on PATH or under pyenv, or None."""
    for name in candidates:
        found = shutil.which(name)
        if found and _runs(found):
            return found
        for pyenv_python in sorted(Path.home().glob(f".pyenv/versions/{name[6:]}*/bin/{name}")):
            if _runs(str(pyenv_python)):
                return str(pyenv_python)
    return None


def env_python(name: str) -> Path:
    return ENVS / name / "bin" / "python"


def build(name: str) -> Path:
    """Create environment ``name`` if missing and return its Python."""
    spec = SPECS[name]
    python = find_python(spec["pythons"])
    if python is None and "fallback" in spec:
        spec = spec["fallback"]
        python = find_python(spec["pythons"])
    if python is None:
        raise RuntimeError(f"no interpreter among {spec['pythons']} found for the {name} environment")
    target = ENVS / name
    marker = target / ".complete"
    if marker.exists():
        return env_python(name)
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(target)], check=True)
    for step in spec["steps"]:
        subprocess.run([str(env_python(name)), "-m", "pip", "install", "--quiet", *step], check=True)
    marker.write_text(" ".join(" ".join(step) for step in spec["steps"]))
    return env_python(name)


def main(argv: list[str]) -> int:
    for name in argv or list(SPECS):
        print(f"{name}: {build(name)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
