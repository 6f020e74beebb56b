"""NaN/inf losses: skipped on the device and counted; too many in a row stop training clearly."""

from __future__ import annotations

import numpy as np
import pytest

from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.exceptions import NonFiniteLossError
from amortflow.trainers import Trainer

from .conftest import GaussianMeanAmortizer


class NaNInjector:
    """The default configurator, but parameters become NaN on the calls listed in ``bad``.

    The trainer builds the amortizer on call 0 (``skip_checks=True``); online call ``k`` then
    configures the batch of step ``k`` (the producer thread calls it in step order).
    """

    def __init__(self, bad):
        self.base, self.bad, self.calls = DefaultPosteriorConfigurator(), set(bad), 0

    def __call__(self, raw):
        out = self.base(raw)
        if self.calls in self.bad:
            out["parameters"] = np.full_like(out["parameters"], np.nan)
        self.calls += 1
        return out


def _weights_finite(amortizer) -> bool:
    return all(np.isfinite(w.numpy()).all() for w in amortizer.weights)


def test_nonfinite_steps_are_skipped_and_counted(model, quiet_settings):
    amortizer = GaussianMeanAmortizer()
    trainer = Trainer(amortizer, model, configurator=NaNInjector({3, 6}), skip_checks=True, steps_per_call=4,
                      **quiet_settings)  # fmt: skip
    history = trainer.train_online(epochs=1, iterations_per_epoch=10, batch_size=8)
    losses = history["train_losses"]["Loss"].to_numpy()
    assert np.flatnonzero(~np.isfinite(losses)).tolist() == [2, 5]  # steps 3 and 6
    assert trainer.nonfinite_steps == 2 and trainer.step == 10
    # skipped steps do not update: Adam's step counter (and the LR schedule) did not advance
    assert int(trainer.optimizer.iterations.numpy()) == 8
    assert _weights_finite(amortizer)


def test_too_many_nonfinite_in_a_row_stop_with_the_step_and_last_checkpoint(model, quiet_settings, tmp_path):
    amortizer = GaussianMeanAmortizer()
    folder = tmp_path / "ckpt"
    trainer = Trainer(amortizer, model, configurator=NaNInjector(range(4, 100)), skip_checks=True, checkpoint_path=folder,
                      steps_per_call=2, checkpoint_every=2, max_nonfinite_in_a_row=3, **quiet_settings)  # fmt: skip
    with pytest.raises(NonFiniteLossError) as info:
        trainer.train_online(epochs=1, iterations_per_epoch=20, batch_size=8)
    message = str(info.value)
    assert "3 non-finite" in message and "at step 6 (epoch 1, iteration 6)" in message
    assert str(folder / "ckpt-4") in message  # the checkpoint written after step 4
    with np.load(folder / "nonfinite_batch.npz") as bad:
        assert np.isnan(bad["parameters"]).all() and bad["summary_conditions"].shape == (8, 10, 2)
    assert _weights_finite(amortizer) and trainer.nonfinite_steps == 3
