"""The package's layout holds: lower layers never import upper ones, stages never import each other,
no file edits sys.path, and importing any module leaves the environment variables as they were (but
OPENBLAS_CORETYPE, which the package sets on purpose)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "worldmodels"
LOWER = ("models", "envs", "runtime", "io")
UPPER = ("worldmodels.stages", "worldmodels.tools", "worldmodels.experiments", "worldmodels.cli")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_lower_layers_never_import_stages_tools_or_the_command_line():
    bad = []
    files = [p for layer in LOWER for p in (PKG / layer).rglob("*.py")] + [PKG / "config.py", PKG / "paper.py"]
    for f in files:
        bad += [f"{f.relative_to(ROOT)} imports {m}" for m in imported_modules(f) if m.startswith(UPPER)]
    assert not bad, bad


def test_stages_never_import_each_other_or_the_command_line():
    bad = []
    for f in (PKG / "stages").glob("*.py"):
        for m in imported_modules(f):
            if m.startswith(("worldmodels.stages", "worldmodels.cli", "worldmodels.tools")):
                bad.append(f"{f.relative_to(ROOT)} imports {m}")
    assert not bad, bad


def test_no_file_edits_sys_path():
    offenders = [
        str(p.relative_to(ROOT))
        for d in ("worldmodels", "tests", "bench")
        for p in (ROOT / d).rglob("*.py")
        if "sys.path.insert(" in p.read_text() and p.name != "test_layout.py"
    ]
    offenders += [p.name for p in ROOT.glob("*.py") if "sys.path.insert(" in p.read_text()]
    assert not offenders, offenders


def test_importing_every_module_leaves_the_environment_alone():
    """(Python's own libraries may set variables of theirs; none of our modules may, but one: the
    package pins OpenBLAS's kernel on x86-64 CPUs with AVX2, runtime/blas_kernel.py, which has to be
    done by an environment variable set before numpy loads.)"""
    from worldmodels.runtime.blas_kernel import CORETYPE_ENV, this_cpus_kernel

    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in PKG.rglob("*.py") if p.name != "__main__.py"
    )
    # Third-party libraries set their own variables on import (TensorFlow, h5py): import them first,
    # so that what changes afterwards is ours.
    code = (
        "import importlib, json, os, sys\n"
        "import tensorflow, keras, h5py, gymnasium, cma, matplotlib, imageio, ray, vizdoom\n"
        "before = dict(os.environ)\n"
        "for m in sys.argv[1:]:\n"
        "    importlib.import_module(m.removesuffix('.__init__'))\n"
        "after = dict(os.environ)\n"
        "print(json.dumps({k: [before.get(k), after.get(k)] for k in set(before) | set(after)"
        " if before.get(k) != after.get(k)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "TF_CPP_MIN_LOG_LEVEL", CORETYPE_ENV)}
    p = subprocess.run([sys.executable, "-c", code, *modules], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    changed = json.loads(p.stdout.strip().splitlines()[-1])
    kernel = this_cpus_kernel()
    assert changed == ({CORETYPE_ENV: [None, kernel]} if kernel else {}), changed
