"""Thread pools: BLAS threads of the NumPy products (Numba's threads are set by
:func:`crossbar_sim.tiles.analog.set_num_threads`)."""
from __future__ import annotations


def blas_threads(n: int | None = 1):
    """Context manager limiting BLAS threads (the model's products are small: one thread is faster than two
    on a shared machine, where multi-threaded OpenBLAS spin-waits; measured 0.14 ms vs 40-77 ms for a
    128x1024 @ 1024x64 product under load), and a run's floating-point sums must not depend on how many
    threads BLAS happens to use (a 1-worker and a 2-worker sweep give the same bits). ``None``: leave BLAS
    alone."""
    import contextlib

    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(n), user_api="blas")
