"""The headline accuracy table: amortflow's defaults against sbi's defaults, paired per observation.

Reads the result files of ``benchmarks/accuracy.py`` (``accuracy_results/*.json``) and prints, per
task and budget, the mean C2ST of amortflow's NPE (the README recipe), of sbi's NPE with MAF (its
default) and with NSF, and the paired differences amortflow - sbi with their standard errors
(``sd(d) / sqrt(K)`` over the K observations, the same simulations and reference draws for both).
Two columns per comparison: all observations 1-10, and 6-10 only (the observations no default
was ever tuned on; ``benchmarks/tune_defaults.py`` uses 1-5).

    python benchmarks/defaults_table.py --budgets 1000 10000 --seed 1 --observations 10 --samples 1000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "accuracy_results"
COMPETITORS = {"sbi": "sbi MAF", "sbi-nsf": "sbi NSF"}
HELD_OUT = slice(5, 10)  # observations 6-10


def _load(task: str, budget: int, method: str, seed: int, k: int, samples: int) -> np.ndarray | None:
    path = RESULTS / f"{task}_{budget}_{method}_seed{seed}_K{k}_S{samples}.json"
    return np.asarray(json.loads(path.read_text())["c2st"]) if path.is_file() else None


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    d = a - b
    return f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}"


def _verdict(a: np.ndarray, b: np.ndarray) -> str:
    """'ahead' / 'level' / 'behind' at two standard errors of the paired difference."""
    d = a - b
    se = d.std(ddof=1) / np.sqrt(len(d))
    return "behind" if d.mean() > 2 * se else ("ahead" if d.mean() < -2 * se else "level")


def table(budgets: list[int], seed: int, k: int, samples: int) -> str:
    head = ("| task | budget | amortflow 1-10 (6-10) | sbi MAF | sbi NSF | d MAF 1-10 | d MAF 6-10 | "
            "d NSF 1-10 | d NSF 6-10 |")  # fmt: skip
    lines = [head, "|" + "---|" * 9]
    tasks = sorted({p.name.split(f"_{b}_amortflow_")[0] for b in budgets for p in RESULTS.glob(f"*_{b}_amortflow_seed{seed}_K{k}_S{samples}.json")})
    for budget in budgets:
        for task in tasks:
            ours = _load(task, budget, "amortflow", seed, k, samples)
            if ours is None:
                continue
            cells = [task, f"{budget:,}", f"{ours.mean():.3f} ({ours[HELD_OUT].mean():.3f})"]
            theirs = {m: _load(task, budget, m, seed, k, samples) for m in COMPETITORS}
            cells += [f"{v.mean():.3f}" if v is not None else "" for v in theirs.values()]
            for v in theirs.values():
                if v is None:
                    cells += ["", ""]
                    continue
                cells += [f"{_paired(ours, v)} ({_verdict(ours, v)})",
                          f"{_paired(ours[HELD_OUT], v[HELD_OUT])} ({_verdict(ours[HELD_OUT], v[HELD_OUT])})"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(table(args.budgets, args.seed, args.observations, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
