"""Convergence vs asymmetry: the theorems of arXiv 2406.12774 on the quantity they bound.

The default experiment of ``crossbar-sim sweep`` (93 runs of 10,000 steps, about a minute on 2 cores once the
kernels are compiled).

Task: least squares ``f(W) = 1/2 ||A W^T - b||^2`` (A 100 x 40, W a 40-vector, W* uniform in +-0.5), with Gaussian
gradient noise of standard deviation 0.3 per entry added to the full gradient (sigma^2 = E||noise||^2 = 40 x 0.09
= 3.6), written onto the devices as pulsed rank-1 updates (the setting of the paper's analysis,
``gradient = "full"``); the paper's *asymmetric linear device* (SoftBoundsReference with ``w_max = -w_min = tau``,
``dw_min = 1e-3``, no device-to-device or cycle-to-cycle variation, perfect periphery). Pulse trains up to 100
slots (``desired_bl``), so that no update is clipped at the largest learning rate (at BL 31, lr 0.04 would
be, and a clipped update is a smaller, biased one). Tiki-Taka v1: fast_lr 0.02, two columns of A transferred
per step with exact reads. Three seeds per point.

What is measured (:mod:`crossbar_sim.least_squares.theory`): per run, the *asymptotic squared gradient norm*
G, the mean of ``||grad f(W_k)||^2`` over the last 25% of the steps, and for analog SGD its own bound
``4 sigma^2 S_K`` (Theorem 2) from the run's recorded ``||W_k||_inf``.

Sub-sweeps (``cases``), one per panel of ``<out>_convergence_vs_asymmetry.png``:

(a) analog SGD and Tiki-Taka at lr 0.01 for tau in 0.6 .. 3, beside digital SGD at the same lr: analog SGD
    stalls at a floor that grows as tau shrinks and lies below its bound; Tiki-Taka's floor is far lower;
    plus the lower-bound instance of Theorem 3 (two-point noise, every ``|W*_i| = 0.5``, A 1000 x 40 so that
    ``A^T A ~ I``), which comes closest to the bound;
(b) at tau = 1, lr 0.005 .. 0.04: digital SGD's and Tiki-Taka's floors fall with the learning rate (their
    asymptotic error is zero), analog SGD's does not;
(c) at tau = 1, lr 0.01, noise std 0.1 .. 0.45: analog SGD's floor grows like sigma^2, as its bound does;
(d) the training curves at tau = 1, with the averaging window.
"""
from crossbar_sim.engine.spec import Experiment

TAUS = [0.6, 0.75, 1.0, 1.5, 2.0, 3.0]
LR = 0.01                        # the small learning rate of panels (a) and (c)
TAU_B = 1.0                      # the one tau of panels (b) and (c)
LRS = [0.005, 0.01, 0.02, 0.04]  # panel (b)
NOISE_STDS = [0.1, 0.2, 0.45]    # panel (c), with the default 0.3 of panel (a)

SPEC = {
    "name": "convergence_vs_asymmetry",
    "seed": 2406_12774,
    "figures": ["convergence-vs-asymmetry"],
    "floor_fraction": 0.25,
    "task": {"n_samples": 100, "in_size": 40, "out_size": 1, "w_star_scale": 0.5, "noise_std": 0.3,
             "gradient": "full", "seed": 0},
    "device": {
        "model": "SoftBoundsReference",
        "dw_min": 1e-3,
        # the paper's analysis: no device-to-device or cycle-to-cycle variation
        "dw_min_dtod": 0.0, "dw_min_std": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0,
    },
    "train": {
        "steps": 10000,
        "lr": LR,
        "record_every": 20,
        "snapshot_every": 5000,
        "update": {"desired_bl": 100},
        "transfer": {"fast_lr": 0.02, "n_reads_per_transfer": 2, "transfer_forward": {"is_perfect": True},
                     "transfer_update": {"desired_bl": 100}},
    },
    "axes": {"seed": [0, 1, 2]},
    "cases": [
        # (a) against tau, at one small learning rate
        {"algorithm": ["analog_sgd", "tiki_taka"], "tau": TAUS, "lr": [LR]},
        # (b) against the learning rate at one tau (lr 0.01 comes from case (a))
        {"algorithm": ["analog_sgd", "tiki_taka"], "tau": [TAU_B], "lr": [lr for lr in LRS if lr != LR]},
        # digital SGD has no device: (a)'s reference line and (b)'s third series
        {"algorithm": "digital_sgd", "lr": LRS},
        # (c) against the noise level (0.3 comes from case (a))
        {"algorithm": "analog_sgd", "tau": [TAU_B], "lr": [LR], "noise_std": NOISE_STDS},
        # Theorem 3's lower-bound instance, against tau
        {"algorithm": "analog_sgd", "tau": TAUS, "lr": [LR], "noise_dist": "two_point", "w_star_dist": "sign",
         "n_samples": 1000},
    ],
}

EXPERIMENT = Experiment(name="convergence_vs_asymmetry", spec=SPEC, description=__doc__.strip().splitlines()[0])
