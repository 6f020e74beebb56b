"""Training speed of amortflow on the quickstart configuration (iterations/s and wall time).

Model: theta ~ N(0, I_4), x_n ~ N(theta, I_4), n = 1..50. Networks: DeepSet(summary_dim=10),
InvertibleNetwork(num_params=4, num_coupling_layers=4), AmortizedPosterior. Online training,
batch 32, default optimizer (Adam, cosine decay 5e-4 -> 0, clipping), validation on 200 sets.

A warm-up run (tracing and XLA compilation, including the shape of an epoch's last, shorter
chunk and the validation function) is timed separately; the timed run reuses its compiled
step and optimizer, whose cosine schedule spans both runs. Prints one JSON line;
``--profile`` adds a breakdown: simulation + configuration per batch, the compiled step
alone on a fixed chunk, and forward+backward of each network on its own.

    python benchmarks/speed_quickstart.py                       # 2 x 500 steps
    python benchmarks/speed_quickstart.py --jit false --profile
    python benchmarks/speed_quickstart.py --deepset-units 64 --num-equiv 2   # BayesFlow's DeepSet size

The machine's load average is reported: on a shared box, numbers are only comparable
when it is low.
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

import numpy as np  # noqa: E402

import amortflow as af  # noqa: E402

NUM_PARAMS, N_OBS = 4, 50


def build(seed: int, jit, steps_per_call: int, units: int | None = None, num_equiv: int | None = None):
    """The quickstart generative model and a trainer for it.

    ``units`` / ``num_equiv`` override the DeepSet's width and number of equivariant modules
    (None: amortflow's defaults), e.g. 64 and 2 for BayesFlow's DeepSet architecture.
    """

    def prior(batch_size, rng):
        return rng.normal(size=(batch_size, NUM_PARAMS))

    def simulator(theta, rng):
        return theta[:, None, :] + rng.normal(size=(theta.shape[0], N_OBS, NUM_PARAMS))

    af.set_seed(seed)
    model = af.simulation.GenerativeModel(prior, simulator, prior_is_batched=True, simulator_is_batched=True)
    deep_set_args = {} if num_equiv is None else {"num_equiv": num_equiv}
    if units is not None:
        deep_set_args.update({f"dense_s{i}_args": {"units": units} for i in (1, 2, 3)})
    amortizer = af.amortizers.AmortizedPosterior(
        af.networks.InvertibleNetwork(num_params=NUM_PARAMS, num_coupling_layers=4),
        af.networks.DeepSet(summary_dim=10, **deep_set_args),
    )
    trainer = af.trainers.Trainer(amortizer, model, seed=seed, jit_compile=jit, steps_per_call=steps_per_call, progress=False)
    return model, trainer


def timed_training(trainer, args) -> dict:
    # XLA compiles the training loop once per chunk length: an epoch of 500 steps ends with a
    # chunk of 500 % 16 = 4 steps, a second shape (~6 s to compile on 2 cores). The warm-up
    # ends with a chunk of that length and validates once, so every compilation is in it.
    warmup_steps = args.warmup_iterations + args.iterations % args.steps_per_call
    optimizer = af.trainers.default_optimizer(warmup_steps + args.epochs * args.iterations)
    start = time.perf_counter()
    trainer.train_online(epochs=1, iterations_per_epoch=warmup_steps, batch_size=args.batch_size, optimizer=optimizer,
                         validation_sims=args.validation_sims)  # fmt: skip
    warmup = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    history = trainer.train_online(epochs=args.epochs, iterations_per_epoch=args.iterations, batch_size=args.batch_size,
                                   reuse_optimizer=True, validation_sims=args.validation_sims)  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    steps = args.epochs * args.iterations
    return {
        "warmup_s": round(warmup, 2),
        "wall_s": round(wall, 2),
        "it_per_s": round(steps / wall, 1),
        "cpu_ms_per_step": round(1e3 * cpu / steps, 2),
        "final_val_loss": round(float(history["val_losses"]["Loss"].iloc[-1]), 4),
        "xla": trainer._compiled.uses_xla,
    }


def _best_ms(fn, repeats: int, calls: int) -> float:
    """Best-of-``repeats`` milliseconds per call (robust against a busy machine)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return 1e3 * best


def profile(model, trainer, args) -> dict:
    """Where the time of one step goes (best-of-5 timings, milliseconds)."""
    import tensorflow as tf

    from amortflow.trainers.arrays import stack

    rng = np.random.default_rng(0)
    batch = trainer.configure(model(args.batch_size, rng=rng))
    out = {"simulate_ms": _best_ms(lambda: model(args.batch_size, rng=rng), 5, 50),
           "simulate_and_configure_ms": _best_ms(lambda: trainer.configure(model(args.batch_size, rng=rng)), 5, 50)}  # fmt: skip
    chunk = stack([batch] * args.steps_per_call)
    out["compiled_step_only_ms"] = _best_ms(lambda: trainer._compiled.train(chunk), 5, 5) / args.steps_per_call
    amortizer = trainer.amortizer
    x, theta = tf.constant(batch["summary_conditions"]), tf.constant(batch["parameters"])
    condition = amortizer.summary_net(x)
    jit = trainer._compiled.uses_xla

    @tf.function(jit_compile=jit)
    def summary_grad():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(amortizer.summary_net(x, training=True))
        return tape.gradient(value, amortizer.summary_net.trainable_variables)

    @tf.function(jit_compile=jit)
    def flow_grad():
        with tf.GradientTape() as tape:
            z, log_det = amortizer.inference_net(theta, condition, training=True)
            value = tf.reduce_sum(z) + tf.reduce_sum(log_det)
        return tape.gradient(value, amortizer.inference_net.trainable_variables)

    for name, fn in (("deepset_fwd_bwd_ms", summary_grad), ("flow_fwd_bwd_ms", flow_grad)):
        fn()
        out[name] = _best_ms(fn, 5, 20)
    return {key: round(value, 3) for key, value in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup-iterations", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-sims", type=int, default=200)
    parser.add_argument("--steps-per-call", type=int, default=af.defaults.DEFAULT_STEPS_PER_CALL)
    parser.add_argument("--jit", choices=("auto", "true", "false"), default="true",
                        help="XLA; \"auto\" (the Trainer default) would skip it for the short warm-up run")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: TensorFlow's choice)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deepset-units", type=int, default=None, help="DeepSet width (default: amortflow's)")
    parser.add_argument("--num-equiv", type=int, default=None, help="DeepSet equivariant modules (default: amortflow's)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit]
    load_before = os.getloadavg()[0]
    model, trainer = build(args.seed, jit, args.steps_per_call, args.deepset_units, args.num_equiv)
    deep_set = trainer.amortizer.summary_net
    result = {"library": f"amortflow {af.__version__}", "tensorflow": tf.__version__, "cpus": os.cpu_count(),
              "deepset_units": deep_set.invariant_module.s1.layers[0].units, "num_equiv": deep_set.num_equiv,
              "steps": args.epochs * args.iterations, "batch_size": args.batch_size,
              "steps_per_call": args.steps_per_call, "jit": args.jit}  # fmt: skip
    result.update(timed_training(trainer, args))
    if args.profile:
        result["profile"] = profile(model, trainer, args)
    result["load_avg_before"], result["load_avg_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
