r"""Online training from an ensemble far larger than memory: Dask workers stream 64x64 fields into a bounded buffer.

The DeepMelissa setting (Meyer et al. 2023): a cheap vectorized simulator (a Gaussian random
field with a power-law spectrum, 64x64 float32 maps, 16 KiB each) runs on a ``LocalCluster``
of ``--workers`` single-threaded worker processes; a ``StreamingSimulations`` collects every
finished task into a FIFO (or reservoir) buffer of ``--buffer-capacity`` fields, and
``Trainer.train_streaming`` trains an ``AmortizedPosterior`` with a small ``ConvSummary`` on
batches drawn from that buffer while the simulations keep arriving. ``--num-simulations 1000000``
is about 16 GB of fields in all; only the buffer (``capacity x 16 KiB``) is ever held.

A monitor thread samples, every ``--sample-every`` seconds, the resident set size (RSS) of this
process (training, the buffer, and the Dask scheduler, which a ``LocalCluster`` runs in this
process) and of every worker process, and the stream's counters. Reported: peak RSS of each,
simulations/s produced and samples/s consumed by training (each over its steady window, see
:func:`rate`), buffer statistics (seen counts) and wall times, with ``os.getloadavg()`` at the
start and the end (the machine may be shared).

    nice -n 5 python benchmarks/streaming_ensemble.py --num-simulations 1000000 --max-seconds 840 --workers 2 \
        --steps 300 --iterations-per-epoch 150 --out benchmarks/results/streaming_ensemble_main_w2.json
    nice -n 5 python benchmarks/streaming_ensemble.py --num-simulations 50000 --max-seconds 240 --workers 1 \
        --steps 150 --iterations-per-epoch 150 --out benchmarks/results/streaming_ensemble_5e4_w1.json

Training runs ``--steps`` steps while production goes on independently; ``--max-seconds`` ends
production early (no new tasks; those in flight finish), and the JSON states the number of
simulations actually streamed. This is a benchmark: it prints and writes
figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np

GRID = 64
#: Training steps left out of the rate "while producing": the first steps include XLA compilation.
WARM_STEPS = 50
#: Seconds between progress lines.
PRINT_EVERY = 30.0


# --- the simulator (module level: the workers import this file by name) ------------------------
def prior(batch_size, rng):
    """Amplitude ``A ~ U(0.5, 2)`` and spectral slope ``n ~ U(1, 4)``."""
    return np.stack([rng.uniform(0.5, 2.0, batch_size), rng.uniform(1.0, 4.0, batch_size)], axis=1)


def _wavenumbers() -> np.ndarray:
    k = np.sqrt(np.fft.fftfreq(GRID)[:, None] ** 2 + np.fft.rfftfreq(GRID)[None, :] ** 2) * GRID
    k[0, 0] = 1.0  # the mean mode, zeroed below
    return k.astype(np.float32)


def gaussian_random_field(params, rng):
    """Maps ``(B, 64, 64, 1)`` float32 with power spectrum ``P(k) = A k^-n`` (white noise filtered in Fourier space)."""
    k = _wavenumbers()
    amplitude = np.sqrt(params[:, 0, None, None].astype(np.float32) * k[None] ** -params[:, 1, None, None].astype(np.float32))
    amplitude[:, 0, 0] = 0.0
    noise = np.fft.rfft2(rng.standard_normal((len(params), GRID, GRID), dtype=np.float32))
    fields = np.fft.irfft2(noise * amplitude, s=(GRID, GRID)).astype(np.float32)
    return fields[..., None]


# --- measuring ---------------------------------------------------------------------------------
class Monitor(threading.Thread):
    """Samples RSS (this process and the worker processes ``worker_pids``) and the stream's counters."""

    def __init__(self, stream, worker_pids: list[int], every: float, max_seconds: float | None = None):
        super().__init__(daemon=True, name="benchmark-monitor")
        import psutil

        self.me, self.every, self.stream = psutil.Process(), every, stream
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.stopped_by_time = False
        self.workers = [psutil.Process(pid) for pid in worker_pids]
        self.samples: list[dict] = []
        self.peak = {"main": 0, "worker_max": 0, "workers_sum": 0}
        self.done = threading.Event()

    def sample(self) -> None:
        main = self.me.memory_info().rss
        workers = []
        for worker in self.workers:
            try:
                workers.append(worker.memory_info().rss)
            except Exception:  # noqa: BLE001 - a worker that ended (the cluster is closing)
                continue
        stats = self.stream.stats()
        self.samples.append({"t": time.monotonic(), "main_rss": main, "worker_rss": workers,
                             "simulations_done": stats["simulations_done"], "batches_drawn": stats["batches_drawn"]})  # fmt: skip
        self.peak["main"] = max(self.peak["main"], main)
        if workers:
            self.peak["worker_max"] = max(self.peak["worker_max"], max(workers))
            self.peak["workers_sum"] = max(self.peak["workers_sum"], sum(workers))

    def stop_submitting(self) -> None:
        """End production now: the tasks in flight finish, no new ones are submitted (``max_simulations`` reached)."""
        with self.stream._cond:  # a benchmark-only reach into the stream: it has no public "stop submitting"
            self.stream.max_simulations = self.stream._submitted
        self.stopped_by_time = True
        print(f"--max-seconds reached: no more tasks after {self.stream._submitted} simulations", flush=True)

    def run(self) -> None:
        last_print = time.monotonic()
        while not self.done.is_set():
            self.sample()
            if self.deadline is not None and not self.stopped_by_time and time.monotonic() > self.deadline:
                self.stop_submitting()
            if time.monotonic() - last_print > PRINT_EVERY:
                last_print, s = time.monotonic(), self.samples[-1]
                print(f"sims {s['simulations_done']} | batches {s['batches_drawn']} | RSS main {s['main_rss'] / 2**20:.0f} MiB, "
                      f"workers {sum(s['worker_rss']) / 2**20:.0f} MiB | load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            self.done.wait(self.every)


def rate(samples: list[dict], key: str, total: float, low: float = 0.1, high: float = 0.9) -> float:
    """Units per second of ``key`` between the samples where it first reaches ``low`` and ``high`` of ``total``.

    The steady rate: it leaves out the start (workers' first task, XLA compilation) and the tail.
    """
    t = np.array([s["t"] for s in samples])
    v = np.array([s[key] for s in samples], dtype=float)
    i, j = np.searchsorted(v, low * total), np.searchsorted(v, high * total)
    if j >= len(v) or j <= i or t[j] <= t[i]:
        return float("nan")
    return float((v[j] - v[i]) / (t[j] - t[i]))


def window_rate(samples: list[dict], key: str, start_value: float, end_time: float) -> float:
    """Units per second of ``key`` from the sample where it reaches ``start_value`` until ``end_time``."""
    begin = next((s for s in samples if s[key] >= start_value), None)
    end = [s for s in samples if s["t"] <= end_time][-1]
    if begin is None or end["t"] <= begin["t"]:
        return float("nan")
    return float((end[key] - begin[key]) / (end["t"] - begin["t"]))


def first_time(samples: list[dict], key: str, value: float) -> float | None:
    return next((s["t"] for s in samples if s[key] >= value), None)


# --- the run -----------------------------------------------------------------------------------
def build_trainer(model, seed: int):
    import amortflow as af

    summary = af.networks.ConvSummary(summary_dim=8, num_stages=3, filters=8)
    inference = af.networks.InvertibleNetwork(num_params=2, num_coupling_layers=4,
                                              coupling_settings={"dense_args": {"units": 64}, "num_dense": 2})  # fmt: skip
    amortizer = af.amortizers.AmortizedPosterior(inference, summary)
    return af.trainers.Trainer(amortizer, model, progress=False, seed=seed)


def run(args) -> dict:
    import distributed

    from amortflow.simulation import GenerativeModel, Prior, Simulator
    from amortflow.simulation.distributed import StreamingSimulations

    load_start = os.getloadavg()
    model = GenerativeModel(Prior(batch_prior_fun=prior), Simulator(batch_simulator_fun=gaussian_random_field), skip_test=True)
    t0 = time.monotonic()
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       memory_limit=0)  # fmt: skip
    client = distributed.Client(cluster)
    client.run(__import__, "amortflow.simulation.distributed")  # workers import amortflow/TF once, here
    cluster_start = time.monotonic() - t0
    trainer = build_trainer(model, args.seed)
    stream = StreamingSimulations(model, client, buffer_capacity=args.buffer_capacity, watermark=args.watermark,
                                  chunk_size=args.chunk_size, policy=args.policy, seed=args.seed,
                                  max_simulations=args.num_simulations)  # fmt: skip
    monitor = Monitor(stream, list(client.run(os.getpid).values()), args.sample_every, args.max_seconds)
    try:
        monitor.start()
        start = time.monotonic()
        stream.start()
        epochs = max(1, args.steps // args.iterations_per_epoch)
        trainer.train_streaming(epochs, args.iterations_per_epoch, args.batch_size, stream=stream)
        train_end = time.monotonic()
        while stream.stats()["active"]:  # production may outlast training
            time.sleep(0.2)
        production_end = time.monotonic()
        monitor.sample()
        stats = stream.stats()
        seen = stream._buffer.seen[: stream._buffer.fill]
    finally:
        monitor.done.set()
        stream.close()
        client.close()
        cluster.close()
    samples = monitor.samples
    n_sims, n_batches = stats["simulations_done"], stats["batches_drawn"]
    last_sim = first_time(samples, "simulations_done", n_sims) or production_end
    first_batch = first_time(samples, "batches_drawn", 1) or start
    # Drawn at least once: all streamed, less those replaced before a draw, less those still unseen in the buffer.
    drawn_once = stats["rows_added"] - stats["rows_evicted_unseen"] - int((seen == 0).sum())
    mib = 2**20
    return {
        "num_simulations": n_sims, "num_simulations_requested": args.num_simulations,
        "stopped_by_max_seconds": monitor.stopped_by_time,
        "workers": args.workers, "chunk_size": args.chunk_size, "policy": args.policy,
        "buffer_capacity": args.buffer_capacity, "watermark": args.watermark, "batch_size": args.batch_size,
        "steps": n_batches, "field_shape": [GRID, GRID, 1], "ensemble_gb": n_sims * GRID * GRID * 4 / 1e9,
        "buffer_mib": args.buffer_capacity * GRID * GRID * 4 / mib,
        "peak_rss_main_mib": monitor.peak["main"] / mib,
        "peak_rss_main_mib_getrusage": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_worker_max_mib": monitor.peak["worker_max"] / mib,
        "peak_rss_workers_sum_mib": monitor.peak["workers_sum"] / mib,
        "simulations_per_s_steady": rate(samples, "simulations_done", n_sims),
        "simulations_per_s_overall": n_sims / (last_sim - start),
        "samples_per_s_steady": args.batch_size * rate(samples, "batches_drawn", n_batches),
        "samples_per_s_overall": args.batch_size * n_batches / (train_end - first_batch),
        "samples_per_s_while_producing": args.batch_size * window_rate(samples, "batches_drawn", WARM_STEPS, last_sim),
        "seconds_cluster_start": cluster_start, "seconds_to_watermark": stats["seconds_to_watermark"],
        "seconds_production": last_sim - start, "seconds_training": train_end - start,
        "seconds_wall": production_end - start, "training_finished_first": train_end < last_sim,
        "simulations_drawn_at_least_once": int(drawn_once),
        "seen_mean_end": stats["seen_mean"], "seen_max_end": stats["seen_max"],
        "rows_evicted": stats["rows_evicted"], "rows_evicted_unseen": stats["rows_evicted_unseen"],
        "duplicates_dropped": stats["duplicates_dropped"], "tasks_done": stats["tasks_done"],
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(), "cpu_count": os.cpu_count(),
        "machine": platform.platform(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "rss_trace_mib": [[round(s["t"] - start, 1), round(s["main_rss"] / mib), round(sum(s["worker_rss"]) / mib)]
                          for s in samples[:: max(1, len(samples) // 200)]],  # fmt: skip
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-simulations", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20_000, help="training steps (rounded to whole epochs)")
    parser.add_argument("--iterations-per-epoch", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--buffer-capacity", type=int, default=20_000)
    parser.add_argument("--watermark", type=int, default=5_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--policy", choices=["fifo", "reservoir"], default="fifo")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=float, default=0.5, help="seconds between RSS samples")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop submitting simulations after this many seconds (the run streams what it reached)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: print only)")
    args = parser.parse_args()
    result = run(args)
    summary = {k: v for k, v in result.items() if k != "rss_trace_mib"}
    print(json.dumps(summary, indent=1))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":  # needed: worker processes are spawned and re-import this file
    main()
