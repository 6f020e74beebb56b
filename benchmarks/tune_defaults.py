"""Tuning split for the library's defaults: candidate settings on training seed 1, observations 1-5.

A default is chosen here and reported elsewhere: ``benchmarks/accuracy.py`` scores observations
1-10 (BENCHMARKS.md quotes 6-10 and other seeds as the out-of-sample figures), so no reported
number decides a default. Each candidate is a set of overrides of ``InvertibleNetwork``'s
arguments, applied through the runner's ``settings={"network": ...}``; ``default`` is the library
as it is. One JSON file per (candidate, task, budget) in ``benchmarks/tuning_results/``.

    python benchmarks/tune_defaults.py --candidates default spline --tasks two_moons slcp --budgets 1000
    python benchmarks/tune_defaults.py --summary        # mean C2ST per candidate and task
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "tuning_results"
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing amortflow

#: Candidate overrides of InvertibleNetwork's defaults (none of them names a task).
CANDIDATES = {
    "default": {},
    "affine": {"coupling_design": "affine"},
    "spline": {"coupling_design": "spline"},
    "affine_4x64": {"num_coupling_layers": 4, "coupling_settings": {"dense_args": {"units": 64}}},
    "dropout_0.1": {"coupling_settings": {"dropout": True, "dropout_prob": 0.1}},
}
TUNING_SEED = 1
TUNING_OBSERVATIONS = 5  # observations 1..5


def run(candidate: str, task: str, budget: int, samples: int, observations: int = TUNING_OBSERVATIONS) -> None:
    """Train ``candidate`` once and score observations ``1..observations`` (decisions read only 1-5)."""
    from amortflow.benchmarks.runner import run_npe_benchmark

    result = run_npe_benchmark(task, budget, num_observations=observations, seed=TUNING_SEED,
                               num_posterior_samples=samples, settings={"network": CANDIDATES[candidate]},
                               c2st_classifier="early_stopping")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    scored = "" if observations == TUNING_OBSERVATIONS else f"_K{observations}"
    result.save_json(RESULTS / f"{candidate}_{task}_{budget}{scored}_S{samples}.json")
    print(f"{candidate} {task} {budget}: {result.c2st_mean:.3f} (epochs {result.epochs}, best {result.best_epoch})",
          flush=True)  # fmt: skip


def summary() -> None:
    """Mean C2ST on the tuning split per (task, budget) and candidate, as a markdown table.

    Where ``default`` was not run here, its column comes from the headline run of
    ``benchmarks/accuracy.py`` (same seed and simulations), restricted to observations 1-5.
    """
    rows = {}
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        candidate = path.name.split(f"_{data['task']}_")[0]
        tuning = data["c2st"][:TUNING_OBSERVATIONS]  # a K = 10 run is read on observations 1-5 only
        rows.setdefault((data["task"], data["num_simulations"]), {})[candidate] = sum(tuning) / len(tuning)
    for (task, budget), row in rows.items():
        headline = HERE / "accuracy_results" / f"{task}_{budget}_amortflow_seed{TUNING_SEED}_K10_S1000.json"
        if "default" not in row and headline.is_file():
            c2st = json.loads(headline.read_text())["c2st"][:TUNING_OBSERVATIONS]
            row["default"] = sum(c2st) / len(c2st)
    names = sorted({name for row in rows.values() for name in row})
    print("| task | budget | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for (task, budget), row in sorted(rows.items()):
        cells = " | ".join(f"{row[name]:.3f}" if name in row else "" for name in names)
        print(f"| {task} | {budget} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", nargs="+", choices=sorted(CANDIDATES), default=["default"])
    parser.add_argument("--tasks", nargs="+", default=["two_moons"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=TUNING_OBSERVATIONS,
                        help="observations 1..K scored (default 5). With K = 10 the decision still reads only "
                             "1-5, and observations 6-10 of the same run are the out-of-sample figure")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args(argv)
    if args.summary:
        summary()
        return 0
    for budget in args.budgets:
        for task in args.tasks:
            for candidate in args.candidates:
                run(candidate, task, budget, args.samples, args.observations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
