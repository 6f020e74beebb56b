"""Speed of amortflow side by side with BayesFlow 1.1.6 and BayesFlow 2.x, in one run.

Runs, one after another on the same machine, each in its own process:

1. amortflow: ``benchmarks/speed_quickstart.py`` (training) and ``benchmarks/sampling_throughput.py``;
2. BayesFlow 1.1.6 and BayesFlow 2.x: ``benchmarks/competitors/bayesflow{1,2}_quickstart.py``
   in their own virtual environments (built by ``benchmarks/environments.py`` when missing).

Same model (Gaussian means, D=4, 50 observations), same networks by name (DeepSet(summary_dim=10),
4 coupling layers), batch size 32, the same number of timed steps after a warm-up, validation on 200
simulations, then 1,000 data sets x 1,000 posterior draws. amortflow runs twice: with its default
DeepSet and with BayesFlow's DeepSet size (64 units, 2 equivariant modules). Ratios divide
amortflow's it/s by each competitor's steady-state it/s (its timed steps after the first, whose time
includes retracing), the comparison least favourable to amortflow. Writes
``benchmarks/results/speed.json`` and prints markdown tables.

    python benchmarks/speed.py --epochs 2 --iterations 500
    python benchmarks/speed.py --max-steps bayesflow2=200     # cap a slow competitor
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from environments import build  # noqa: E402


def run_json(command: list[str], timeout: float) -> dict:
    """Run ``command`` and return the last JSON line it printed (or an error record)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERAS_BACKEND", None)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE.parent)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit {done.returncode} after {time.perf_counter() - start:.0f} s", "stderr": done.stderr[-2000:]}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, {model}, load average at start {load:.2f}"


# DeepSet(summary_dim=10) with each competitor's defaults.
COMPETITOR_DEEP_SETS = {
    "bayesflow1": "64 units, 2 equiv.",
    "bayesflow2": "its default: depth 2, 64-dim embedding, SwiGLU, layer norm, attention pooling",
}


def competitor_speed(res: dict) -> float:
    """A competitor's steady-state it/s (its steps after the first), else its overall it/s."""
    return res.get("steady_it_per_s", res["it_per_s"])


def table(results: dict) -> str:
    rows = ["| run | DeepSet | warm-up s | timed steps | wall s | it/s (wall) | it/s (steady) | final val. loss "
            "| draws/s (1000x1000) | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, res in results.items():
        if "error" in res:
            rows.append(f"| {name} | failed: {res['error']} | | | | | | | | |")
            continue
        deep_set = (f"{res['deepset_units']} units, {res['num_equiv']} equiv." if "deepset_units" in res
                    else COMPETITOR_DEEP_SETS.get(name, "its default"))  # fmt: skip
        steady = f"{res['steady_it_per_s']:.1f}" if "steady_it_per_s" in res else "(= wall)"
        draws = f"{res['draws_per_s']:,.0f}" if "draws_per_s" in res else "n/a"
        rows.append(
            f"| {res.get('library', name)} ({name}) | {deep_set} | {res.get('warmup_s', float('nan')):.1f} | {res['steps']} "
            f"| {res['wall_s']:.1f} | {res['it_per_s']:.1f} | {steady} | {res['final_val_loss']:.3f} "
            f"| {draws} | {res['peak_rss_mb']:.0f} |"
        )
    ours = [name for name in results if name.startswith("amortflow") and "error" not in results[name]]
    others = [name for name in results if not name.startswith("amortflow") and "error" not in results[name]]
    if ours and others:
        rows += ["", "| amortflow run | " + " | ".join(f"/ {name} (steady it/s)" for name in others) + " |",
                 "|---|" + "---|" * len(others)]  # fmt: skip
        for name in ours:
            ratios = [results[name]["it_per_s"] / competitor_speed(results[other]) for other in others]
            rows.append(f"| {name} | " + " | ".join(f"{ratio:.1f}x" for ratio in ratios) + " |")
    return "\n".join(rows)


def run_amortflow(common: list[str], extra: list[str], timeout: float) -> dict:
    """amortflow's training run (``speed_quickstart.py`` + ``extra``); sampling throughput with the defaults."""
    train = run_json([sys.executable, str(HERE / "speed_quickstart.py"), *common, *extra], timeout)
    if extra:  # sampling_throughput.py builds the default networks only
        return train
    sample = run_json([sys.executable, str(HERE / "sampling_throughput.py")], timeout)
    return {**train, **{k: v for k, v in sample.items() if k not in ("library",)},
            "peak_rss_mb": max(train.get("peak_rss_mb", 0), sample.get("peak_rss_mb", 0))}  # fmt: skip


# amortflow runs: its defaults, and the DeepSet of BayesFlow 1.1.6 / 2.x (64 units, 2 equivariant
# modules), so the ratio at equal architecture is reported next to the one at default settings.
AMORTFLOW_RUNS = {"amortflow": [], "amortflow-64x2": ["--deepset-units", "64", "--num-equiv", "2"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--libraries", nargs="+", default=[*AMORTFLOW_RUNS, "bayesflow1", "bayesflow2"])
    parser.add_argument("--max-steps", nargs="*", default=[], metavar="LIBRARY=STEPS",
                        help="cap a slow competitor's timed steps, e.g. bayesflow2=200 (iterations per epoch "
                             "become STEPS / epochs); reported in the table's 'timed steps'")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    caps = {name: int(steps) for name, steps in (item.split("=") for item in args.max_steps)}
    common = ["--epochs", str(args.epochs), "--iterations", str(args.iterations)]

    results: dict[str, dict] = {}
    header = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python", "benchmarks/speed.py", *sys.argv[1:]])}  # fmt: skip
    for library in args.libraries:
        load = os.getloadavg()[0]
        print(f"running {library} (load average {load:.2f}) ...", flush=True)
        if library in AMORTFLOW_RUNS:
            results[library] = run_amortflow(common, AMORTFLOW_RUNS[library], args.timeout)
        else:
            python = str(build(library))
            script = HERE / "competitors" / f"{library}_quickstart.py"
            iterations = min(args.iterations, caps.get(library, args.epochs * args.iterations) // args.epochs)
            results[library] = run_json([python, str(script), "--epochs", str(args.epochs),
                                         "--iterations", str(iterations)], args.timeout)  # fmt: skip
        results[library].update(load_avg_start=round(load, 2), load_avg_end=round(os.getloadavg()[0], 2))
        print(json.dumps(results[library]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps({**header, "results": results}, indent=2))
    print(f"\n{header['command']}  —  {header['machine']}, {header['date']}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
