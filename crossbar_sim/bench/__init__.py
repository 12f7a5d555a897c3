"""Benchmarks (not tests) and the aihwkit comparison tools.

* :mod:`.tiles` -- pulsed update and MVM timings on the reference workload (``crossbar-sim bench``);
* :mod:`.mnist` -- one MNIST epoch in the paper's setting, with a profile split;
* :mod:`.aihwkit_ref` -- running the aihwkit scripts in another Python next to ours;
* ``aihwkit_tile.py``, ``aihwkit_epoch.py`` -- standalone aihwkit scripts (numpy, torch and aihwkit only).
"""
