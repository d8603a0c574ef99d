"""Thread pools sized on purpose, with idle threads that sleep.

OpenMP (scikit-learn's histogram boosting) and BLAS start one thread per core they see and,
by default, keep idle threads spinning for a while. Two such jobs on a shared machine (a
second job, a Spark executor running several tasks, a scheduler) spin against each other's
descheduled threads: a 40 s training took 1,362 s next to one other job. Hence:

- one thread per process by default, the fastest setting measured on shared two-core
  machines, alone and beside other jobs (docs/decisions/006-one-thread-per-process.md).
  ``threads=0`` asks for every CPU the process may use: its CPU affinity capped by its cgroup
  quota (a container limited to 1.5 CPUs gets 1 thread, not one per host core);
- ``OMP_WAIT_POLICY=PASSIVE`` makes idle OpenMP threads sleep instead of spinning; it is read
  only when the OpenMP runtime loads, so :func:`configure_threads` sets it (with the pool
  sizes) in the environment before numpy and scikit-learn are imported, and limits the pools
  of any library already loaded through threadpoolctl.

An explicit setting in the environment (``OMP_WAIT_POLICY``, ``OMP_NUM_THREADS``, ...) wins
over the defaults here; an explicit ``threads`` argument wins over the environment.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from crm_modes.shared.errors import InputError

#: Environment variables that size the pools of the libraries numpy and scikit-learn load.
POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
WAIT_POLICY = "OMP_WAIT_POLICY"
#: Threads per process unless told otherwise (see the module docstring for the measurements).
DEFAULT_THREADS = 1


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us`` (None: no quota)."""
    v2 = root / "cpu.max"
    try:
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.exists() and v1_period.exists():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def configure_threads(threads: int | None = None) -> int:
    """Size every thread pool of this process to ``threads``.

    ``None``: ``$OMP_NUM_THREADS`` when set, else :data:`DEFAULT_THREADS`; ``0``: every CPU
    this process may use (:func:`available_cpus`).

    Call it first thing in a process, before numpy or scikit-learn are imported, so that the
    wait policy reaches the OpenMP runtime; pools of libraries already loaded are limited too.

    Returns:
        The number of threads each pool may use.

    Raises:
        ValueError: ``threads`` is below 1.
    """
    if threads is not None and threads < 0:
        raise InputError(f"--threads must be 0 (every available CPU) or more, got {threads}")
    explicit = threads is not None
    if threads is None:
        configured = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_THREADS
    elif threads == 0:
        threads = available_cpus()
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")
    for name in POOL_VARIABLES:
        if explicit or name not in os.environ:
            os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    return threads


def configured_threads() -> int:
    """The pool size :func:`configure_threads` gave this process (``$OMP_NUM_THREADS``), else the default.

    For libraries that take a thread count per call rather than from the OpenMP runtime (LightGBM).
    """
    configured = os.environ.get("OMP_NUM_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else DEFAULT_THREADS


def thread_pools() -> list[dict[str, object]]:
    """The thread pools loaded in this process, as threadpoolctl reports them."""
    from threadpoolctl import threadpool_info

    return [
        {key: pool.get(key) for key in ("user_api", "internal_api", "num_threads", "version")}
        for pool in threadpool_info()
    ]
