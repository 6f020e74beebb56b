"""Amortized sampling throughput of the quickstart networks: posterior draws per second.

Draws ``--draws`` posterior samples for each of ``--datasets`` simulated data sets (default
1,000 x 1,000) with ``AmortizedPosterior.sample`` (chunked, bounded memory). The cost of a draw
does not depend on the weights, so the networks are used as initialised; the first (tracing)
call is timed separately. Prints one JSON line. ``--batch-size`` caps the data sets per network
call (``sample(..., batch_size=...)``); peak RSS then shows what the cap saves.

    python benchmarks/sampling_throughput.py --datasets 1000 --draws 1000 [--batch-size 16]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="data sets per network call (default: auto)")
    args = parser.parse_args()

    model, amortizer = build_quickstart(args.seed)
    configurator = amortizer.default_configurator(model)
    data = configurator(model(args.datasets, rng=args.seed))

    start = time.perf_counter()
    amortizer.sample({k: (v[:2] if v is not None else None) for k, v in data.items()}, n_samples=10, seed=0)
    first_call = time.perf_counter() - start

    start = time.perf_counter()
    draws = amortizer.sample(data, n_samples=args.draws, seed=args.seed, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "library": f"amortflow {af.__version__}",
                "sampling_shape": list(draws.shape),
                "batch_size": args.batch_size,
                "first_call_s": first_call,
                "sampling_s": seconds,
                "draws_per_s": args.datasets * args.draws / seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
