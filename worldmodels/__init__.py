"""worldmodels: Ha & Schmidhuber's World Models (2018) as a staged, resumable, tested pipeline."""

# Before anything loads numpy: one OpenBLAS kernel on every x86-64 machine (runtime/blas_kernel.py).
from worldmodels.runtime.blas_kernel import pin_openblas_kernel

pin_openblas_kernel()

__version__ = "0.1.0"
