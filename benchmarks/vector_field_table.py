"""The issue-24 table: flow matching and consistency models against the coupling flow and sbi's FMPE.

Reads the result files of ``benchmarks/accuracy.py`` (``accuracy_results/*.json``) of one budget and
prints, per task, the mean C2ST of amortflow's README recipe with its default coupling flow
(``amortflow``), with ``FlowMatching`` (``amortflow-fm``) and ``ConsistencyModel`` (``amortflow-cm``),
and of sbi's FMPE with its defaults (``sbi-fmpe``), all on the same simulations and reference draws,
with the paired differences (``sd(d) / sqrt(K)`` standard errors) over observations 1-10 and 6-10
(the observations no default was tuned on; see ``defaults_table.py``).

    python benchmarks/vector_field_table.py --budget 10000 --seed 1 --observations 10 --samples 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defaults_table import HELD_OUT, _load, _paired, _verdict  # noqa: E402

#: Column label -> file name part, in the order of the table.
METHODS = {"coupling": "amortflow", "FM": "amortflow-fm", "CM": "amortflow-cm", "sbi FMPE": "sbi-fmpe"}
#: The paired differences reported: (a, b) means a - b.
PAIRS = (("FM", "coupling"), ("FM", "sbi FMPE"), ("CM", "coupling"), ("CM", "sbi FMPE"))
TASKS = ("slcp", "slcp_distractors", "lotka_volterra", "two_moons", "gaussian_linear", "gaussian_mixture", "sir",
         "bernoulli_glm", "gaussian_linear_uniform", "bernoulli_glm_raw", "inverse_kinematics")  # fmt: skip


def _mean_cell(values) -> str:
    return "-" if values is None else f"{values.mean():.3f} ({values[HELD_OUT].mean():.3f})"


def _pair_cells(a, b) -> list[str]:
    if a is None or b is None:
        return ["-", "-"]
    return [f"{_paired(a, b)} ({_verdict(a, b)})",
            f"{_paired(a[HELD_OUT], b[HELD_OUT])} ({_verdict(a[HELD_OUT], b[HELD_OUT])})"]  # fmt: skip


def table(budget: int, seed: int, k: int, samples: int) -> str:
    head = ["task", *(f"{m} 1-10 (6-10)" for m in METHODS)]
    for a, b in PAIRS:
        head += [f"d {a} - {b} 1-10", f"d {a} - {b} 6-10"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in TASKS:
        runs = {m: _load(task, budget, name, seed, k, samples) for m, name in METHODS.items()}
        if all(runs[m] is None for m in ("FM", "CM", "sbi FMPE")):
            continue
        cells = [task, *(_mean_cell(v) for v in runs.values())]
        for a, b in PAIRS:
            cells += _pair_cells(runs[a], runs[b])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(table(args.budget, args.seed, args.observations, args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
