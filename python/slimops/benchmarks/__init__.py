"""Benchmarks and profiler of slimops: ``slimops bench`` and ``slimops profile OP``.

* :mod:`slimops.benchmarks.harness`: timing (median, 20/80% quantiles), the
  measured copy bandwidth (the roofline), peak memory, machine and version
  metadata, and the JSON / CSV / PNG writers shared by every benchmark.
* :mod:`slimops.benchmarks.mx`: the MX microbenchmarks, slimops' kernels side by
  side with the pure-PyTorch reference (eager and ``torch.compile``) and torchao.
* :mod:`slimops.benchmarks.profile`: one op under ``torch.profiler`` per
  provider (chrome traces), with NVML sampling of clocks, power and memory on GPU.

Nothing here is imported by ``import slimops``; matplotlib and pynvml are only
imported when a report is plotted or a GPU is sampled.
"""
