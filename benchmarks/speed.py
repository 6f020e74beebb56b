"""Speed of amortflow side by side with BayesFlow 1.1.6 and BayesFlow 2.x, in one run.

Runs, one after another on the same machine, each in its own process:

1. amortflow: ``benchmarks/speed_quickstart.py`` (training) and ``benchmarks/sampling_throughput.py``;
2. BayesFlow 1.1.6 and BayesFlow 2.x: ``benchmarks/competitors/bayesflow{1,2}_quickstart.py``
   in their own virtual environments (built by ``benchmarks/environments.py`` when missing).

Same model (Gaussian means, D=4, 50 observations), same networks by name (DeepSet(summary_dim=10),
4 coupling layers), batch size 32, the same number of timed steps after a warm-up, validation on 200
simulations, then 1,000 data sets x 1,000 posterior draws. Writes ``benchmarks/results/speed.json``
and prints a markdown table with ratios.

    python benchmarks/speed.py --epochs 2 --iterations 500
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


def table(results: dict) -> str:
    ours = results["amortflow"]
    rows = ["| library | warm-up s | timed steps | wall s | it/s | ratio (amortflow / library) | final val. loss | draws/s (1000x1000) | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        if "error" in res:
            rows.append(f"| {name} | failed: {res['error']} | | | | | | | |")
            continue
        ratio = ours["it_per_s"] / res["it_per_s"]
        draws = f"{res['draws_per_s']:,.0f}" if "draws_per_s" in res else "n/a"
        rows.append(
            f"| {res.get('library', name)} | {res.get('warmup_s', float('nan')):.1f} | {res['steps']} "
            f"| {res['wall_s']:.1f} | {res['it_per_s']:.1f} | {ratio:.1f}x | {res['final_val_loss']:.3f} "
            f"| {draws} | {res['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--libraries", nargs="+", default=["amortflow", "bayesflow1", "bayesflow2"])
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    common = ["--epochs", str(args.epochs), "--iterations", str(args.iterations)]

    results: dict[str, dict] = {}
    header = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python", "benchmarks/speed.py", *sys.argv[1:]])}
    for library in args.libraries:
        print(f"running {library} ...", flush=True)
        if library == "amortflow":
            train = run_json([sys.executable, str(HERE / "speed_quickstart.py"), *common], args.timeout)
            sample = run_json([sys.executable, str(HERE / "sampling_throughput.py")], args.timeout)
            results[library] = {**train, **{k: v for k, v in sample.items() if k not in ("library",)},
                                "peak_rss_mb": max(train.get("peak_rss_mb", 0), sample.get("peak_rss_mb", 0))}
        else:
            python = str(build(library))
            script = HERE / "competitors" / f"{library}_quickstart.py"
            results[library] = run_json([python, str(script), *common], args.timeout)
        print(json.dumps(results[library]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps({**header, "results": results}, indent=2))
    print(f"\n{header['command']}  —  {header['machine']}, {header['date']}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
