"""A corruption fuzzer: every artifact kind, mutated every way a disk or a user damages it, read by
every command that reads it. Each case must end with exit 1, one message naming the file, no
traceback, no claim that something was written or is up to date, and every file that was there
before byte-identical. The commands run in-process through the entry points the command line uses
(`stage_main`, each tool's `main`); a few cases go through the real command line as well.

docs/bad-inputs.md lists the matrix; `CASES` is its source (`python tests/test_corruption.py`
prints the counts)."""

import hashlib
import json
import pickle
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

KINDS = {
    "rollout": "rollouts/s0_e000000.npz",
    "series": "series/series.h5",
    "vision config": "vision/config.json",
    "V encoder": "vision/encoder.npz",
    "V weights": "vision/vae.weights.h5",
    "V checkpoint": "vision/checkpoint.npz",
    "M config": "memory/config.json",
    "M weights": "memory/rnn.npz",
    "M checkpoint": "memory/checkpoint.npz",
    "C config": "controller/config.json",
    "C parameters": "controller/best.npz",
    "CMA-ES state": "controller/es_state.pkl",
}

READERS = {
    "rollout": ["train-vae", "encode", "check"],
    "series": ["train-rnn", "play --dream", "check"],
    "vision config": ["encode", "train-rnn", "train-controller", "evaluate", "play", "export", "check"],
    "V encoder": ["train-controller", "evaluate", "play", "export", "check"],
    "V weights": ["encode", "play", "export", "check"],
    "V checkpoint": ["train-vae", "check"],
    "M config": ["train-controller", "evaluate", "play", "export", "check"],
    "M weights": ["train-controller", "evaluate", "play", "export", "check"],
    "M checkpoint": ["train-rnn", "check"],
    "C config": ["evaluate", "play", "export", "check"],
    "C parameters": ["evaluate", "play", "export", "check"],
    "CMA-ES state": ["train-controller", "check"],
}

FORMAT = {
    "rollout": "npz",
    "series": "h5",
    "vision config": "json",
    "V encoder": "npz",
    "V weights": "h5w",
    "V checkpoint": "ckpt",
    "M config": "json",
    "M weights": "npz",
    "M checkpoint": "ckpt",
    "C config": "json",
    "C parameters": "npz",
    "CMA-ES state": "pkl",
}

MUTATIONS = {
    "npz": ["truncated", "empty", "wrong dtype", "wrong shape", "NaN", "missing key", "from another run"],
    "ckpt": ["truncated", "empty", "wrong shape", "NaN", "missing key", "from another run"],
    "h5": ["truncated", "empty", "wrong shape", "NaN", "missing key", "from another run"],
    "h5w": ["truncated", "empty", "from another run"],
    "json": ["truncated", "empty", "wrong dtype", "NaN", "missing key", "from another env", "from another run"],
    "pkl": ["truncated", "empty", "NaN", "missing key"],
}
CASES = [(kind, m) for kind in KINDS for m in MUTATIONS[FORMAT[kind]]]


def _npz_mutate(path: Path, mutation: str, kind: str) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    float_keys = [k for k, a in arrays.items() if a.dtype.kind == "f" and a.size]
    first = "obs" if kind == "rollout" else float_keys[0]
    if mutation == "wrong dtype":
        arrays[first] = arrays[first].astype(np.float64 if kind == "rollout" else np.int32)
    elif mutation == "wrong shape":
        arrays[first] = arrays[first][..., :-1]
    elif mutation == "NaN":
        key = "reward" if kind == "rollout" else first
        arrays[key] = arrays[key].copy()
        arrays[key].flat[0] = np.nan
    elif mutation == "missing key":
        arrays.pop("meta" if FORMAT[kind] == "ckpt" else first)
    np.savez(path.with_suffix(""), **arrays)  # np.savez adds the .npz


def _h5_mutate(path: Path, mutation: str) -> None:
    with h5py.File(path, "a") as f:
        if mutation == "missing key":
            del f["reward"]
        elif mutation == "wrong shape":
            data = f["reward"][:-1]
            del f["reward"]
            f["reward"] = data
        elif mutation == "NaN":
            f["mu"][0, 0] = np.nan


def _json_mutate(path: Path, mutation: str, kind: str) -> None:
    cfg = json.loads(path.read_text())
    size_key = {"vision config": "z_size", "M config": "rnn_size", "C config": "n_params"}[kind]
    if mutation == "wrong dtype":
        cfg[size_key] = str(cfg[size_key])
    elif mutation == "NaN":
        key = "kl_tolerance" if kind == "vision config" else size_key
        cfg[key] = float("nan")
    elif mutation == "missing key":
        del cfg[size_key]
    elif mutation == "from another env":
        cfg["env"] = "doom"
    path.write_text(json.dumps(cfg))


def _pkl_mutate(path: Path, mutation: str) -> None:
    state = pickle.loads(path.read_bytes())
    if mutation == "missing key":
        del state["history"]
    elif mutation == "NaN":
        state["best_params"] = np.full_like(np.asarray(state["best_params"], np.float64), np.nan)
    path.write_bytes(pickle.dumps(state))


def mutate(run: Path, other: Path, kind: str, mutation: str) -> Path:
    """Damage `kind` in `run` by `mutation`; returns the damaged file."""
    path = run / KINDS[kind]
    if mutation == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif mutation == "empty":
        path.write_bytes(b"")
    elif mutation == "from another run":
        if kind == "rollout":  # an episode of another env: one action, not three
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["action"] = arrays["action"][:, :1]
            np.savez(path.with_suffix(""), **arrays)
        else:
            shutil.copyfile(other / KINDS[kind], path)
    elif FORMAT[kind] in ("npz", "ckpt"):
        _npz_mutate(path, mutation, kind)
    elif FORMAT[kind] == "h5":
        _h5_mutate(path, mutation)
    elif FORMAT[kind] == "json":
        _json_mutate(path, mutation, kind)
    elif FORMAT[kind] == "pkl":
        _pkl_mutate(path, mutation)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def call(reader: str, run: Path, out: Path) -> int:
    """Run one reader in-process, as its command would; returns the exit status."""
    from worldmodels.cli import stage_main
    from worldmodels.tools import check, evaluate, export_pretrained, play

    common = ["--preset", "tiny", "--data-dir", str(run), "--workers", "1"]
    tools = {
        "evaluate": lambda: evaluate.main(
            [*common, "--episodes", "1", "--max-steps", "5", "--out", str(out / "e.json")]
        ),
        "play": lambda: play.main([*common[:4], "--max-steps", "5", "--video", str(out / "v.gif")]),
        "play --dream": lambda: play.main([*common[:4], "--dream", "--max-steps", "5", "--video", str(out / "d.gif")]),
        "export": lambda: export_pretrained.main([*common[:4], "--out", str(out / "bundle")]),
        "check": lambda: check.main([str(run)]),
    }
    try:
        if reader in tools:
            return tools[reader]()
        return stage_main(reader, [*common, "--generations", "2"] if reader == "train-controller" else common)
    except SystemExit as e:
        return e.code


@pytest.mark.slow  # the whole matrix: about a minute and a half (make test runs it)
@pytest.mark.parametrize("kind, mutation", CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_damaged_artifact_is_refused_by_every_reader(kind, mutation, tiny_run, other_tiny_run, tmp_path, capsys):
    run = tmp_path / "carracing"
    shutil.copytree(tiny_run, run, symlinks=True)
    damaged = mutate(run, other_tiny_run, kind, mutation)
    before = tree_digest(run)
    for reader in READERS[kind]:
        out = tmp_path / f"out-{reader.replace(' ', '')}"
        status = call(reader, run, out)
        captured = capsys.readouterr()
        said = captured.err + captured.out
        where = f"{kind} {mutation} -> {reader}: {said[-1500:]}"
        assert status == 1, where
        named = {str(damaged), str(damaged.parent), damaged.name}
        assert any(n in said for n in named), where
        assert "Traceback" not in said, where
        assert "wrote " not in captured.out and "up to date" not in said, where
        assert tree_digest(run) == before, where  # nothing there before was changed or removed
        assert not list(run.rglob(".lock-*")) and not list(run.rglob(".tmp*")), where


@pytest.mark.slow  # the real command line: subprocesses
def test_a_few_cases_through_the_real_command_line(tiny_run, other_tiny_run, tmp_path, scripts):
    """The same contract when the command runs as users run it."""
    cases = [
        ("V encoder", "from another run", [sys.executable, "-m", "worldmodels.evaluate", "--episodes", "1"]),
        ("C parameters", "empty", [sys.executable, "-m", "worldmodels", "play", "--max-steps", "5"]),
        ("series", "truncated", [sys.executable, "04_train_rnn.py", "--preset", "tiny"]),
        ("M weights", "NaN", [sys.executable, "05_train_controller.py", "--preset", "tiny"]),
    ]
    for kind, mutation, cmd in cases:
        run = tmp_path / kind.replace(" ", "_") / "carracing"
        shutil.copytree(tiny_run, run, symlinks=True)
        damaged = mutate(run, other_tiny_run, kind, mutation)
        before = tree_digest(run)
        workers = [] if "play" in cmd else ["--workers", "1"]
        p = scripts.run_cmd([*cmd, "--data-dir", str(run), *workers], None)
        said = p.stdout + p.stderr
        assert p.returncode == 1 and str(damaged.parent) in said and "Traceback" not in said, (kind, said[-2000:])
        assert tree_digest(run) == before


def test_rerunning_stage5_repairs_an_emptied_best_npz(run_copy, capsys):
    """A finished stage 5 rerun rewrites best.npz from its saved search state (it never says 'wrote'
    over an empty file)."""
    from worldmodels.cli import stage_main
    from worldmodels.models.loading import load_controller

    good = load_controller(run_copy, "carracing")[1]
    (run_copy / "controller" / "best.npz").write_bytes(b"")
    argv = ["--preset", "tiny", "--data-dir", str(run_copy), "--workers", "1", "--generations", "1"]
    argv += ["--eval-episodes", "1", "--eval-max-steps", "20", "--max-steps", "20", "--eval-every", "0"]
    assert stage_main("train-controller", argv) == 0
    np.testing.assert_array_equal(load_controller(run_copy, "carracing")[1], good)


if __name__ == "__main__":
    for kind in KINDS:
        print(f"{kind}: {len(MUTATIONS[FORMAT[kind]])} mutations x {len(READERS[kind])} readers")
    print(f"{len(CASES)} damaged files, {sum(len(READERS[k]) for k, _ in CASES)} reads")
