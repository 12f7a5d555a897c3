"""Training loops: public five-line API, resume equals uninterrupted run, divergence keeps the record."""
import numpy as np
import pytest

from crossbar_sim import ConfigError
from crossbar_sim.least_squares.task import LeastSquaresTask
from crossbar_sim.least_squares.training import TrainConfig, Trainer, train

TASK = LeastSquaresTask(n_samples=30, in_size=8, out_size=2, noise_std=0.1)


@pytest.mark.parametrize("algorithm", ["digital_sgd", "analog_sgd", "tiki_taka"])
def test_five_line_api_and_determinism(algorithm):
    cfg = TrainConfig(algorithm=algorithm, lr=0.1, steps=60, snapshot_every=20)
    a = train(TASK, cfg, seed=3)
    b = train(TASK, cfg, seed=3)
    assert a.status == "complete" and len(a.steps) == 61 and a.steps[-1] == 60
    for name in ("loss", "grad_norm2", "dist2", "pulses"):
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name])
    assert a.metrics["loss"][-1] < 0.5 * a.metrics["loss"][0]
    assert sorted(a.snapshots) == [0, 20, 40, 60]
    if algorithm == "tiki_taka":
        assert set(a.snapshots[60]) == {"A", "C"}
    if algorithm != "digital_sgd":
        assert a.metrics["pulses"][-1] > 0  # the pulsed path ran (aihw PR#263)


@pytest.mark.parametrize("algorithm", ["analog_sgd", "tiki_taka"])
def test_resume_equals_uninterrupted_run(algorithm):
    """PITFALLS: a run stopped, saved and resumed equals the uninterrupted run bit for bit."""
    cfg = TrainConfig(algorithm=algorithm, lr=0.1, steps=40)
    full = Trainer(TASK, cfg, seed=5)
    full.run()
    part = Trainer(TASK, cfg, seed=5)
    part.run(steps=17)
    state = part.state_dict()
    resumed = Trainer(TASK, cfg, seed=999)  # the seed is irrelevant once the state is loaded
    resumed.load_state_dict(state)
    resumed.run()
    np.testing.assert_array_equal(full.model.read_weights(), resumed.model.read_weights())
    assert full.rec == resumed.rec and full.rec_steps == resumed.rec_steps


def test_diverging_run_keeps_its_record():
    # digital SGD with a learning rate far beyond 2 / L blows up
    res = train(TASK, TrainConfig(algorithm="digital_sgd", lr=50.0, steps=500), seed=0)
    assert res.status == "diverged"
    assert "loss became" in res.error and 1 < len(res.steps) < 501
    assert np.isfinite(res.metrics["loss"][0])


def test_bad_train_config():
    with pytest.raises(ConfigError, match="'algorithm' parameter of TrainConfig must be one of"):
        TrainConfig(algorithm="adam")
    with pytest.raises(ConfigError, match=r"'lr' parameter of TrainConfig must be a float in \(0"):
        TrainConfig(lr=0.0)
    with pytest.raises(ConfigError, match="'gradient' parameter of LeastSquaresTask must be one of"):
        LeastSquaresTask(gradient="sometimes")
