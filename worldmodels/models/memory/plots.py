"""M's plots: a held-out episode's real frames, V's reconstructions and M's open-loop predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_predictions(vae, rollouts_dir: Path, rnn_weights: dict, path: Path, horizon: int = 10) -> None:
    """PNG: a held-out episode's real frames, V's reconstructions, and M's open-loop predictions
    (most likely component, temperature 0, fed its own predictions and the real actions), decoded by V."""
    import tensorflow as tf

    from worldmodels.io.data import load_rollout, rollout_files
    from worldmodels.io.plots import save_image_grid
    from worldmodels.models.dream import sample_next_z
    from worldmodels.models.numpy_agent import NumpyMDNRNN
    from worldmodels.models.vae import decode_uint8

    files = rollout_files(rollouts_dir)
    ep = load_rollout(files[-1])  # the last episode: held out from V and M's training
    start = min(len(ep["obs"]) // 3, max(0, len(ep["obs"]) - horizon - 1))
    frames = ep["obs"][start : start + horizon + 1]
    actions = ep["action"][start : start + horizon]
    mu, _ = vae.encode(tf.cast(frames, tf.float32) / 255.0)
    mu = mu.numpy()
    rnn = NumpyMDNRNN(rnn_weights)
    state = rnn.initial_state(1)
    z = mu[:1]
    predicted = [mu[0]]
    for t in range(len(actions)):
        state = rnn.step(z, actions[t : t + 1], state)
        mix, _, _ = rnn.heads(state[0])
        zero = np.zeros_like(z)
        z = sample_next_z(mix, z.shape[1], rnn.num_mixtures, 0.0, zero, zero).astype(np.float32)
        predicted.append(z[0])
    save_image_grid(path, [frames, decode_uint8(vae, mu), decode_uint8(vae, np.stack(predicted))])
