"""Calibrating M's done head: rare events (one terminated step per episode) leave its logits biased, so
after training, fed the real training episodes, M must expect as many terminations as there were.
The fitted logit offset (`done_bias` in memory/config.json) is what the dream adds to the done logit.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def done_probability(done_logit: np.ndarray, done_bias: float) -> np.ndarray:
    """The probability that the step ended the episode: sigmoid(done_logit + done_bias)."""
    return 0.5 * (np.tanh(0.5 * (np.asarray(done_logit, np.float64) + done_bias)) + 1.0)


def memory_done_bias(memory_config: dict) -> float:
    """The dream's done bias from memory/config.json: the calibrated one, else -ln(done_pos_weight)."""
    if "done_bias" in memory_config:
        return float(memory_config["done_bias"])
    return -float(np.log(memory_config["config"]["done_pos_weight"]))


def fit_done_bias(logits: np.ndarray, terminated: np.ndarray) -> float:
    """The b with sum(sigmoid(logits + b)) == sum(terminated) (the maximum-likelihood intercept),
    by bisection; NaN when there is no termination to fit."""
    target = float(np.sum(terminated))
    if target == 0:
        return float("nan")
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if done_probability(logits, mid).sum() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def teacher_forced_done_logits(rnn_weights: dict, f, episodes, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """M's done logits on the real episodes (fed their mu and actions), flat over steps, and the
    terminated flags they predict; episodes run as one padded batch per chunk."""
    from worldmodels.models.numpy_agent import NumpyMDNRNN

    rnn = NumpyMDNRNN(rnn_weights)
    starts = f["episode_starts"][:]
    logits, targets = [], []
    for i in range(0, len(episodes), chunk):
        eps = episodes[i : i + chunk]
        lens = np.array([starts[e + 1] - starts[e] for e in eps])
        seqs = [(f["mu"][starts[e] : starts[e + 1]], f["action"][starts[e] : starts[e + 1]]) for e in eps]
        state = rnn.initial_state(len(eps))
        out = np.zeros((len(eps), lens.max()), np.float64)
        for t in range(lens.max()):
            z = np.stack([mu[min(t, len(mu) - 1)] for mu, _ in seqs])
            a = np.stack([act[min(t, len(act) - 1)] for _, act in seqs])
            state = rnn.step(z, a, state)
            out[:, t] = rnn.heads(state[0])[2]
        for j, e in enumerate(eps):
            logits.append(out[j, : lens[j]])
            targets.append(f["terminated"][starts[e] : starts[e + 1]])
    return np.concatenate(logits), np.concatenate(targets).astype(bool)


def death_step_auc(logits: np.ndarray, terminated: np.ndarray) -> float:
    """How well M's done logit tells the steps that ended an episode from the others: the chance that
    a terminated step's logit is above a random other step's (ties count half); NaN without both."""
    pos, neg = np.sort(logits[terminated]), np.sort(logits[~terminated])
    if not len(pos) or not len(neg):
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def done_calibration(rnn_weights: dict, f, train_eps, val_eps, done_pos_weight: float, max_eps: int = 1000) -> dict:
    """Fit the dream's done bias on (up to max_eps of) the training episodes, so that M, fed the real
    episodes, expects as many terminations as they had; report the same count on the held-out
    episodes. Without terminations to fit (CarRacing rarely has any), the bias is -ln(pos weight)."""
    default = -float(np.log(done_pos_weight))
    fit_eps = np.asarray(train_eps)[np.linspace(0, len(train_eps) - 1, min(max_eps, len(train_eps))).astype(int)]
    logits, term = teacher_forced_done_logits(rnn_weights, f, fit_eps)
    bias = fit_done_bias(logits, term)
    if not np.isfinite(bias):
        bias = default
    out = {
        "bias": bias,
        "pos_weight_bias": default,
        "fit_episodes": len(fit_eps),
        "fit_terminations": int(term.sum()),
        "fit_expected_with_pos_weight_bias": float(done_probability(logits, default).sum()),
        "fit_expected_calibrated": float(done_probability(logits, bias).sum()),
        "fit_death_step_auc": death_step_auc(logits, term),
    }
    if len(val_eps):
        v_logits, v_term = teacher_forced_done_logits(rnn_weights, f, np.asarray(val_eps))
        out.update(
            val_episodes=len(val_eps),
            val_terminations=int(v_term.sum()),
            val_expected_with_pos_weight_bias=float(done_probability(v_logits, default).sum()),
            val_expected_calibrated=float(done_probability(v_logits, bias).sum()),
            val_death_step_auc=death_step_auc(v_logits, v_term),
        )
    log.info(
        "done calibration: bias %.3f (-ln pos weight = %.3f): %d terminations in %d training episodes, "
        "M expected %.1f before and %.1f after",
        bias,
        default,
        out["fit_terminations"],
        len(fit_eps),
        out["fit_expected_with_pos_weight_bias"],
        out["fit_expected_calibrated"],
    )
    return out
