"""Amortized sampling throughput of the quickstart networks: posterior draws per second.

Draws ``--draws`` posterior samples for each of ``--datasets`` simulated data sets (default
1,000 x 1,000) with ``AmortizedPosterior.sample`` (chunked, bounded memory). The cost of a draw
does not depend on the weights, so the networks are used as initialised; the first (tracing)
call is timed separately. Prints one JSON line. ``--batch-size`` caps the data sets per network
call (``sample(..., batch_size=...)``); peak RSS then shows what the cap saves.

    python benchmarks/sampling_throughput.py --datasets 1000 --draws 1000 [--batch-size 16]
    python benchmarks/sampling_throughput.py --task gaussian_linear --network flow_matching|consistency|invertible

``--task`` swaps the quickstart for the accuracy benchmark's README recipe on an SBI benchmark
task: ``AmortizedPosterior(Network(num_params=D))`` with the library's defaults, data from the
task's simulator. Use a task with an unbounded prior (gaussian_linear): with a bounded one the
rejection of out-of-support draws would make the cost depend on the (untrained) weights.
The load average before and after is recorded, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import amortflow as af  # noqa: E402
from amortflow.quickstart import build_quickstart  # noqa: E402


def build_task_recipe(task: str, network: str, seed: int):
    """``(generative_model, amortizer)`` of the accuracy benchmark's recipe on ``task`` (untrained)."""
    from amortflow.benchmarks import Benchmark
    from amortflow.benchmarks.runner import INFERENCE_NETS

    af.set_seed(seed)
    bench = Benchmark(task)
    net = getattr(af.networks, INFERENCE_NETS[network][0])(num_params=bench.task.dim_parameters)
    return bench.generative_model, af.amortizers.AmortizedPosterior(net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="data sets per network call (default: auto)")
    parser.add_argument("--task", default=None, help="an SBI benchmark task instead of the quickstart")
    parser.add_argument("--network", choices=("invertible", "flow_matching", "consistency"), default="invertible",
                        help="with --task: the inference network of the README recipe, library defaults")
    args = parser.parse_args()

    load_before = os.getloadavg()
    model, amortizer = build_quickstart(args.seed) if args.task is None else build_task_recipe(args.task, args.network, args.seed)
    configurator = amortizer.default_configurator(model)
    data = configurator(model(args.datasets, rng=args.seed))

    start = time.perf_counter()
    amortizer.sample({k: (v[:2] if v is not None else None) for k, v in data.items()}, n_samples=10, seed=0)
    first_call = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), time.process_time()
    draws = amortizer.sample(data, n_samples=args.draws, seed=args.seed, batch_size=args.batch_size, progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "library": f"amortflow {af.__version__}",
                "task": args.task or "quickstart",
                "network": type(amortizer.inference_net).__name__,
                "sampling_shape": list(draws.shape),
                "batch_size": args.batch_size,
                "first_call_s": first_call,
                "sampling_s": seconds,
                "draws_per_s": args.datasets * args.draws / seconds,
                # CPU seconds of this process (all its threads): on a shared machine the wall time
                # grows with the load, the CPU time much less
                "cpu_s": cpu_seconds,
                "draws_per_cpu_s": args.datasets * args.draws / cpu_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "load_average_before": [round(v, 2) for v in load_before],
                "load_average_after": [round(v, 2) for v in os.getloadavg()],
                "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
