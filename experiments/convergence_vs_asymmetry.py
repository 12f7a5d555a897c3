"""Convergence vs asymmetry: analog SGD stalls on asymmetric devices, Tiki-Taka does not.

The default experiment of ``crossbar-sim sweep`` (about two minutes on a 2-core laptop).

What is swept: least squares ``f(W) = 1/2 ||A W^T - b||^2`` (A 100 x 40, W a 40-vector, W* uniform in +-0.5),
with Gaussian gradient noise of standard deviation 0.3 per gradient entry added to the full gradient, which is
written onto the devices as pulsed rank-1 updates (the setting of the paper's analysis, ``gradient = "full"``);
4000 steps on the paper's *asymmetric linear device* (SoftBoundsReference with ``w_max = -w_min = tau``,
``dw_min = 1e-3``, no device-to-device or cycle-to-cycle variation, perfect periphery) for tau in 0.6 .. 3, with
analog SGD and digital SGD at learning rates 0.1 and 0.02, and Tiki-Taka v1 at 0.1 (fast_lr 0.02, one column
transferred per step, exact column reads); three seeds each: 90 runs.

What the theory predicts (Wu, Gokmen, Rasch & Chen, arXiv 2406.12774): with gradient noise sigma^2, analog SGD on
this device converges only to an *asymptotic error* that does not shrink with the learning rate and grows as
tau shrinks; its upper bound is ``4 sigma^2 S`` with ``S = (|W*|_inf^2 / tau^2) / (1 - |W*|_inf^2 / tau^2)``.
Digital SGD's noise floor falls with the learning rate (5x smaller lr, several times lower floor); Tiki-Taka
converges to a critical point with no asymptotic error, so its floor stays far below analog SGD's at small tau.

What is stored and plotted: per run the loss, squared gradient norm, distance to W* and pulse count every 20
steps, weight snapshots every 1000 steps, the final tile state; the *error floor* of a run is the mean loss
over the last 20% of the steps. ``convergence_vs_asymmetry.png`` plots the error floor against tau for each
algorithm and learning rate (mean over seeds, error bars: standard deviation over seeds) with the predicted
shape ``4 sigma^2 S`` overlaid for analog SGD, scaled by one constant fitted to the analog SGD floors (the
theorem gives an upper bound, not the constant).
"""
from crossbar_sim.engine.spec import Experiment

TAUS = [0.6, 0.75, 1.0, 1.5, 2.0, 3.0]

SPEC = {
    "name": "convergence_vs_asymmetry",
    "seed": 2406_12774,
    "figures": ["convergence-vs-asymmetry"],
    "floor_fraction": 0.2,
    "task": {"n_samples": 100, "in_size": 40, "out_size": 1, "w_star_scale": 0.5, "noise_std": 0.3,
             "gradient": "full", "seed": 0},
    "device": {
        "model": "SoftBoundsReference",
        "dw_min": 1e-3,
        # the paper's analysis: no device-to-device or cycle-to-cycle variation
        "dw_min_dtod": 0.0, "dw_min_std": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0,
    },
    "train": {
        "steps": 4000,
        "lr": 0.1,
        "record_every": 20,
        "snapshot_every": 1000,
        "transfer": {"fast_lr": 0.02, "n_reads_per_transfer": 1, "transfer_forward": {"is_perfect": True}},
    },
    "axes": {"tau": TAUS, "seed": [0, 1, 2]},
    "cases": [
        {"algorithm": ["analog_sgd", "digital_sgd"], "lr": [0.1, 0.02]},
        {"algorithm": "tiki_taka"},
    ],
}

EXPERIMENT = Experiment(name="convergence_vs_asymmetry", spec=SPEC, description=__doc__.strip().splitlines()[0])
