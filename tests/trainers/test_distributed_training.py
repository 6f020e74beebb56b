"""Training with ``tf.distribute.MirroredStrategy`` on two logical CPU devices matches one device.

TensorFlow splits a CPU into logical devices only before it initialises its devices, so all
scenarios run once, in one fresh process (:func:`tests.support.run_in_fresh_process`), and
the tests below check what that process stored.

Tolerances: the mirrored step computes the same quantities as the single-device step, only
the batch mean is summed in two parts (``(n_0/B) mean_0 + (n_1/B) mean_1``), so losses and
gradients differ by float32 rounding (relative ~1e-7 per operation). Over the handful of
steps trained here that stays far below ``rtol=1e-5`` on the losses and ``atol=1e-6`` on the
weights (|w| <~ 1); a wrong scaling (e.g. a factor 2 from summing unscaled replica losses) or
per-replica clipping changes them at the 1e-2 level.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import run_in_fresh_process

SCENARIOS = """
import tensorflow as tf
import keras

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from amortflow.configuration import DefaultPosteriorConfigurator
from tests.trainers.conftest import GaussianMeanAmortizer, make_model

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
SETTINGS = {"seed": 0, "progress": False, "prefetch": 0, "steps_per_call": 3}
out = {"replicas": strategy.num_replicas_in_sync}


class OneBadRow:
    # the default configurator; row 5 of the batch of call 3 (call 0 is the consistency check,
    # call k then configures step k) gets NaN parameters: only replica 1's share (rows 4..7)
    def __init__(self):
        self.base, self.calls = DefaultPosteriorConfigurator(), 0

    def __call__(self, raw):
        conf = self.base(raw)
        if self.calls == 3:
            conf["parameters"][5] = np.nan
        self.calls += 1
        return conf


def pair(configurator=DefaultPosteriorConfigurator):
    # a single-device trainer and a mirrored one whose amortizer starts from the same weights
    single = GaussianMeanAmortizer()
    one = af.trainers.Trainer(single, make_model(), configurator=configurator(), **SETTINGS)
    with strategy.scope():
        mirrored = GaussianMeanAmortizer()
    two = af.trainers.Trainer(mirrored, make_model(), configurator=configurator(), strategy=strategy, **SETTINGS)
    mirrored.set_weights(single.get_weights())
    return one, two


def weights(trainer):
    return np.concatenate([np.ravel(w) for w in trainer.amortizer.get_weights()])


def store_pair(name, one, two, h1, h2):
    out[name + "_losses"] = np.stack([h1["train_losses"]["Loss"].to_numpy(), h2["train_losses"]["Loss"].to_numpy()])
    out[name + "_weights"] = np.stack([weights(one), weights(two)])
    out[name + "_iterations"] = np.array([int(t.optimizer.iterations.numpy()) for t in (one, two)])


# online, the default optimizer (Adam, cosine decay, global-norm clipping); 7 rows -> 3 + 4
one, two = pair()
histories = [t.train_online(epochs=2, iterations_per_epoch=4, batch_size=7, validation_sims=10) for t in (one, two)]
store_pair("online", one, two, *histories)
out["online_validation"] = np.stack([h["val_losses"]["Loss"].to_numpy() for h in histories])
components = [v.value.values for v in two.amortizer.trainable_variables]
out["mirror_devices"] = np.array([len({c.device for c in parts}) for parts in components])
out["mirror_spread"] = np.array([np.ptp(np.stack([c.numpy() for c in parts]), axis=0).max() for parts in components])

# offline, SGD whose clipping always acts (it must see the summed gradient, not each replica's);
# 17 simulations in batches of 8, 8 and 1 (the last leaves replica 1 without rows)
one, two = pair()
data = make_model()(17, rng=np.random.default_rng(1))
with strategy.scope():
    sgd = keras.optimizers.SGD(0.05, global_clipnorm=0.05)
histories = [one.train_offline(data, epochs=2, batch_size=8, optimizer=keras.optimizers.SGD(0.05, global_clipnorm=0.05)),
             two.train_offline(data, epochs=2, batch_size=8, optimizer=sgd)]
store_pair("offline", one, two, *histories)

# a NaN in one replica's share: the step is skipped on both replicas, as on one device
one, two = pair(configurator=OneBadRow)
store_pair("nan", one, two, *(t.train_online(epochs=1, iterations_per_epoch=6, batch_size=8) for t in (one, two)))
out["nan_skipped"] = np.array([one.nonfinite_steps, two.nonfinite_steps])

# checkpoints: a mirrored run that fails mid-way resumes under the strategy in a new trainer
class FailingModel:
    def __init__(self, fail_at):
        self.model, self.calls, self.fail_at = make_model(), 0, fail_at

    def __call__(self, batch_size, rng=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulator died")
        return self.model(batch_size, rng=rng)


plan = {"epochs": 2, "iterations_per_epoch": 4, "batch_size": 8}
reference = af.trainers.Trainer(GaussianMeanAmortizer(), make_model(), **SETTINGS)
w0 = reference.amortizer.get_weights()
reference.train_online(**plan)
folder = workdir / "ckpt"
with strategy.scope():
    first = GaussianMeanAmortizer()
broken = af.trainers.Trainer(first, FailingModel(fail_at=8), checkpoint_path=folder, strategy=strategy,
                             checkpoint_every=2, **{**SETTINGS, "steps_per_call": 2})
first.set_weights(w0)
try:
    broken.train_online(**plan)
except RuntimeError:
    pass
with strategy.scope():
    second = GaussianMeanAmortizer()
resumed = af.trainers.Trainer(second, make_model(), checkpoint_path=folder, strategy=strategy,
                              **{**SETTINGS, "steps_per_call": 2})
restored_step = resumed.step
resumed.train_online(**plan)
out["resume_steps"] = np.array([broken.step, restored_step, resumed.step, reference.step])
out["resume_weights"] = np.stack([weights(reference), weights(resumed)])
out["resume_losses"] = np.stack([t.history.as_dict()["train_losses"]["Loss"].to_numpy() for t in (reference, resumed)])

# clear errors, and a trainer made inside strategy.scope() uses that strategy
errors = []
for attempt in (
    lambda: af.trainers.Trainer(GaussianMeanAmortizer(), make_model(), strategy=strategy, **SETTINGS).train_online(**plan),
    lambda: two.train_online(**plan, optimizer=keras.optimizers.Adam(1e-3)),
    lambda: af.trainers.Trainer(second, make_model(), strategy=strategy, **{**SETTINGS, "jit_compile": True}),
):
    try:
        attempt()
        errors.append("no error")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
out["errors"] = np.array(errors)


# random streams: after training each replica draws its own dropout mask
class DropoutMeanAmortizer(GaussianMeanAmortizer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(0.5, seed=7)

    def compute_loss(self, input_dict, training=False):
        dropped = self.dropout(input_dict["summary_conditions"], training=training)
        return super().compute_loss({**input_dict, "summary_conditions": dropped}, training)


with strategy.scope():
    noisy = DropoutMeanAmortizer()
noisy_trainer = af.trainers.Trainer(noisy, make_model(), strategy=strategy, checkpoint_path=workdir / "noisy",
                                    **SETTINGS)
noisy_trainer.train_online(epochs=1, iterations_per_epoch=3, batch_size=8)
draw_masks = tf.function(lambda: strategy.run(lambda: noisy.dropout(tf.ones((64,)), training=True)))
out["replica_masks"] = np.stack([m.numpy() for m in strategy.experimental_local_results(draw_masks())])
out["replica_seed_states"] = np.stack([c.numpy() for c in noisy.dropout.seed_generator.state.value.values])
# the checkpoint holds replica 0's state; a trainer restored under the strategy starts from it
with strategy.scope():
    restored_noisy = DropoutMeanAmortizer()
af.trainers.Trainer(restored_noisy, make_model(), strategy=strategy, checkpoint_path=workdir / "noisy", **SETTINGS)
out["restored_seed_state"] = restored_noisy.dropout.seed_generator.state.numpy()
with strategy.scope():
    out["scope_picked"] = np.array(af.trainers.Trainer(second, make_model(), **SETTINGS).strategy is strategy)
store(**out)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    return run_in_fresh_process(SCENARIOS, tmp_path_factory.mktemp("distributed"), timeout=300)


def test_two_replicas_are_used_and_their_weights_stay_identical(results):
    assert int(results["replicas"]) == 2
    assert (results["mirror_devices"] == 2).all()  # every weight has a copy on each logical CPU
    assert (results["mirror_spread"] == 0).all()  # the copies got bitwise the same updates


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_mirrored_training_matches_single_device(results, mode):
    losses, weights, iterations = (results[f"{mode}_{key}"] for key in ("losses", "weights", "iterations"))
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    np.testing.assert_allclose(weights[1], weights[0], rtol=0, atol=1e-6)
    assert iterations[0] == iterations[1] == len(losses[0])
    if mode == "online":  # validation runs on the mirrored weights outside the replicas
        np.testing.assert_allclose(results["online_validation"][1], results["online_validation"][0], rtol=1e-5)


def test_a_nan_in_one_replica_skips_the_step_everywhere(results):
    assert results["nan_skipped"].tolist() == [1, 1]
    losses = results["nan_losses"]
    assert np.flatnonzero(~np.isfinite(losses[1])).tolist() == [2]  # step 3
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    np.testing.assert_allclose(results["nan_weights"][1], results["nan_weights"][0], rtol=0, atol=1e-6)
    assert results["nan_iterations"].tolist() == [5, 5]


def test_checkpoints_resume_under_the_strategy(results):
    broken, restored, final, reference = results["resume_steps"].tolist()
    assert 0 < restored <= broken < 8 and final == reference == 8
    np.testing.assert_allclose(results["resume_losses"][1], results["resume_losses"][0], rtol=1e-5)
    np.testing.assert_allclose(results["resume_weights"][1], results["resume_weights"][0], rtol=0, atol=1e-6)


def test_each_replica_draws_its_own_random_numbers(results):
    # Two equal masks of 64 fair coin flips would have probability 2**-64: equal means shared streams.
    first, second = results["replica_masks"]
    assert not np.array_equal(first, second)
    seeds, counters = results["replica_seed_states"].T
    assert seeds[1] - seeds[0] == 1_000_003  # replica r draws from seed + r * offset
    assert counters[0] == counters[1] > 3  # both advanced in step: 3 training steps, then the draw
    # saved after training, before the extra draw: replica 0's seed, one draw fewer
    assert results["restored_seed_state"].tolist() == [seeds[0], counters[0] - 1]


def test_clear_errors_and_the_open_scope_is_picked_up(results):
    built_outside, foreign_optimizer, jit = results["errors"].tolist()
    assert built_outside.startswith("ConfigurationError") and "outside strategy.scope()" in built_outside
    assert foreign_optimizer.startswith("ConfigurationError") and "optimizer was created outside" in foreign_optimizer
    assert jit.startswith("ArgumentError") and "jit_compile=True" in jit
    assert bool(results["scope_picked"])
