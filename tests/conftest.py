"""Shared fixtures for the whole suite, and its guard against leftover processes.

Every process the suite starts (stage scripts, worker pools, game engines, Ray) inherits
WORLDMODELS_TEST_SESSION; when the session ends, any such process still alive fails the run (and
is killed, so it cannot outlive `make test`).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import worldmodels  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, runtime/blas_kernel.py)

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
SESSION_VAR = "WORLDMODELS_TEST_SESSION"
os.environ[SESSION_VAR] = f"pytest-{os.getpid()}"

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_fake_rollout(rng, T=30, action_dim=3, terminated_last=False):
    obs = rng.integers(0, 256, size=(T, 64, 64, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, size=(T, action_dim)).astype(np.float32)
    reward = rng.normal(size=T).astype(np.float32)
    terminated = np.zeros(T, bool)
    truncated = np.zeros(T, bool)
    if terminated_last:
        terminated[-1] = True
    else:
        truncated[-1] = True
    return obs, action, reward, terminated, truncated


@pytest.fixture(scope="session")
def fake_rollout():
    """fake_rollout(rng, T=30, action_dim=3, terminated_last=False) -> (obs, action, reward,
    terminated, truncated): one random episode in the rollout format."""
    return make_fake_rollout


def write_smooth_rollouts(root: Path, episodes: int = 3, T: int = 40, seed: int = 0) -> None:
    """Write `episodes` rollouts of T steps under root/rollouts whose frames are smooth gradients
    (something a tiny VAE can learn), with random actions and rewards."""
    from worldmodels.io.data import save_rollout

    rng = np.random.default_rng(seed)
    for i in range(episodes):
        obs, action, reward, term, trunc = make_fake_rollout(rng, T=T)
        obs[:] = (np.linspace(0, 255, 64)[None, :, None, None] * (i + 1) / episodes).astype(np.uint8)
        save_rollout(Path(root) / "rollouts" / f"s0_e{i:06d}.npz", obs, action, reward, term, trunc)


@pytest.fixture(scope="session")
def smooth_rollouts():
    """smooth_rollouts(root, episodes=3, T=40): rollouts a tiny pipeline can train on (see write_smooth_rollouts)."""
    return write_smooth_rollouts


ROOT = Path(__file__).resolve().parents[1]


def run_cmd(cmd, env, timeout=600):
    """Run cmd to the end; returns a CompletedProcess with its text output. Output goes to files,
    not pipes, and the command runs in its own process group: a grandchild that outlived it cannot
    hold a pipe open and hang the test, and a command that hangs is killed with all it started."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            err.write(f"\n[killed after {timeout} s]")
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read())


def run_script(script, data_dir, *extra, check=True):
    """Run a numbered stage script with the tiny preset, seed 0 and 2 workers on `data_dir`."""
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable,
        str(ROOT / script),
        "--preset",
        "tiny",
        "--data-dir",
        str(data_dir),
        "--seed",
        "0",
        "--workers",
        "2",
        *extra,
    ]
    p = run_cmd(cmd, env)
    if check and p.returncode != 0:
        raise AssertionError(f"{script} failed ({p.returncode}):\n{p.stdout}\n{p.stderr[-4000:]}")
    return p


class Scripts:
    """The five numbered scripts in order (`names`), and runners that leave nothing behind."""

    root = ROOT

    def __init__(self):
        from worldmodels.io.artifacts import SCRIPTS as STAGE_SCRIPTS

        self.names = list(STAGE_SCRIPTS.values())

    run = staticmethod(run_script)
    run_cmd = staticmethod(run_cmd)


@pytest.fixture(scope="session")
def scripts():
    """scripts.names (the five stage scripts), scripts.run(script, data_dir, *flags, check=True) on the
    tiny preset, scripts.run_cmd(cmd, env, timeout) for any command (own process group, output to files)."""
    return Scripts()


def make_tiny_run(root: Path, z_size: int = 8, rnn_size: int = 16) -> Path:
    """A complete tiny CarRacing run made in-process by the real stage functions on smooth fake
    frames (stages 2-4), with C trained by one CMA-ES generation in the real env (stage 5, one worker)."""
    from worldmodels.config import Run, make_stage_config
    from worldmodels.stages.encode import encode_rollouts
    from worldmodels.stages.train_controller import train_controller
    from worldmodels.stages.train_rnn import train_rnn
    from worldmodels.stages.train_vae import train_vae

    write_smooth_rollouts(root, episodes=4, T=40)
    run = Run(env="carracing", preset="tiny", data_dir=root, seed=0, workers=1)
    as_typed = ("--preset", "tiny", "--data-dir", str(root), "--epochs", "1", "--z-size", str(z_size))
    vision = make_stage_config("vision", "carracing", "tiny", {"epochs": 1, "z_size": z_size})
    train_vae(Run("carracing", "tiny", root, 0, 1, argv=as_typed), vision)  # as if typed: its command is recorded
    encode_rollouts(run, make_stage_config("encode", "carracing", "tiny"))
    train_rnn(run, make_stage_config("memory", "carracing", "tiny", {"steps": 10, "rnn_size": rnn_size}))
    overrides = {"generations": 1, "eval_episodes": 1, "eval_max_steps": 20, "max_steps": 20, "eval_every": 0}
    train_controller(run, make_stage_config("controller", "carracing", "tiny", overrides))
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A complete tiny run (make_tiny_run, z 8, LSTM 16). Tests copy it before changing anything
    (see `run_copy`)."""
    return make_tiny_run(tmp_path_factory.mktemp("tiny_run") / "carracing")


@pytest.fixture(scope="session")
def other_tiny_run(tmp_path_factory):
    """Another complete tiny run with other sizes (z 4, LSTM 8): its files are 'from another run'."""
    return make_tiny_run(tmp_path_factory.mktemp("other_run") / "carracing", z_size=4, rnn_size=8)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run (the same path layout: <tmp>/carracing)."""
    import shutil

    dst = tmp_path / "carracing"
    shutil.copytree(tiny_run, dst, symlinks=True)
    return dst


def pytest_runtest_setup(item):
    """Processes started during a test carry its id, so a leftover names the test that started it."""
    os.environ["WORLDMODELS_TEST_NODE"] = item.nodeid


def _started_during(d: Path) -> str:
    for var in (d / "environ").read_bytes().split(b"\0"):
        if var.startswith(b"WORLDMODELS_TEST_NODE="):
            return var.split(b"=", 1)[1].decode(errors="replace")
    return "?"


def processes_started_by_suite() -> list[tuple[int, str]]:
    """(pid, command line) of every live process (not a zombie) other than this one that inherited
    this session's marker."""
    mark = f"{SESSION_VAR}={os.environ[SESSION_VAR]}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if mark not in (d / "environ").read_bytes().split(b"\0"):
                continue
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cmd = f"[started during {_started_during(d)}] {cmd}"
        except OSError:
            continue
        if state != "Z":
            found.append((int(d.name), cmd))
    return found


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a process the suite started is still alive (after a grace period), then kill it."""
    from multiprocessing import resource_tracker

    resource_tracker._resource_tracker._stop()  # this process's own tracker ends with it anyway
    deadline = time.time() + 10
    left = processes_started_by_suite()
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = processes_started_by_suite()
    if not left:
        return
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    lines = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in left)
    session.config.pluginmanager.get_plugin("terminalreporter").write_line(
        f"\nFAILED: {len(left)} process(es) started by the test suite outlived it (now killed):\n{lines}", red=True
    )
    session.exitstatus = 1
