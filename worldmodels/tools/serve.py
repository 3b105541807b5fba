"""Step into the dream: play and inspect a trained world model in the browser.

Example:  python -m worldmodels.serve --env doom --data-dir pretrained/doom-laptop
          python -m worldmodels.serve --env carracing --data-dir pretrained/carracing-laptop --port 8800
Reads:    <data-dir>/vision, memory, controller (a run or a shipped bundle)
Serves:   http://127.0.0.1:PORT/ (one port, localhost unless --host says otherwise)

The page shows M's dream decoded by V, live and scaled up, and plays it from the keyboard (CarRacing:
arrows steer, up for gas, down to brake; Doom: left and right), or hands control to the trained
controller and back. A slider sets the dream's temperature for the next step; the page shows the
running reward (steps survived on Doom) and M's probability that the episode ends now. "Real game"
plays the real environment with the same controls, the frame beside V's reconstruction of it.

Frames and key presses travel over one WebSocket (/ws): the page sends JSON ({"keys": [...]},
{"agent": true}, {"temperature": 1.3}, {"view": "real"}, {"restart": true}); the server answers each
step with the frame (PNG) and the state (JSON). A message it cannot read is logged and ignored. The
server is numpy only (no TensorFlow), one dream step per frame, one user at a time.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from worldmodels.cli import build_parser as build_cli_parser
from worldmodels.cli import parse_tool, report_errors
from worldmodels.models import controller as ctrl
from worldmodels.models.memory.calibration import done_probability

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parents[1] / "static" / "serve"
VIEWS = ("dream", "real")
TEMPERATURE_RANGE = (0.1, 2.0)
KEYS = {"ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"}


GYM_KEYS = ("ArrowUp", "ArrowRight", "ArrowLeft", "ArrowDown")
"""A gym:<id> env with Discrete actions: these keys take actions 1-4 (Atari's minimal sets: FIRE or UP,
RIGHT, LEFT, DOWN ...), no key action 0; a Box env's keys do nothing (let the agent drive)."""


def keyboard_action(env: str, keys: set[str], action_dim: int | None = None) -> np.ndarray:
    """The env action the held keys mean (the action M was trained on: CarRacing [steer, gas, brake],
    Doom [-1 left, 0 stay, 1 right], a gym env's one-hot or Box action)."""
    steer = float("ArrowRight" in keys) - float("ArrowLeft" in keys)
    if env == "doom":
        return np.array([steer], np.float32)
    if env.startswith("gym:"):
        from worldmodels.envs.gym_env import spaces_of

        discrete, n, bounds = spaces_of(env)
        if not discrete:
            return np.clip(np.zeros(n, np.float32), bounds[0], bounds[1])
        held = [i + 1 for i, k in enumerate(GYM_KEYS) if k in keys and i + 1 < n]
        return np.eye(n, dtype=np.float32)[held[0] if held else 0]
    return np.array([steer, float("ArrowUp" in keys), 0.8 * float("ArrowDown" in keys)], np.float32)


def png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class World:
    """One user's world model: its dream and the real game, stepped a frame at a time (numpy only)."""

    def __init__(self, model_dir: Path, env: str, fast: bool = True, seed: int = 0):
        from worldmodels.envs import make_env
        from worldmodels.envs.registry import get_spec
        from worldmodels.models.loading import load_agent, load_agent_weights, load_decoder
        from worldmodels.models.memory.calibration import memory_done_bias
        from worldmodels.models.numpy_agent import NumpyDecoder, NumpyEncoder

        weights = load_agent_weights(model_dir, env)  # a run without V, M or C is refused here, as the stages say
        self.env, self.spec = env, get_spec(env)
        self.decode = NumpyDecoder(load_decoder(SimpleNamespace(data_dir=Path(model_dir), env=env), weights["vision"]))
        self.encode = NumpyEncoder(weights["encoder"])
        self.agent = load_agent(model_dir, env, weights)  # V, M and C for the real game
        c_cfg = weights["controller"]
        self.inputs = c_cfg["inputs"]
        n_in = ctrl.input_size(weights["vision"]["z_size"], weights["memory"]["rnn_size"], self.inputs)
        self.W, self.b = ctrl.unflatten(weights["params"], n_in, self.spec.controller_outputs)
        self.rnn_weights, self.done_bias = weights["rnn"], memory_done_bias(weights["memory"])
        self.temperature = float(c_cfg.get("temperature", 1.0))
        self.real = make_env(env, max_steps=self.spec.benchmark_steps, fast=fast)
        self.view, self.agent_drives, self.seed = "dream", False, seed
        self.restart()

    def close(self) -> None:
        self.real.close()

    def controller_action(self, z: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
        x = ctrl.controller_input(z[None], h[None], c[None], self.inputs)
        return self.spec.map_actions(x @ self.W + self.b)[0].astype(np.float32)

    def restart(self) -> None:
        """A new episode of the current view (the dream starts from V's code of a real first frame)."""
        from worldmodels.models.dream import DreamEnv

        self.seed += 1
        obs, _ = self.real.reset(seed=self.seed)
        self.agent.reset(1)
        self.obs, self.score, self.steps, self.done, self.p_done = obs, 0.0, 0, False, 0.0
        if self.view == "dream":
            mu, logvar = self.encode(obs[None])
            self.dream = DreamEnv(
                self.rnn_weights, mu, logvar, self.spec.action_dim, self.temperature,
                self.spec.benchmark_steps, done_bias=self.done_bias,
            )  # fmt: skip
            self.z, self.info = self.dream.reset(seed=self.seed)
            self.frame = self.decode(self.z[None])[0]
        else:
            self.frame = np.concatenate([obs, self.decode(self.encode(obs[None])[0])[0]], axis=1)

    def set_view(self, view: str) -> None:
        if view != self.view:
            self.view = view
            self.restart()

    def step(self, keys: set[str]) -> None:
        """One step of the current view with the held keys (or the controller's action)."""
        if self.done:
            return
        if self.view == "dream":
            self.dream.temperature = self.temperature  # the slider applies from this step on
            z, h, c = self.z, self.info["h"], self.info["c"]
            action = self.controller_action(z, h, c) if self.agent_drives else keyboard_action(self.env, keys)
            self.z, reward, terminated, truncated, self.info = self.dream.step(action)
            self.p_done = self.info["p_done"]
            self.frame = self.decode(self.z[None])[0]
        else:
            manual = None if self.agent_drives else keyboard_action(self.env, keys)[None]
            action = self.agent.act(self.obs[None], manual)[0]
            self.obs, reward, terminated, truncated, _ = self.real.step(action)
            seen = self.decode(self.agent.last_z)[0]  # V's view of the frame the action answered
            self.frame = np.concatenate([self.obs, seen], axis=1)
            self.p_done = float(done_probability(self.agent.rnn.heads(self.agent.state[0])[2], self.done_bias)[0])
        self.score += float(reward)
        self.steps += 1
        self.done = bool(terminated or truncated)

    def state(self) -> dict:
        return {
            "env": self.env,
            "view": self.view,
            "score": round(self.score, 2),
            "steps": self.steps,
            "p_done": round(self.p_done, 4),
            "temperature": self.temperature,
            "agent": self.agent_drives,
            "done": self.done,
        }

    def handle(self, text: str, keys: set[str]) -> set[str]:
        """Apply one message from the page; returns the held keys. A message it cannot read is logged
        and changes nothing."""
        try:
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
            if "keys" in msg:
                if not isinstance(msg["keys"], list) or not set(msg["keys"]) <= KEYS:
                    raise ValueError(f"keys must be a list of {sorted(KEYS)}")
                keys = set(msg["keys"])
            if "agent" in msg:
                if not isinstance(msg["agent"], bool):
                    raise ValueError("agent must be true or false")
                self.agent_drives = msg["agent"]
            if "temperature" in msg:
                t = msg["temperature"]
                if isinstance(t, bool) or not isinstance(t, int | float) or not np.isfinite(t):
                    raise ValueError("temperature must be a number")
                self.temperature = float(np.clip(t, *TEMPERATURE_RANGE))
            if "view" in msg:
                if msg["view"] not in VIEWS:
                    raise ValueError(f"view must be one of {VIEWS}")
                self.set_view(msg["view"])
            if msg.get("restart") is True:
                self.restart()
        except (ValueError, TypeError) as e:
            log.warning("ignored a message from the page (%s): %.200s", e, text)
        return keys


def create_app(world: World, fps: float = 30.0):
    """The Starlette app: the page (static files shipped in the package) and the /ws WebSocket."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocketDisconnect

    busy = asyncio.Lock()

    async def index(request):
        return FileResponse(STATIC / "index.html")

    async def play(websocket):
        await websocket.accept()
        if busy.locked():
            await websocket.close(code=1013, reason="one user at a time: another page is connected")
            return
        async with busy:
            keys: set[str] = set()
            world.restart()

            async def read():
                nonlocal keys
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    if message.get("text") is None:
                        log.warning("ignored a binary message from the page")
                        continue
                    keys = world.handle(message["text"], keys)

            async def run():
                period = 1.0 / fps
                while True:
                    t0 = time.perf_counter()
                    world.step(keys)
                    await websocket.send_bytes(png(world.frame))
                    await websocket.send_text(json.dumps(world.state()))
                    await asyncio.sleep(max(0.0, period - (time.perf_counter() - t0)))

            tasks = [asyncio.create_task(read()), asyncio.create_task(run())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except WebSocketDisconnect:
                pass
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    return Starlette(
        routes=[
            Route("/", index),
            WebSocketRoute("/ws", play),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )


def build_parser():
    def extra(p):
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: localhost only)")
        p.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
        p.add_argument("--fps", type=float, default=30.0, help="dream steps per second sent to the page")

    return build_cli_parser(
        __doc__,
        run_flags=("env", "data_dir", "log_level"),
        scoring_flags=("fast_env",),
        fast_env=True,
        extra=extra,
        prog="worldmodels serve",
    )


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    run, a = parse_tool(p, argv)
    if not 0 < a.port < 65536 or not 0 < a.fps <= 120:
        p.error("--port must be in 1..65535 and --fps in (0, 120]")

    def body():
        import uvicorn

        world = World(run.data_dir, run.env, a.fast_env)  # refuses a run without V, M or C before binding
        try:
            print(f"serving {run.data_dir} ({run.env}) on http://{a.host}:{a.port}/ (Ctrl-C stops)", flush=True)
            uvicorn.run(create_app(world, a.fps), host=a.host, port=a.port, log_level="warning")
        finally:
            world.close()

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
