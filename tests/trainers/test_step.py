"""The compiled step and the consistency check: loss components, XLA fallback, varying shapes, clear errors."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import amortflow as af
from amortflow.exceptions import ConfigurationError
from amortflow.trainers import CompiledStep, Trainer

from .conftest import GaussianMeanAmortizer, make_amortizer, prior_fun


@keras.saving.register_keras_serializable(package="amortflow_tests")
class TwoPartAmortizer(GaussianMeanAmortizer):
    """Returns its loss as two named parts and has an L2-regularized layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.extra = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.1), name="extra")

    def compute_loss(self, input_dict, training=False):
        nll = super().compute_loss(input_dict, training)
        penalty = tf.reduce_mean(tf.square(self.extra(input_dict["parameters"])))
        return {"NLL": nll, "Penalty": penalty}


def test_loss_components_and_regularization_become_columns(model):
    trainer = Trainer(TwoPartAmortizer(), model, seed=0, progress=False, jit_compile=False)
    history = trainer.train_online(epochs=1, iterations_per_epoch=4, batch_size=8, validation_sims=20)
    train = history["train_losses"]
    assert list(train.columns) == ["Epoch", "Iteration", "Loss", "NLL", "Penalty", "Regularization", "Skipped"]
    np.testing.assert_allclose(train["Loss"], train["NLL"] + train["Penalty"] + train["Regularization"], rtol=1e-5)
    assert (train["Regularization"] > 0).all()
    assert list(history["val_losses"].columns) == ["Epoch", "Loss", "NLL", "Penalty", "Regularization"]


def _chunk(n_steps: int, n_obs: int, rng) -> dict:
    theta = rng.normal(size=(n_steps, 8, 2)).astype(np.float32)
    x = (theta[:, :, None, :] + rng.normal(size=(n_steps, 8, n_obs, 2))).astype(np.float32)
    return {"parameters": theta, "summary_conditions": x, "direct_conditions": None}


def test_auto_xla_falls_back_when_shapes_keep_changing(caplog):
    amortizer = GaussianMeanAmortizer()
    rng = np.random.default_rng(0)
    amortizer.compute_loss({k: (v[0] if v is not None else None) for k, v in _chunk(1, 5, rng).items()})
    step = CompiledStep(amortizer, jit_compile="auto", max_xla_shapes=1)
    step.set_optimizer(keras.optimizers.Adam(1e-3))
    losses, flags = step.train(_chunk(3, 5, rng))
    assert step.uses_xla and losses.shape == (3, 1) and flags.all()
    with caplog.at_level(logging.INFO, logger="amortflow"):
        losses, flags = step.train(_chunk(2, 7, rng))  # a second set size
    assert not step.uses_xla and "different shapes" in caplog.text
    assert np.isfinite(losses).all() and int(step.optimizer.iterations.numpy()) == 5


def test_a_shorter_last_chunk_reuses_the_compiled_program_and_trains_only_real_steps():
    """XLA compiles per shape: a short chunk is padded to the longest one, and the padding is not trained on."""
    rng = np.random.default_rng(1)
    chunks = [_chunk(4, 5, rng), _chunk(2, 5, rng)]
    results = {}
    for jit in (True, False):
        keras.utils.set_random_seed(3)
        amortizer = GaussianMeanAmortizer()
        amortizer.compute_loss({k: (v[0] if v is not None else None) for k, v in chunks[0].items()})
        step = CompiledStep(amortizer, jit_compile=jit)
        step.set_optimizer(keras.optimizers.SGD(1e-2))
        losses = [step.train(chunk)[0] for chunk in chunks]
        assert [len(x) for x in losses] == [4, 2]
        assert int(step.optimizer.iterations.numpy()) == 6  # no update from the two padded batches
        results[jit] = (np.concatenate(losses), [w.numpy() for w in amortizer.trainable_weights])
        if jit:
            assert step._padded_steps == 4
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-4)
    for padded, plain in zip(results[True][1], results[False][1]):
        np.testing.assert_allclose(padded, plain, rtol=1e-4, atol=1e-6)


def test_batches_with_varying_set_sizes_train_in_separate_chunks():
    def simulator(theta, n_obs, rng):
        return theta[:, None, :] + rng.normal(size=(theta.shape[0], n_obs, 2))

    context = af.simulation.ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(3, 9)))
    model = af.simulation.GenerativeModel(
        prior_fun, af.simulation.Simulator(batch_simulator_fun=simulator, context_generator=context),
        prior_is_batched=True, skip_test=True,
    )  # fmt: skip
    trainer = Trainer(make_amortizer(), model, seed=0, progress=False, jit_compile=False)
    history = trainer.train_online(epochs=1, iterations_per_epoch=12, batch_size=8)
    assert len(history["train_losses"]) == 12 and np.isfinite(history["train_losses"]["Loss"]).all()


def test_consistency_check_names_the_failing_stage(model):
    def broken_model(batch_size, rng=None):
        raise RuntimeError("simulator crashed")

    with pytest.raises(ConfigurationError, match="at the generative model .*simulator crashed"):
        Trainer(GaussianMeanAmortizer(), broken_model)
    with pytest.raises(ConfigurationError, match="at the configurator"):
        Trainer(GaussianMeanAmortizer(), model, configurator=lambda raw: {"parameters": raw["no_such_key"]})
    with pytest.raises(ConfigurationError, match="at the amortizer's compute_loss"):
        Trainer(make_amortizer(num_params=3), model)  # the model has 2 parameters
    assert np.isfinite(Trainer(GaussianMeanAmortizer(), model, progress=False).check_consistency())


def test_auto_xla_only_for_runs_long_enough_to_pay_back_compilation():
    step = CompiledStep(GaussianMeanAmortizer(), jit_compile="auto", min_xla_steps=100)
    optimizer = keras.optimizers.Adam(1e-3)
    step.amortizer.head.build((None, 2))
    step.set_optimizer(optimizer, planned_steps=99)
    assert not step.uses_xla
    step.set_optimizer(optimizer, planned_steps=100)
    assert step.uses_xla
    assert not CompiledStep(GaussianMeanAmortizer(), jit_compile=False).uses_xla


def _two_offline_runs(optimizer_for_run) -> Trainer:
    """Two ``train_offline`` runs of different lengths on one trainer, the optimizer of each from ``optimizer_for_run(steps)``."""
    keras.utils.set_random_seed(5)
    model = af.simulation.GenerativeModel(prior_fun, lambda theta, rng: theta[:, None, :] + rng.normal(size=(len(theta), 4, 2)),
                                          prior_is_batched=True, simulator_is_batched=True, skip_test=True)  # fmt: skip
    trainer = Trainer(make_amortizer(), model, seed=3, progress=False, jit_compile=False)
    for n, epochs in ((64, 2), (96, 3)):
        steps = epochs * -(-n // 32)
        trainer.train_offline(model(n, rng=np.random.default_rng(n)), epochs=epochs, batch_size=32, early_stopping=False,
                              optimizer=optimizer_for_run(steps))  # fmt: skip
    return trainer


def test_a_new_run_renews_the_default_optimizer_in_place_without_a_new_trace():
    """The default optimizer of a second run is the first's with a fresh one's state: one trace, the same numbers."""
    renewed = _two_offline_runs(lambda steps: None)

    def fresh_keras(steps):  # what the default optimizer was before it became renewable: a new object per run
        schedule = keras.optimizers.schedules.CosineDecay(af.defaults.DEFAULT_LEARNING_RATE, steps, alpha=0.0)
        return keras.optimizers.Adam(schedule, global_clipnorm=af.defaults.DEFAULT_CLIP_NORM)

    replaced = _two_offline_runs(fresh_keras)
    assert renewed._compiled.traces == 1 and replaced._compiled.traces == 2
    assert int(renewed.optimizer.iterations.numpy()) == 9  # the second run's 9 steps: its count started at 0
    for a, b in zip(renewed.amortizer.weights, replaced.amortizer.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(renewed.optimizer.variables, replaced.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a learning rate given as a number is renewed too; an optimizer object is used as given (its own trace)
    assert _two_offline_runs(lambda steps: 1e-3)._compiled.traces == 1
    assert _two_offline_runs(lambda steps: keras.optimizers.Adam(1e-3))._compiled.traces == 2


def _compiled_rates(schedule, steps: range, jit: bool) -> np.ndarray:
    """The schedule's rates as a compiled step computes them: one step at a time from an iteration variable."""
    iteration = tf.Variable(0, dtype=tf.int64)
    rate = tf.function(lambda: schedule(iteration), jit_compile=jit)
    values = []
    for step in steps:
        iteration.assign(step)
        values.append(rate().numpy())
    return np.array(values)


@pytest.mark.parametrize("jit", [False, True])
def test_renewable_cosine_decay_gives_the_rates_of_keras_cosine_decay_bit_for_bit(jit):
    """In a graph (and under XLA) CosineDecay's constant length is folded into pi / T; the renewable one matches that."""
    from amortflow.trainers.optimizers import RenewableCosineDecay

    schedule = RenewableCosineDecay(5e-4, 100)
    for initial, length in ((5e-4, 100), (2e-3, 800), (1e-3, 37)):
        schedule.renew(initial, length)
        steps = range(0, length + 3)
        expected = _compiled_rates(keras.optimizers.schedules.CosineDecay(initial, length), steps, jit)
        np.testing.assert_array_equal(_compiled_rates(schedule, steps, jit), expected)


def test_renewable_cosine_decay_survives_serialization_and_renewal_refuses_other_optimizers():
    from amortflow.trainers.optimizers import RenewableCosineDecay, renew_in_place

    schedule = RenewableCosineDecay(1e-3, 40)
    schedule.renew(2e-3, 7)
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=1.0)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))  # as a checkpoint's resume rebuilds it
    assert isinstance(clone._learning_rate, RenewableCosineDecay) and clone._learning_rate.decay_steps == 7
    with pytest.raises(af.exceptions.ArgumentError):
        RenewableCosineDecay(1e-3, 10, warmup_target=1e-2, warmup_steps=5)
    weights = [tf.Variable(tf.ones((3, 2)))]
    optimizer.build(weights)
    assert not renew_in_place(optimizer, keras.optimizers.SGD(1e-3), weights)  # another kind of optimizer
    assert not renew_in_place(optimizer, keras.optimizers.Adam(schedule, global_clipnorm=1.0), [tf.Variable(tf.ones(3))])
