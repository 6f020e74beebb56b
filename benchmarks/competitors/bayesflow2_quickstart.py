"""Quickstart configuration in BayesFlow 2.x (Keras 3, TensorFlow backend; run in its own environment).

Same model and budget as ``bayesflow1_quickstart.py``: theta ~ N(0, I_4), x_n ~ N(theta, I_4),
n_obs = 50; DeepSet(summary_dim=10) and CouplingFlow(depth=4), batch 32, online training.
A short warm-up fit (tracing/compilation) runs first and is timed separately. ``steady_it_per_s``
counts the timed steps after the first (Keras traces the train function again on each fit call).
Prints one JSON line.
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup-iterations", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sampling-datasets", type=int, default=1000)
    parser.add_argument("--sampling-draws", type=int, default=1000)
    parser.add_argument("--validation-sims", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    import bayesflow as bf
    import keras

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    num_params, n_obs = 4, 50

    def prior():
        return {"theta": rng.normal(size=num_params)}

    def likelihood(theta):
        return {"x": rng.normal(loc=theta, size=(n_obs, num_params))}

    simulator = bf.make_simulator([prior, likelihood])
    workflow = bf.BasicWorkflow(
        simulator=simulator,
        inference_network=bf.networks.CouplingFlow(depth=4),
        summary_network=bf.networks.DeepSet(summary_dim=10),
        inference_variables=["theta"],
        summary_variables=["x"],
    )
    validation = simulator.sample(args.validation_sims)

    start = time.perf_counter()
    workflow.fit_online(epochs=1, num_batches_per_epoch=args.warmup_iterations, batch_size=args.batch_size, verbose=0)
    warmup = time.perf_counter() - start

    # Keras builds a new train function on each fit call, so the first timed step includes
    # tracing; "steady" it/s counts the steps after it (time stamps at the end of each batch).
    stamps = []
    stamper = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    history = workflow.fit_online(
        epochs=args.epochs,
        num_batches_per_epoch=args.iterations,
        batch_size=args.batch_size,
        validation_data=validation,
        keep_optimizer=True,
        verbose=0,
        callbacks=[stamper],
    )
    wall = time.perf_counter() - start
    steps = args.epochs * args.iterations
    val = history.history.get("val_loss", [float("nan")])
    test_data = simulator.sample(args.sampling_datasets)
    start = time.perf_counter()
    draws = workflow.sample(conditions={"x": test_data["x"]}, num_samples=args.sampling_draws)["theta"]
    sample_seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "library": f"BayesFlow {bf.__version__}",
                "keras": keras.__version__,
                "steps": steps,
                "warmup_s": warmup,
                "wall_s": wall,
                "it_per_s": steps / wall,
                "steady_it_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
                "final_val_loss": float(val[-1]),
                "sampling_shape": list(draws.shape),
                "sampling_s": sample_seconds,
                "draws_per_s": args.sampling_datasets * args.sampling_draws / sample_seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
