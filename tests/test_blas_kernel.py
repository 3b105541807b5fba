"""One OpenBLAS kernel on every x86-64 machine (worldmodels/runtime/blas_kernel.py): without it, the
shipped CarRacing agent scored 910.2 instead of its recorded 910.1 on an AVX-512 CI machine."""

import os
import subprocess
import sys

import pytest

from worldmodels.runtime import blas_kernel as bk

QUALIFIES = bk.this_cpus_kernel() is not None
needs_x86_avx2 = pytest.mark.skipif(not QUALIFIES, reason="not an x86-64 CPU with AVX2 and FMA: OpenBLAS chooses")


def test_the_kernel_is_pinned_on_x86_64_with_avx2_and_fma_only():
    assert bk.kernel_for("x86_64", {"sse2", "avx2", "fma", "avx512f"}) == "Haswell"
    assert bk.kernel_for("AMD64", {"avx2", "fma"}) == "Haswell"
    assert bk.kernel_for("x86_64", {"sse2", "avx"}) is None  # no AVX2: Haswell's kernel would not run
    assert bk.kernel_for("aarch64", {"avx2", "fma"}) is None


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nbugs\t\t: spectre\n")
    assert bk.cpu_flags(str(info)) == {"fpu", "sse2", "avx2", "fma"}
    assert bk.cpu_flags(str(tmp_path / "missing")) == set()


def test_pin_sets_the_variable_and_respects_the_users(monkeypatch):
    monkeypatch.setattr(bk.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(bk, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.delenv(bk.CORETYPE_ENV, raising=False)
    assert bk.pin_openblas_kernel() == "Haswell"
    assert os.environ[bk.CORETYPE_ENV] == "Haswell"
    monkeypatch.setenv(bk.CORETYPE_ENV, "Zen")
    assert bk.pin_openblas_kernel() == "Zen"
    assert os.environ[bk.CORETYPE_ENV] == "Zen"


@needs_x86_avx2
def test_this_process_runs_the_pinned_kernel():
    """conftest imports worldmodels before numpy, so the suite's in-process episodes use the kernel too."""
    import numpy  # noqa: F401

    assert bk.loaded_kernel() == bk.PINNED_KERNEL


@needs_x86_avx2
def test_a_fresh_process_importing_worldmodels_first_runs_the_pinned_kernel():
    env = {k: v for k, v in os.environ.items() if k != bk.CORETYPE_ENV}
    code = "import worldmodels, numpy\nfrom worldmodels.runtime.blas_kernel import loaded_kernel as k\nprint(k())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == bk.PINNED_KERNEL
