"""The dream: DreamEnv, temperature, batched population evaluation."""

import numpy as np
import pytest

from worldmodels.envs.doom import map_actions as doom_actions
from worldmodels.models import controller as ctrl
from worldmodels.models.dream import DreamEnv, dream_rollouts, sample_next_z
from worldmodels.models.numpy_agent import NumpyMDNRNN

Z, UNITS, K = 4, 8, 3


def random_rnn(rng, action_dim=1, done_bias=-2.0):
    """Numpy M weights with some structure: done logit rises with |h| so episodes end at varied times."""
    w = {
        "lstm_kernel": rng.normal(scale=0.5, size=(Z + action_dim, 4 * UNITS)),
        "lstm_recurrent": rng.normal(scale=0.5, size=(UNITS, 4 * UNITS)),
        "lstm_bias": rng.normal(scale=0.1, size=4 * UNITS),
        "mdn_w": rng.normal(scale=0.5, size=(UNITS, 3 * Z * K)),
        "mdn_b": rng.normal(scale=0.1, size=3 * Z * K),
        "reward_w": np.zeros((UNITS, 1)),
        "reward_b": np.ones(1),
        "done_w": rng.normal(scale=2.0, size=(UNITS, 1)),
        "done_b": np.full(1, done_bias),
        "num_mixtures": np.int64(K),
    }
    return {k: (v.astype(np.float32) if k != "num_mixtures" else v) for k, v in w.items()}


def test_temperature_zero_gives_the_most_likely_components_mean(rng):
    mix = rng.normal(size=(5, 3 * Z * K))
    u, eps = rng.random((5, Z)), rng.normal(size=(5, Z))
    z0 = sample_next_z(mix, Z, K, 0.0, u, eps)
    m = mix.reshape(5, Z, 3 * K)
    expect = np.take_along_axis(m[..., K : 2 * K], np.argmax(m[..., :K], -1)[..., None], -1)[..., 0]
    np.testing.assert_array_equal(z0, expect)
    # As tau -> 0, sampling converges to that point whatever the noise.
    np.testing.assert_allclose(sample_next_z(mix, Z, K, 1e-8, u, eps), expect, atol=1e-3)
    # At tau = 1 the noise matters.
    assert not np.allclose(sample_next_z(mix, Z, K, 1.0, u, eps), expect, atol=1e-3)


def test_temperature_scales_the_spread(rng):
    mix = np.zeros((20000, 3 * 1 * 1))  # one component, mean 0, logstd 0
    eps = rng.normal(size=(20000, 1))
    for tau in (0.5, 1.0, 1.3):
        z = sample_next_z(mix, 1, 1, tau, rng.random((20000, 1)), eps)
        assert z.std() == pytest.approx(np.sqrt(tau) * eps.std(), rel=1e-6)


def make_env(rng, **kw):
    weights = random_rnn(rng)
    mu = rng.normal(size=(6, Z)).astype(np.float32)
    logvar = np.full((6, Z), -2.0, np.float32)
    return DreamEnv(weights, mu, logvar, action_dim=1, **kw), weights, mu, logvar


def run_env(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, r, term, trunc, info = env.step(np.array([a], np.float32))
        out.append(obs)
        assert info["h"].shape == (UNITS,) and info["c"].shape == (UNITS,)
        if term or trunc:
            break
    return np.stack(out)


def test_dream_env_shapes_and_same_seed_same_dream(rng):
    env, *_ = make_env(rng, temperature=1.15, max_steps=30)
    obs, info = env.reset(seed=3)
    assert obs.shape == (Z,) and obs.dtype == np.float32 and env.observation_space.contains(obs)
    actions = [1.0, -1.0, 0.0] * 10
    a, b, c = run_env(env, 3, actions), run_env(env, 3, actions), run_env(env, 4, actions)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_dream_env_renders_through_a_decoder(rng):
    decode = lambda z: np.full((len(z), 64, 64, 3), 7, np.uint8)  # noqa: E731
    env, *_ = make_env(rng, decode=decode)
    env.reset(seed=0)
    assert env.render().shape == (64, 64, 3)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_batched_population_equals_one_episode_at_a_time(rng, dropout):
    """With or without dream dropout (a fresh mask per step, from the episode's own stream)."""
    env, weights, mu, logvar = make_env(rng, dropout=dropout)
    rnn = NumpyMDNRNN(weights)
    n_params = ctrl.param_count(Z, UNITS, 1, "zch")
    P = 12
    params = rng.normal(scale=0.5, size=(P, n_params)).astype(np.float32)
    seeds = [100 + i for i in range(P)]
    starts = rng.integers(0, 6, size=P)
    common = (rnn, params, "zch", 1, doom_actions, mu[starts], logvar[starts], seeds, 1.15, 200)
    total, steps = dream_rollouts(*common, dropout=dropout)
    assert len(set(steps.tolist())) > 1  # episodes end at different times: the masking is exercised
    if dropout:
        assert not np.array_equal(total, dream_rollouts(*common)[0])  # the masks change the dream
    for i in range(P):
        t1, s1 = dream_rollouts(
            rnn,
            params[i : i + 1],
            "zch",
            1,
            doom_actions,
            mu[starts[i : i + 1]],
            logvar[starts[i : i + 1]],
            seeds[i : i + 1],
            1.15,
            200,
            dropout=dropout,
        )
        assert s1[0] == steps[i]
        assert t1[0] == pytest.approx(total[i], rel=1e-6)
    # The gymnasium DreamEnv, driven by the same controller, sees the same episode.
    i = int(np.argmax(steps))
    w, b = ctrl.unflatten(params[i], ctrl.input_size(Z, UNITS, "zch"), 1)
    obs, info = env.reset(seed=seeds[i], options={"start": starts[i]})
    n, ret, done = 0, 0.0, False
    while not done and n < 200:
        x = ctrl.controller_input(obs[None], info["h"][None], info["c"][None], "zch")
        obs, r, term, trunc, info = env.step(doom_actions(x @ w + b)[0])
        ret += r
        n += 1
        done = term or trunc
    assert n == steps[i] and ret == pytest.approx(total[i], rel=1e-6)


def test_done_probability_undoes_the_positive_weight():
    from worldmodels.models.memory.calibration import done_probability

    p = np.array([0.001, 0.05, 0.3, 0.9])
    w = 10.0
    p_w = w * p / (w * p + 1 - p)  # what a BCE with positive weight w converges to
    logit = np.log(p_w / (1 - p_w))
    np.testing.assert_allclose(done_probability(logit, -np.log(w)), p, rtol=1e-9)
    np.testing.assert_allclose(done_probability(logit, 0.0), p_w, rtol=1e-9)


def test_fitted_done_bias_makes_expected_terminations_match():
    from worldmodels.models.memory.calibration import done_probability, fit_done_bias, memory_done_bias

    rng = np.random.default_rng(0)
    logits = rng.normal(-6, 2, 5000)
    terminated = rng.uniform(size=5000) < done_probability(logits, 1.5)  # M too lenient by e^1.5 in odds
    b = fit_done_bias(logits, terminated)
    assert done_probability(logits, b).sum() == pytest.approx(terminated.sum(), rel=1e-6)
    assert 1.0 < b < 2.0
    assert np.isnan(fit_done_bias(logits, np.zeros(5000, bool)))
    assert memory_done_bias({"config": {"done_pos_weight": 10.0}}) == pytest.approx(-np.log(10.0))
    assert memory_done_bias({"done_bias": 0.7, "config": {"done_pos_weight": 10.0}}) == 0.7


def test_death_step_auc_is_the_chance_a_terminated_step_outranks_another():
    from worldmodels.models.memory.calibration import death_step_auc

    logits = np.array([0.0, 1.0, 2.0, 3.0, 2.0])
    terminated = np.array([False, False, False, False, True])
    assert death_step_auc(logits, terminated) == pytest.approx((2 + 0.5) / 4)  # above 0 and 1, tied with 2
    assert death_step_auc(np.arange(5.0), np.array([0, 0, 0, 0, 1], bool)) == 1.0
    assert death_step_auc(np.arange(5.0), np.array([1, 0, 0, 0, 0], bool)) == 0.0
    rng = np.random.default_rng(0)  # logits that know nothing: about a half
    assert death_step_auc(rng.normal(size=20000), rng.uniform(size=20000) < 0.01) == pytest.approx(0.5, abs=0.05)
    assert np.isnan(death_step_auc(np.arange(3.0), np.zeros(3, bool)))


def test_a_done_shift_ends_every_dream_episode_no_later(rng):
    """Stage 5's --dream-done-shift raises the done logit: the same episodes (same z noise, same
    death draws) end at the same step or sooner, and some sooner."""
    env, weights, mu, logvar = make_env(rng)
    rnn = NumpyMDNRNN(weights)
    P = 16
    params = rng.normal(scale=0.5, size=(P, ctrl.param_count(Z, UNITS, 1, "zch"))).astype(np.float32)
    starts = rng.integers(0, 6, size=P)
    common = (rnn, params, "zch", 1, doom_actions, mu[starts], logvar[starts], list(range(P)), 1.15, 300)
    _, plain = dream_rollouts(*common, done_bias=-3.0)
    _, shifted = dream_rollouts(*common, done_bias=-3.0 + 1.5)
    assert np.all(shifted <= plain) and shifted.sum() < plain.sum()
