"""Wall time of simulating with a slow simulator: serial vs a Dask LocalCluster.

The simulator sleeps ``--sleep`` seconds per simulation (a stand-in for an external
program), or with ``--busy`` spins the CPU for that long (a stand-in for a Python
simulator; then the speed-up also depends on free cores). The serial run calls the
``GenerativeModel`` directly; the Dask runs call a ``DaskGenerativeModel`` on a
``LocalCluster`` of ``--workers`` single-threaded worker processes, after one warm-up call
(each worker imports amortflow and TensorFlow once; that start-up is reported apart).

    python benchmarks/dask_speedup.py --n-sims 64 --sleep 0.05 --workers 2

This is a benchmark, not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

SLEEP = 0.05
BUSY = False


def prior(batch_size, rng):
    return rng.normal(size=(batch_size, 2))


def slow_simulator(params, rng):
    for _ in params:  # one "run" per simulation
        if BUSY:
            end = time.perf_counter() + SLEEP
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(SLEEP)
    return params[:, None, :] + rng.normal(size=(len(params), 10, 2))


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    global SLEEP, BUSY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sims", type=int, default=64)
    parser.add_argument("--sleep", type=float, default=SLEEP, help="seconds per simulation")
    parser.add_argument("--busy", action="store_true", help="spin the CPU instead of sleeping")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[1, 4, 32])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    SLEEP, BUSY = args.sleep, args.busy

    import distributed

    from amortflow.simulation import DaskGenerativeModel, GenerativeModel, Prior, Simulator

    model = GenerativeModel(Prior(batch_prior_fun=prior), Simulator(batch_simulator_fun=slow_simulator), skip_test=True)
    kind = "busy-wait" if BUSY else "sleep"
    print(f"{args.n_sims} simulations x {SLEEP * 1e3:.0f} ms ({kind}); ideal serial time {args.n_sims * SLEEP:.2f} s")
    serial = timed(lambda: model(args.n_sims, rng=0), args.repeats)
    print(f"serial                          : {serial:6.2f} s")

    start = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    client.run(__import__, "amortflow.simulation.distributed")
    print(f"LocalCluster start + imports    : {time.perf_counter() - start:6.2f} s (once per session)")
    try:
        for chunk_size in args.chunk_sizes:
            dask_model = DaskGenerativeModel(model, client, chunk_size=chunk_size, seed=0)
            dask_model(args.n_sims)  # warm-up: ships the model's code to the workers
            wall = timed(lambda: dask_model(args.n_sims), args.repeats)
            n_tasks = int(np.ceil(args.n_sims / chunk_size))
            print(f"Dask, {args.workers} workers, chunk_size={chunk_size:3d} ({n_tasks:3d} tasks): {wall:6.2f} s"
                  f"   speed-up x{serial / wall:.2f} (ideal x{args.workers})")  # fmt: skip
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":  # needed: worker processes are spawned and re-import this file
    main()
