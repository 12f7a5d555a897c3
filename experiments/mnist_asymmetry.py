"""MNIST accuracy against device asymmetry: the paper's FCN with analog SGD and the Tiki-Taka family.

Run it: ``crossbar-sim sweep mnist_asymmetry`` (the full sweep: 10 epochs on all 60k images, 78 runs, several hours
on 2 cores), or a first look (5 runs of 2 epochs, minutes on 2 cores)::

    crossbar-sim sweep mnist_asymmetry --set 'cases.0.algorithm=["analog_sgd", "tiki_taka"]' \\
        --set 'cases.0.tau=[0.6, 3.0]' --set net.epochs=2 --set net.n_test=2000 --set 'axes.seed=[0]' \\
        --out asym_quick.h5

Fewer training images do not make a faster first look: in this setting (sigmoid FCN, lr 0.05, batch 10) every
analog layer sits at chance until the network has seen roughly 6,000-12,000 mini-batches (Tiki-Taka at tau 0.78:
12.4 % after one epoch of 60k, 87 % after two; 20k images x 3 epochs is still at chance), as in aihwkit.

What is swept: the FCN 784-256-128-10 (sigmoid) of arXiv 2406.12774 on MNIST, every weight layer on tiles of the
paper's device (SoftBoundsReference with ``w_max = -w_min = tau``, aihwkit's default variations and periphery,
BL 31 with update management, the 784-input layer on two 392-input tiles as aihwkit maps it), for tau in
0.6 .. 3, with analog SGD, Tiki-Taka v1, TTv2, chopped TTv2 and AGAD (their default transfer settings on top of
the paper's fast_lr 0.01 and one column read per mini-batch), plus the digital SGD reference (lr 0.1); three seed
labels, every algorithm with the same label starting from the same weights and seeing the same batches.

What the theory predicts (arXiv 2406.12774): analog SGD stalls at an error that grows as tau shrinks (at the
paper's tau 0.78 it sits near chance for ~30 epochs before it escapes; at 0.70 it never escapes in 80 epochs),
while the Tiki-Taka family keeps close to digital accuracy down to small tau; TTv2, chopped TTv2 and AGAD correct
the symmetric-point offset that Tiki-Taka v1 suffers on real devices.

Figures: ``<out>_accuracy_vs_tau.png`` (final test accuracy against tau per algorithm, seed error bars, digital
as a band) and ``<out>_accuracy_vs_epoch.png``.
"""
from crossbar_sim.engine.spec import Experiment

NAME = "mnist_asymmetry"
TAUS = [0.6, 0.78, 1.0, 1.5, 3.0]
ANALOG = ["analog_sgd", "tiki_taka", "ttv2", "chopped_ttv2", "agad"]

SPEC = {
    "kind": "network",
    "name": NAME,
    "seed": 2024_12_03,
    "figures": ["accuracy-vs-tau", "accuracy-vs-epoch"],
    "net": {"dataset": "mnist", "model": "fcn", "batch_size": 10, "epochs": 10, "lr": 0.05, "schedule": "step",
            "lr_step": 35, "lr_gamma": 0.1, "snapshot_every": 0,
            "transfer": {"fast_lr": 0.01, "n_reads_per_transfer": 1, "transfer_every": 1.0}},
    "axes": {"seed": [0, 1, 2]},
    "cases": [
        {"algorithm": ANALOG, "tau": TAUS},
        {"algorithm": "digital_sgd", "lr": 0.1},
    ],
}

EXPERIMENT = Experiment(name=NAME, spec=SPEC, description=__doc__.splitlines()[0])
