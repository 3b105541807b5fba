"""Pin the OpenBLAS kernel numpy uses, so an episode scores the same on every x86-64 machine.

numpy's OpenBLAS picks its matrix kernels by CPU at load time: Haswell (AVX2) on one machine,
SkylakeX (AVX-512) on another. The two give products that differ in the last bits, and an episode is
chaotic: the shipped CarRacing agent made 910.2 on a held-out track with the SkylakeX kernel and
910.1 with the Haswell one. `OPENBLAS_CORETYPE`, read once when OpenBLAS loads, forces one kernel; on
every CPU with AVX2 and FMA we force Haswell's. It must be set before numpy is first imported, so
`worldmodels/__init__.py` calls `pin_openblas_kernel` before anything else, and worker processes
(spawned or Ray actors) inherit the variable. This module imports nothing that loads numpy.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

log = logging.getLogger(__name__)
CORETYPE_ENV = "OPENBLAS_CORETYPE"
PINNED_KERNEL = "Haswell"  # AVX2 + FMA: every x86-64 CPU since 2013 runs it
_NEEDED_FLAGS = {"avx2", "fma"}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def kernel_for(machine: str, flags: set[str]) -> str | None:
    """The OpenBLAS kernel to force on this CPU, or None to leave OpenBLAS's own choice (not x86-64,
    or an x86-64 CPU without AVX2 and FMA, which the Haswell kernel needs)."""
    if machine.lower() not in ("x86_64", "amd64") or not _NEEDED_FLAGS <= flags:
        return None
    return PINNED_KERNEL


def this_cpus_kernel() -> str | None:
    """`kernel_for` this machine."""
    return kernel_for(platform.machine(), cpu_flags())


def pin_openblas_kernel() -> str | None:
    """Set OPENBLAS_CORETYPE for this process and its children unless the user set it; returns the
    kernel in force (None: OpenBLAS chooses). Too late, and says so, if numpy is already loaded."""
    if CORETYPE_ENV in os.environ:
        return os.environ[CORETYPE_ENV] or None
    kernel = this_cpus_kernel()
    if kernel is None:
        return None
    os.environ[CORETYPE_ENV] = kernel
    if "numpy" in sys.modules:
        log.warning(
            "numpy was imported before worldmodels, so its OpenBLAS chose its own kernel and episode "
            "scores may differ in the last bits from other machines; import worldmodels first, or "
            "set %s=%s in the environment",
            CORETYPE_ENV,
            kernel,
        )
    return kernel


def loaded_kernel() -> str | None:
    """The kernel numpy's OpenBLAS runs in this process (threadpoolctl's reading), None if unknown."""
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas":
            return lib.get("architecture")
    return None
