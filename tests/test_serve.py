"""`worldmodels serve`: the dream and the real game in the browser (issue 21).

Fast tests drive `World` directly (the shipped agents, numpy only); the slow ones start the real
server on a free localhost port and talk to it over its WebSocket, then through headless Chromium
(Debian's `chromium`, driven by playwright)."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from worldmodels.tools.serve import World, keyboard_action

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = {"carracing": ROOT / "pretrained" / "carracing-laptop", "doom": ROOT / "pretrained" / "doom-laptop"}


@pytest.fixture(scope="module", params=["carracing", "doom"])
def world(request):
    w = World(BUNDLES[request.param], request.param)
    yield w
    w.close()


def run_steps(world, n, keys=frozenset()):
    for _ in range(n):
        world.step(set(keys))


def test_the_dream_plays_from_the_keyboard(world):
    world.agent_drives, world.temperature = False, 1.0
    world.set_view("dream")
    world.seed = 100
    world.restart()
    first = world.frame.copy()
    run_steps(world, 15, {"ArrowLeft"})
    left = world.frame.copy()
    world.seed = 100
    world.restart()
    assert np.array_equal(world.frame, first)  # the same start
    run_steps(world, 15, {"ArrowRight"})
    assert world.frame.shape == (64, 64, 3) and not np.array_equal(world.frame, first)  # frames change
    assert not np.array_equal(world.frame, left)  # the keys steer the dream
    assert world.steps == 15 and 0.0 <= world.state()["p_done"] <= 1.0


def test_the_agent_drives_and_the_temperature_applies(world):
    world.set_view("dream")
    keys = world.handle(json.dumps({"agent": True, "temperature": 5.0}), set())
    assert world.agent_drives and world.temperature == 2.0 and keys == set()  # clipped to the slider's range
    world.restart()
    run_steps(world, 10)
    assert world.dream.temperature == 2.0 and world.steps == 10
    z = world.z
    assert np.array_equal(world.controller_action(z, world.info["h"], world.info["c"]).shape, (world.spec.action_dim,))


def test_the_real_game_shows_v_beside_it(world):
    world.handle(json.dumps({"view": "real", "agent": False}), set())
    assert world.view == "real" and world.frame.shape == (64, 128, 3)
    run_steps(world, 5, {"ArrowUp"})
    assert world.steps == 5
    world.handle(json.dumps({"restart": True}), set())
    assert world.steps == 0 and world.score == 0.0
    world.set_view("dream")


def test_bad_messages_are_logged_and_change_nothing(world, caplog):
    before = world.state()
    for bad in (
        "not json",
        "[1, 2]",
        '{"keys": ["Escape"]}',
        '{"temperature": "hot"}',
        '{"view": "moon"}',
        '{"agent": 1}',
    ):
        assert world.handle(bad, {"ArrowUp"}) == {"ArrowUp"}
    assert world.state() == before
    assert caplog.text.count("ignored a message") == 6


def test_keyboard_actions_are_the_actions_m_was_trained_on():
    assert keyboard_action("doom", {"ArrowLeft"}).tolist() == [-1.0]
    assert keyboard_action("doom", set()).tolist() == [0.0]
    assert keyboard_action("carracing", {"ArrowRight", "ArrowUp"}).tolist() == [1.0, 1.0, 0.0]
    assert keyboard_action("carracing", {"ArrowDown"}).tolist() == pytest.approx([0.0, 0.0, 0.8])
    assert keyboard_action("gym:ALE/Pong-v5", set()).tolist() == [1, 0, 0, 0, 0, 0]  # a gym env: one-hot
    assert keyboard_action("gym:ALE/Pong-v5", {"ArrowLeft"}).tolist() == [0, 0, 0, 1, 0, 0]


def test_a_run_without_m_is_refused_with_the_stages_message(tmp_path, capsys):
    from worldmodels.tools.serve import main

    run = tmp_path / "run"
    shutil.copytree(BUNDLES["doom"], run)
    shutil.rmtree(run / "memory")
    assert main(["--env", "doom", "--data-dir", str(run)]) == 1
    assert "04_train_rnn.py" in capsys.readouterr().err


def test_the_server_imports_no_tensorflow():
    code = (
        "import sys; from pathlib import Path; from worldmodels.tools.serve import World, create_app, png; "
        f"w = World(Path({str(BUNDLES['doom'])!r}), 'doom'); w.step(set()); png(w.frame); create_app(w); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.stdout.split() == ["False", "False"], p.stderr[-2000:]


# -- the real server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(env: str):
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "worldmodels.serve",
        "--env",
        env,
        "--data-dir",
        str(BUNDLES[env]),
        "--port",
        str(port),
    ]
    envvars = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    p = subprocess.Popen(cmd, cwd=ROOT, env=envvars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if p.poll() is not None:
                raise AssertionError(f"the server exited: {p.stdout.read()}")
            time.sleep(0.2)
        else:
            raise AssertionError("the server did not listen within 60 s")
        yield port, p
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def receive_state(ws, timeout=10.0) -> tuple[bytes, dict]:
    """The next (frame PNG, state) pair the server sends."""
    frame = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = ws.recv(timeout=timeout)
        if isinstance(msg, bytes):
            frame = msg
        elif frame is not None:
            return frame, json.loads(msg)
    raise AssertionError("no frame and state from the server")


@pytest.mark.slow
def test_the_websocket_streams_frames_and_survives_bad_messages():
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with server("doom") as (port, proc), connect(f"ws://127.0.0.1:{port}/ws") as ws:
        frame, state = receive_state(ws)
        assert frame.startswith(b"\x89PNG") and state["env"] == "doom" and state["view"] == "dream"
        ws.send("not json at all")
        ws.send(json.dumps({"temperature": 1.7}))
        for _ in range(30):
            _, state = receive_state(ws)
            if state["temperature"] == 1.7:
                break
        assert state["temperature"] == 1.7 and state["steps"] > 0
        with connect(f"ws://127.0.0.1:{port}/ws") as second:  # one user at a time
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    second.recv(timeout=10)
            assert closed.value.rcvd.code == 1013
        assert proc.poll() is None  # still serving
        receive_state(ws)


@pytest.mark.slow
def test_the_page_in_a_real_browser(tmp_path):
    """Headless Chromium opens the page, presses keys, moves the slider, hands over to the agent."""
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):  # CI runs make test as root, which installs it: missing there is a failure
            pytest.fail("chromium is missing on CI: `make browser` should have installed it")
        pytest.skip("Debian's chromium is not installed (make test installs it as root: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync"]
    with server("carracing") as (port, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("Number(document.getElementById('frame').dataset.frames || 0) > 5")
            first = page.locator("#frame").get_attribute("src")
            page.keyboard.down("ArrowUp")
            page.keyboard.down("ArrowLeft")
            page.wait_for_function("Number(document.getElementById('steps').textContent) > 20")
            page.keyboard.up("ArrowLeft")
            page.keyboard.up("ArrowUp")
            assert page.locator("#frame").get_attribute("src") != first  # frames change
            assert page.locator("#score").text_content() != "0"  # the score updates
            page.locator("#temperature").fill("1.6")  # the slider reaches the server
            page.wait_for_function("document.getElementById('temperature').dataset.server === '1.6'")
            # the real game with nobody at the keys: the car stands still, losing 0.1 a step ...
            page.click("#real")
            page.wait_for_function("document.getElementById('real').classList.contains('on')")
            page.wait_for_function("Number(document.getElementById('steps').textContent) > 100")
            idle = float(page.locator("#score").text_content())
            # ... and with the agent driving, it gains track tiles without a key pressed
            page.click("#agent")
            page.wait_for_function("document.getElementById('agent').textContent.endsWith('on')")
            page.click("#restart")
            page.wait_for_function("Number(document.getElementById('steps').textContent) < 30")
            page.wait_for_function("Number(document.getElementById('steps').textContent) > 100")
            driven = float(page.locator("#score").text_content())
            assert driven > idle + 10  # tiles of about 3.4 points each, which a standing car does not reach
            page.screenshot(path=os.environ.get("SERVE_SCREENSHOT", str(tmp_path / "serve.png")))
        finally:
            browser.close()
