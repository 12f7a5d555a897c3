"""Named experiments of crossbar-sim.

Each experiment is a module defining what is swept, what is plotted and what the theory predicts. They are
found by the CLI through the ``crossbar_sim.experiments`` entry-point group (see ``pyproject.toml``), so
``crossbar_sim`` never imports this package by name and a user's own package can add experiments the same way.
"""
