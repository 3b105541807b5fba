"""Vector rollouts: a worker steps K episodes in lockstep with one agent call per step, and every
episode's result is the same whatever K, the other episodes in the batch, or the worker count."""

from pathlib import Path

import numpy as np
import pytest

from worldmodels.envs.carracing import map_actions
from worldmodels.models import controller as ctrl
from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN, one_blas_thread
from worldmodels.runtime.rollout import batch_indices, evaluate_batch, init_worker

Z, UNITS, MIX = 8, 16, 3


def random_agent_parts(rng) -> tuple[NumpyEncoder, NumpyMDNRNN]:
    """V's encoder and M with random weights of the real layouts (64x64 frames, z 8, LSTM 16)."""
    enc, chans = {}, [3, 32, 64, 128, 256]
    for i in range(4):
        enc[f"conv{i}_w"] = rng.normal(0, 0.1, (4, 4, chans[i], chans[i + 1]))
        enc[f"conv{i}_b"] = rng.normal(0, 0.1, chans[i + 1])
    for head in ("mu", "logvar"):
        enc[f"{head}_w"] = rng.normal(0, 0.05, (1024, Z))
        enc[f"{head}_b"] = rng.normal(0, 0.1, Z)
    rnn = {
        "lstm_kernel": rng.normal(0, 0.3, (Z + 3, 4 * UNITS)),
        "lstm_recurrent": rng.normal(0, 0.3, (UNITS, 4 * UNITS)),
        "lstm_bias": rng.normal(0, 0.1, 4 * UNITS),
        "mdn_w": rng.normal(0, 0.3, (UNITS, 3 * Z * MIX)),
        "mdn_b": rng.normal(0, 0.1, 3 * Z * MIX),
        "reward_w": rng.normal(0, 0.3, (UNITS, 1)),
        "reward_b": np.zeros(1),
        "done_w": rng.normal(0, 0.3, (UNITS, 1)),
        "done_b": np.zeros(1),
        "num_mixtures": np.array(MIX),
    }
    return NumpyEncoder(enc), NumpyMDNRNN(rnn)


def test_each_row_of_a_batch_is_bit_for_bit_a_batch_of_one(rng):
    """Five episodes stepped together (own controllers, exploration in some rows, M's surprise
    tracked, rows leaving and coming back) give exactly what five agents of one row give."""
    encoder, rnn = random_agent_parts(rng)
    n = ctrl.param_count(Z, UNITS, 3)
    params = rng.normal(0, 0.5, (5, n)).astype(np.float32)
    together = Agent(encoder, rnn, params, "zh", map_actions, 3)
    together.track_surprise = True
    alone = [Agent(encoder, rnn, p, "zh", map_actions, 3) for p in params]
    for a in alone:
        a.track_surprise = True
    with one_blas_thread():
        together.reset(5)
        for step in range(12):
            rows = np.array([0, 2, 3]) if step % 4 == 3 else np.arange(5)  # rows 1 and 4 wait now and then
            frames = rng.integers(0, 256, (len(rows), 64, 64, 3), dtype=np.uint8)
            explore = rng.uniform(size=len(rows)) < 0.3
            random = rng.uniform(-1, 1, (len(rows), 3)).astype(np.float32)
            got = together.act(frames, random, explore, rows)
            for r, i in enumerate(rows):
                want = alone[i].act(frames[r : r + 1], random[r : r + 1] if explore[r] else None)
                np.testing.assert_array_equal(got[r], want[0])
                np.testing.assert_array_equal(together.surprise[r], alone[i].surprise[0])
                np.testing.assert_array_equal(together.state[0][i], alone[i].state[0][0])
                np.testing.assert_array_equal(together.state[1][i], alone[i].state[1][0])


def test_batches_hold_every_task_once_dealt_out_in_turn():
    assert batch_indices(23, 1, 2) == [[i] for i in range(23)]  # K = 1: one episode per worker at a time
    groups = batch_indices(48, 8, 2)  # a laptop generation: 16 candidates x 3 trials, 2 workers
    assert len(groups) == 8 and all(len(g) == 6 for g in groups)  # four batches per worker
    assert groups[0] == [0, 8, 16, 24, 32, 40]  # six candidates' episodes, not two candidates' six
    assert sorted(i for g in groups for i in g) == list(range(48))
    assert len(batch_indices(200, 8, 2)) == 25 and len(batch_indices(3, 8, 2)) == 3


def test_a_task_scores_the_same_with_any_batch_size(tiny_run):
    """Episodes of several controllers, seeds, patience and curiosity settings in the real env: one
    at a time, three at a time and all at once, results equal to the last bit."""
    init_worker("carracing", str(tiny_run / "vision"), str(tiny_run / "memory"), "zh", True)
    n = ctrl.param_count(8, 16, 3)
    rng = np.random.default_rng(3)
    tasks = [
        (rng.normal(0, 0.5, n).astype(np.float32), 10 + i, 60, 15 if i % 2 else 0, 0.1 if i % 3 == 0 else 0.0)
        for i in range(7)
    ]
    one = [evaluate_batch((1, [t]))[0] for t in tasks]
    assert evaluate_batch((3, tasks)) == one
    assert evaluate_batch((8, tasks)) == one
    assert any(steps < 60 for _, steps in one)  # patience stopped some episodes early


def test_collected_episodes_are_the_same_with_any_batch_size(tiny_run, tmp_path):
    """Stage 1 with a trained agent (--policy controller, exploration on): the files of K = 1 and K = 3."""
    from worldmodels.config import Run, make_stage_config
    from worldmodels.stages.collect import generate_data

    overrides = {"episodes": 4, "max_steps": 30, "policy": "controller", "agent_dir": str(tiny_run), "explore": 0.3}
    cfg = make_stage_config("collect", "carracing", "tiny", overrides)
    runs = {k: Run("carracing", "tiny", tmp_path / f"k{k}", 0, 1, envs_per_worker=k) for k in (1, 3)}
    dirs = {k: generate_data(run, cfg) for k, run in runs.items()}
    names = sorted(f.name for f in dirs[1].glob("*.npz"))
    assert len(names) == 4 and names == sorted(f.name for f in dirs[3].glob("*.npz"))
    for name in names:
        with np.load(dirs[1] / name) as a, np.load(dirs[3] / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")


PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


class _Discard:
    def append(self, frames):
        pass


@pytest.mark.slow  # full episodes of the shipped agents, in worker processes, on Ray and in play
@pytest.mark.parametrize(
    "bundle, env, fast, max_steps",
    [("carracing-laptop", "carracing", True, 1000), ("doom-laptop", "doom", False, 2100)],
)
def test_an_episode_is_the_same_whatever_runs_it(bundle, env, fast, max_steps):
    """Four held-out seeds: 1 worker one episode at a time, 2 workers 8 at a time, a local Ray
    instance 8 at a time, and `play` (which films them): the same returns, and on the first two the
    shipped eval.json's."""
    import json

    from worldmodels.tools.evaluate import evaluate
    from worldmodels.tools.play import play_real

    recorded = json.loads((PRETRAINED / bundle / "controller" / "eval.json").read_text())
    first = recorded["seeds"][0]
    seeds = list(range(first, first + 4))

    def scores(workers, k, ray=None):
        return evaluate(env, PRETRAINED / bundle, 4, first, workers, "agent", fast, max_steps, ray, k)["scores"]

    one = scores(1, 1)
    assert one[:2] == recorded["real"]["scores"][:2]
    assert scores(2, 8) == one
    assert scores(1, 8) == one
    assert scores(2, 8, "local") == one
    blank = lambda mu: np.zeros((len(mu), 64, 64, 3), np.uint8)  # noqa: E731
    assert play_real(PRETRAINED / bundle, env, seeds, max_steps, fast, blank, _Discard()) == one
