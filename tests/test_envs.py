"""CarRacing adapters: the fast renderer's pixels equal the stock env's; exploration really drives."""

import gymnasium as gym
import numpy as np
import pytest

import worldmodels.envs  # noqa: F401 - registers worldmodels/CarRacingFast-v3
from worldmodels.envs.carracing import PursuitPolicy, RandomPolicy, make_carracing, map_actions
from worldmodels.envs.fast_carracing import ENV_ID, rotate_rad


def fixed_actions(n, seed):
    """Full throttle, hard right, hard left, hard braking, then random: 40 steps each, cycling."""
    rng = np.random.default_rng(seed)
    phases = [[0, 1, 0], [1, 0.5, 0], [-1, 0.5, 0], [0, 0, 0.8], None]
    out = []
    for t in range(n):
        p = phases[(t // 40) % len(phases)]
        out.append(p if p is not None else [rng.uniform(-1, 1), rng.uniform(), rng.uniform(0, 0.2)])
    return np.asarray(out, np.float32)


def stress_action(t: int, env, pursuit: PursuitPolicy) -> np.ndarray:
    """Drive along the track, then leave it at full throttle and brake hard on the grass, spin (full
    lock, throttle and brake at once), weave at full speed, and re-enter (the track follower takes over
    again): 50 steps per phase, cycling."""
    phase = (t // 50) % 6
    if phase in (0, 1, 4):
        return pursuit(env)
    if phase == 2:
        return np.array([1, 1, 0] if t % 50 < 30 else [0, 0, 0.9], np.float32)
    if phase == 3:
        return np.array([-1, 1, 0.5], np.float32)
    return np.array([0.3 * np.sin(t), 1, 0], np.float32)


def assert_same_episode(seed: int, steps: int | None = None) -> int:
    """Step the stock env and the fast one side by side on `seed`: every frame, reward and end flag equal."""
    envs = [gym.make("CarRacing-v3"), gym.make(ENV_ID)]
    try:
        first = [e.reset(seed=seed)[0] for e in envs]
        np.testing.assert_array_equal(first[0], first[1])
        pursuit, t, done = PursuitPolicy(np.random.default_rng(seed)), 0, False
        while not done and (steps is None or t < steps):
            action = stress_action(t, envs[0], pursuit)
            stock, fast = (e.step(action) for e in envs)
            np.testing.assert_array_equal(stock[0], fast[0], err_msg=f"seed {seed}, step {t}: other pixels")
            assert stock[1:4] == fast[1:4], f"seed {seed}, step {t}: reward or end differs"
            done, t = stock[2] or stock[3], t + 1
        return t
    finally:
        for e in envs:
            e.close()


def test_fast_env_frames_and_rewards_equal_stock():
    assert assert_same_episode(0, steps=300) == 300


def test_fast_env_without_the_compiled_raster_equals_stock(monkeypatch):
    """RASTER = False draws the road with gfxdraw's calls, one polygon at a time: same pixels."""
    from worldmodels.envs import fast_carracing

    monkeypatch.setattr(fast_carracing, "RASTER", False)
    assert assert_same_episode(0, steps=120) == 120


@pytest.mark.slow  # five whole episodes in both envs (about 30 s)
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_fast_env_equals_stock_on_whole_episodes(seed):
    assert assert_same_episode(seed) == 1000  # CarRacing-v3's time limit


def test_a_gauge_above_the_dashboard_takes_the_stock_path():
    """A wheel spinning fast enough draws its gauge above the dashboard into the picture: the fast
    renderer then flips the whole frame as the stock env does, and the pixels still agree."""
    from worldmodels.envs.fast_carracing import CarRacingFast

    envs = [gym.make("CarRacing-v3"), gym.make(ENV_ID)]
    for e in envs:
        e.reset(seed=7)
        for _ in range(60):
            e.step(np.array([0, 1, 0], np.float32))
        e.unwrapped.car.wheels[0].omega = 1000.0  # the gauge: 0.01 * omega bars, 4 of them reach the picture
    fast = envs[1].unwrapped
    assert fast._state_pixels() is None  # the frame the last step drew needs the stock path now
    frames = [e.unwrapped._render("state_pixels") for e in envs]
    np.testing.assert_array_equal(frames[0], frames[1])
    assert isinstance(fast, CarRacingFast)
    for e in envs:
        e.close()


@pytest.mark.parametrize("case", ["on_screen", "clipped", "tiny_and_degenerate"])
def test_compiled_raster_draws_what_gfxdraw_draws(case):
    """`raster.draw_polygons` against gfxdraw.aapolygon + filled_polygon, polygon by polygon, on the
    same background: polygons wholly on screen, reaching off every side (clipping), and tiny ones,
    ones with a repeated vertex and integer vertices (vertical, horizontal and diagonal edges)."""
    import pygame
    from pygame import gfxdraw

    from worldmodels.envs import raster

    rng = np.random.default_rng(["on_screen", "clipped", "tiny_and_degenerate"].index(case))
    for trial in range(12):
        surfaces = [pygame.Surface((1000, 800)) for _ in range(2)]
        background = rng.integers(0, 2**24, size=(1000, 800), dtype=np.uint32)
        for s in surfaces:
            pygame.surfarray.pixels2d(s)[:] = background  # noisy, so every blend shows
        n = int(rng.integers(5, 40))
        centres = rng.uniform(-500, 1500, (n, 1, 2)) if case == "clipped" else rng.uniform(100, 900, (n, 1, 2))
        spread = 3.0 if case == "tiny_and_degenerate" else 300.0
        polys = centres + rng.uniform(-spread, spread, (n, 4, 2))
        if case == "tiny_and_degenerate":
            polys[::2, 2] = polys[::2, 1]
            polys[1::3] = np.round(polys[1::3] * 10)
        colors = rng.integers(0, 256, (n, 3))
        for poly, color in zip(polys.tolist(), colors.tolist()):
            gfxdraw.aapolygon(surfaces[0], [tuple(p) for p in poly], color)
            gfxdraw.filled_polygon(surfaces[0], [tuple(p) for p in poly], color)
        pixels = pygame.surfarray.pixels2d(surfaces[1]).T
        packed = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
        raster.draw_polygons(pixels, raster.to_vertices(polys), packed.astype(np.int64))
        del pixels
        drawn = [pygame.surfarray.array2d(s) & 0xFFFFFF for s in surfaces]
        assert not np.array_equal(drawn[1], background & 0xFFFFFF)  # it drew something
        np.testing.assert_array_equal(drawn[0], drawn[1], err_msg=f"{case}, trial {trial}")


def test_rotate_matches_pygame_bit_for_bit(rng):
    import pygame

    pts = rng.normal(scale=300, size=(200, 2))
    for angle in [0.0, 1e-9, np.pi / 2, -np.pi, 3.3, -7.1, 2 * np.pi, 12.0]:
        ours = rotate_rad(pts, angle)
        ref = np.array([tuple(pygame.math.Vector2(tuple(p)).rotate_rad(angle)) for p in pts])
        assert np.array_equal(ours, ref), angle


def test_frames_are_64x64_uint8():
    env = make_carracing(max_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    steps = 0
    done = False
    while not done:
        obs, _, term, trunc, _ = env.step(np.zeros(3, np.float32))
        steps += 1
        done = term or trunc
    assert steps == 5


def test_map_actions_ranges(rng):
    a = map_actions(rng.normal(scale=5, size=(1000, 3)))
    assert a.shape == (1000, 3) and a.dtype == np.float32
    assert a[:, 0].min() >= -1 and a[:, 0].max() <= 1
    assert a[:, 1:].min() >= 0 and a[:, 1:].max() <= 1


def _drive(policy_cls, seed, steps=250):
    env = make_carracing(max_steps=steps)
    env.reset(seed=seed)
    policy = policy_cls(np.random.default_rng(seed))
    total = 0.0
    for _ in range(steps):
        _, r, term, trunc, _ = env.step(policy(env))
        total += r
        if term or trunc:
            break
    return total


def test_pursuit_policy_drives_along_the_track():
    # Each new tile is worth 1000/N (~3.5) points; uniform random actions barely leave the start.
    pursuit = np.mean([_drive(PursuitPolicy, s) for s in range(4)])
    random = np.mean([_drive(RandomPolicy, s) for s in range(4)])
    assert random < 10
    assert pursuit > 80


def loaded_heavy_modules(_task):
    """Runs in a worker: which of TensorFlow / Keras the worker process has imported."""
    import sys

    return sorted(m for m in ("tensorflow", "keras") if m in sys.modules)


def test_rollout_workers_run_the_agent_without_tensorflow(tmp_path):
    """Stage 5's workers (spawned) load V and M as numpy and play episodes without importing TF."""
    from worldmodels.models import controller as ctrl
    from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn
    from worldmodels.models.vae import build_vae, export_encoder
    from worldmodels.runtime.pool import TaskPool
    from worldmodels.runtime.rollout import evaluate_task, init_worker

    (tmp_path / "vision").mkdir()
    (tmp_path / "memory").mkdir()
    np.savez(tmp_path / "vision" / "encoder.npz", **export_encoder(build_vae(8, 0.5)))
    np.savez(tmp_path / "memory" / "rnn.npz", **export_rnn(build_mdnrnn(8, 3, 16, 2)))
    params = np.zeros(ctrl.param_count(8, 16, 3), np.float32)
    init = ("carracing", str(tmp_path / "vision"), str(tmp_path / "memory"), "zh", True)
    with TaskPool(2, init_worker, init) as pool:
        results = pool.map(evaluate_task, [(params, 1, 20, 0), (params, 2, 20, 0)])
        assert [steps for _, steps in results] == [20, 20]
        assert pool.map(loaded_heavy_modules, [0, 1]) == [[], []]


def test_doom_random_long_holds_actions_longer():
    """'random-long' (the doom laptop preset's exploration) holds each action 1-60 steps, 'random'
    1-10: mean run lengths near 30.5 and 5.5 before merging equal neighbours."""
    from worldmodels.envs.doom import POLICIES

    def mean_run(name):
        pol = POLICIES[name](np.random.default_rng(0))
        acts = [float(pol(None)[0]) for _ in range(20000)]
        runs = 1 + sum(a != b for a, b in zip(acts, acts[1:]))
        return len(acts) / runs, set(acts)

    short, vals_s = mean_run("random")
    long, vals_l = mean_run("random-long")
    assert vals_s == vals_l == {-1.0, 0.0, 1.0}
    # Equal neighbouring holds merge (1 in 3), so observed runs are 1.5x the mean hold.
    assert 7 < short < 9.5 and 40 < long < 52, (short, long)
