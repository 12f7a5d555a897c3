"""Numba-JIT kernels of crossbar-sim and their NumPy reference twins.

This package imports nothing else of the project. Kernels are module-level ``@njit`` functions over arrays
and scalars: no classes, configs, I/O or logging; they read no module globals (cached kernels would freeze
them), so tables are passed in as arguments. Every kernel has a pure-NumPy twin with the same name in
:mod:`crossbar_sim.kernels.reference`, used by the tests.
"""
