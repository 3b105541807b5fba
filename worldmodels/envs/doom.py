"""VizDoom TakeCover for World Models (paper, section 4): frames resized to 64x64x3, one controller
output mapped to the three actions, survival reward of one per step, episodes capped at 2100 steps.

The game ships inside the `vizdoom` package (no download); its gymnasium id is VizdoomTakeCover-v1,
whose Discrete(3) actions are 0 = no-op, 1 = MOVE_LEFT, 2 = MOVE_RIGHT.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile

import gymnasium as gym
import numpy as np
from PIL import Image

GAME_ID = "VizdoomTakeCover-v1"
MAX_STEPS = 2100


def preprocess(screen: np.ndarray) -> np.ndarray:
    """uint8 [240,320,3] -> uint8 [64,64,3] (the whole screen, bilinear)."""
    return np.asarray(Image.fromarray(screen).resize((64, 64), Image.BILINEAR), dtype=np.uint8)


# The game engine is a child process of whichever process made the env. Killed with its parent (a
# worker that died, a stage killed with SIGKILL) it would live on, an orphan holding its shared
# memory, its message queues and the parent's stdout open. A small guard process, one per process
# that starts engines, learns each engine's pid through a pipe; when the pipe closes, that is when
# the parent has gone however it went, it SIGKILLs the engines still alive, removes their
# /dev/shm files and the parent's engine settings file.
_GUARD_CODE = """
import os, signal, sys
fd, ini, token, data = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), b""
while True:
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    data += chunk
pids = {int(p) for p in data.split()}
# Engines whose pid never reached us (their process died while starting them) carry the token.
for d in os.listdir("/proc"):
    try:
        if d.isdigit() and token in open("/proc/%s/environ" % d, "rb").read().split(b"\\0"):
            pids.add(int(d))
    except OSError:
        pass
for pid in pids:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\\0")
        if not args[0].endswith(b"vizdoom"):
            continue
        os.kill(pid, signal.SIGKILL)
        iid = args[args.index(b"+viz_instance_id") + 1].decode()
        for kind in ("SM", "MQCtr", "MQDoom"):
            try:
                os.unlink("/dev/shm/ViZDoom%s%s" % (kind, iid))
            except OSError:
                pass
    except (OSError, ValueError, IndexError):
        pass
try:
    os.unlink(ini)
except OSError:
    pass
"""
_guard: dict = {}  # this process's guard: {"pid": owner pid, "fd": write end, "sent": engine pids}


def _settings_file() -> str:
    return os.path.join(tempfile.gettempdir(), f"worldmodels-vizdoom-{os.getpid()}.ini")


def engine_pids() -> list[int]:
    """The running ViZDoom engines that are children of this process (Linux /proc; [] elsewhere)."""
    me, out = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for d in entries:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm, rest = stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1 and int(rest[1]) == me and comm.startswith("vizdoom"):
            out.append(int(d))
    return out


OWNER_VAR = "WORLDMODELS_DOOM_OWNER"


def _start_guard() -> None:
    """This process's guard, started before its first engine (none yet, or inherited through fork)."""
    if not os.path.isdir("/proc") or _guard.get("pid") == os.getpid():
        return
    token = f"{OWNER_VAR}={os.getpid()}-{os.urandom(4).hex()}"
    r, w = os.pipe()  # both ends close-on-exec: the engines do not inherit the write end
    subprocess.Popen(
        [sys.executable, "-c", _GUARD_CODE, str(r), _settings_file(), token],
        pass_fds=(r,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the stage's process group: it must outlive a group kill
    )
    os.close(r)
    _guard.update(pid=os.getpid(), fd=w, sent=set(), token=token)


@contextlib.contextmanager
def _engines_marked():
    """Engines started inside carry this process's guard token in their environment (the variable is
    put back as it was afterwards), so the guard can find one whose pid it was never sent."""
    if "token" not in _guard:
        yield
        return
    name, value = _guard["token"].split("=", 1)
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _guard_engines() -> None:
    """Hand this process's engine pids to its guard (started on first use)."""
    _start_guard()  # a no-op when this process has one
    if "fd" not in _guard:  # no /proc: no guard
        return
    new = [p for p in engine_pids() if p not in _guard["sent"]]
    if new:
        os.write(_guard["fd"], "".join(f"{p}\n" for p in new).encode())
        _guard["sent"].update(new)


def _release_guard() -> None:
    """When this process has no engine left, close the guard's pipe: the guard finds nothing to
    kill and exits (a later env starts a new one)."""
    if _guard.get("pid") == os.getpid() and not engine_pids():
        os.close(_guard["fd"])
        _guard.clear()


class DoomFrames(gym.Wrapper):
    """Observations uint8 [64,64,3]; actions float32 [1] in {-1, 0, 1} (left, stay, right)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._guarded = False

    def reset(self, **kwargs):
        if not self._guarded:
            _start_guard()
            with _engines_marked():
                obs, info = self.env.reset(**kwargs)  # the first reset starts the engine
        else:
            obs, info = self.env.reset(**kwargs)
        if not self._guarded:
            _guard_engines()
            self._guarded = True
        return preprocess(obs["screen"]), info

    def close(self):
        super().close()
        _release_guard()

    def step(self, action):
        a = float(np.asarray(action).reshape(-1)[0])
        discrete = 1 if a < -1 / 3 else 2 if a > 1 / 3 else 0
        obs, reward, terminated, truncated, info = self.env.step(discrete)
        return preprocess(obs["screen"]), float(reward), terminated, truncated, info


def make_doom(max_steps: int = MAX_STEPS, fast: bool = True, **kwargs) -> gym.Env:
    """TakeCover with 64x64 frames, truncated after `max_steps` steps (`fast` is for CarRacing only)."""
    from vizdoom import gymnasium_wrapper  # noqa: F401 - registers the Vizdoom ids

    env = gym.make(GAME_ID, max_episode_steps=max_steps, **kwargs)
    # The engine writes its settings file (_vizdoom.ini) at start; by default into the current
    # directory, where engines started at the same moment by parallel workers would share one file.
    # Each process gets its own, out of the user's way.
    env.unwrapped.game.set_doom_config_path(_settings_file())
    return DoomFrames(env)


def map_actions(out: np.ndarray) -> np.ndarray:
    """Controller output [...,1] -> action [...,1] in {-1, 0, 1}: tanh, then thirds (the paper's mapping)."""
    t = np.tanh(out)
    return np.where(t < -1 / 3, -1.0, np.where(t > 1 / 3, 1.0, 0.0)).astype(np.float32)


class RandomPolicy:
    """Exploration for stage 1: random actions, each held for a random number of steps (1 to
    `max_hold`, 10 by default), so the agent strafes across the room rather than jittering in place.
    'random-long' holds up to 60 steps: long runs to one side reach the walls, which short holds
    rarely do, so M also learns what happens there."""

    def __init__(self, rng: np.random.Generator, max_hold: int = 10):
        self.rng = rng
        self.max_hold = max_hold
        self.left = 0
        self.action = np.zeros(1, np.float32)

    def __call__(self, env: gym.Env) -> np.ndarray:
        if self.left <= 0:
            self.action = np.array([self.rng.integers(-1, 2)], np.float32)
            self.left = int(self.rng.integers(1, self.max_hold + 1))
        self.left -= 1
        return self.action


def long_random_policy(rng: np.random.Generator) -> RandomPolicy:
    return RandomPolicy(rng, max_hold=60)


POLICIES = {"random": RandomPolicy, "random-long": long_random_policy}
