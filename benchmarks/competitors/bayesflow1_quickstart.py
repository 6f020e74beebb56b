"""Quickstart configuration in BayesFlow 1.1.6 (run inside its own virtual environment).

Gaussian means: theta ~ N(0, I_4), x_n ~ N(theta, I_4), n_obs = 50; DeepSet(summary_dim=10),
InvertibleNetwork(num_params=4, num_coupling_layers=4), batch size 32, online training.
A short warm-up call (its own optimizer) runs first and is timed separately; then the timed
call, then posterior sampling for 1,000 data sets x 1,000 draws. ``steady_it_per_s`` counts the
timed steps after the first (whose time includes BayesFlow's retracing of its update step).
Prints one JSON line with the timings and the final validation loss.

    python bayesflow1_quickstart.py --epochs 2 --iterations 500 --seed 1
"""

import argparse
import json
import logging
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

logging.disable(logging.WARNING)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup-iterations", type=int, default=50)
    parser.add_argument("--sampling-datasets", type=int, default=1000)
    parser.add_argument("--sampling-draws", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-sims", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import bayesflow as bf
    import tensorflow as tf

    tf.random.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    num_params, n_obs = 4, 50

    prior = bf.simulation.Prior(prior_fun=lambda: rng.normal(size=num_params))
    simulator = bf.simulation.Simulator(
        simulator_fun=lambda theta: rng.normal(loc=theta, size=(n_obs, theta.shape[0]))
    )
    model = bf.simulation.GenerativeModel(prior=prior, simulator=simulator, skip_test=True)
    amortizer = bf.amortizers.AmortizedPosterior(
        bf.networks.InvertibleNetwork(num_params=num_params, num_coupling_layers=4),
        bf.networks.DeepSet(summary_dim=10),
    )
    trainer = bf.trainers.Trainer(amortizer=amortizer, generative_model=model, memory=False)

    # Warm-up (graph building, first allocations) with its own optimizer, timed separately.
    start = time.perf_counter()
    trainer.train_online(epochs=1, iterations_per_epoch=args.warmup_iterations, batch_size=args.batch_size)
    warmup = time.perf_counter() - start

    # Time stamp every timed step: BayesFlow 1 wraps its update in a new tf.function on each
    # train_online call, so the first timed step retraces; "steady" it/s leaves that step out.
    stamps = []
    train_step = trainer._train_step

    def stamped_step(*step_args, **step_kwargs):
        loss = train_step(*step_args, **step_kwargs)
        stamps.append(time.perf_counter())
        return loss

    trainer._train_step = stamped_step
    start = time.perf_counter()
    history = trainer.train_online(
        epochs=args.epochs,
        iterations_per_epoch=args.iterations,
        batch_size=args.batch_size,
        validation_sims=args.validation_sims,
    )
    wall = time.perf_counter() - start
    steps = args.epochs * args.iterations
    val = history["val_losses"]
    final_val = float(np.asarray(val).ravel()[-1]) if val is not None and len(val) else float("nan")
    test_data = trainer.configurator(model(args.sampling_datasets))
    start = time.perf_counter()
    draws = amortizer.sample(test_data, n_samples=args.sampling_draws)
    sample_seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "library": f"BayesFlow {bf.__version__}" if hasattr(bf, "__version__") else "BayesFlow 1.1.6",
                "tensorflow": tf.__version__,
                "steps": steps,
                "warmup_s": warmup,
                "wall_s": wall,
                "it_per_s": steps / wall,
                "steady_it_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
                "final_val_loss": final_val,
                "sampling_shape": list(draws.shape),
                "sampling_s": sample_seconds,
                "draws_per_s": draws.size / num_params / sample_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
