"""The experiment engine: spec -> runs -> executor (pool or Dask) -> store -> plots.

* :mod:`.spec` -- experiments and sweep specs: validation and expansion into one config per run;
* :mod:`.store` -- the HDF5 result store (journal, staging, atomic renames);
* :mod:`.plots` -- figures from result files.
"""
