"""M: the MDN-RNN (paper, appendix A.2). An LSTM reads [z_t, a_t]; heads give a mixture of
Gaussians over z_{t+1} (one K-component mixture per latent dimension, as in the paper's code),
the reward r_t and the probability that the step terminated the episode.

Loss = NLL(z_{t+1}) averaged over steps and latent dimensions
     + reward_weight * MSE(r_t) + done_weight * weighted BCE(terminated_t)
The done term weights terminated=1 steps by done_pos_weight: they are one step per episode at
most, and without the weight M learns never to end the dream.

With predict_action (the paper's procedure for harder worlds, section 5: M models
P(x_{t+1}, r_{t+1}, a_{t+1}, d_{t+1} | x_t, a_t, h_t)), an extra head predicts the next action a_{t+1}
from h_{t+1}, and the loss adds action_weight * MSE(a_{t+1}) over the steps whose next action exists.
The default weight 1 puts it on the scale of the reward term (actions lie in [-1, 1]; the MSE of
a constant guess is at most about 1, against a z NLL of about 1 per dimension).

With dropout > 0 (Dropout's Dream Land, Wellmer & Kwok 2021), training drops units of the LSTM's
output before the heads; the dream can then draw a fresh mask every step (stage 5's
--dream-dropout), so a controller meets many slightly different dreams rather than one it can exploit.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def split_mixture(out: tf.Tensor, z_size: int, k: int):
    """[B,T,3*z*k] -> (logmix normalised over k, mean, logstd), each [B,T,z,k]."""
    shape = tf.concat([tf.shape(out)[:-1], [z_size, 3 * k]], 0)
    out = tf.reshape(out, shape)
    logmix, mean, logstd = tf.split(out, 3, axis=-1)
    logmix = logmix - tf.reduce_logsumexp(logmix, axis=-1, keepdims=True)
    return logmix, mean, logstd


def mdn_nll(target: tf.Tensor, logmix: tf.Tensor, mean: tf.Tensor, logstd: tf.Tensor) -> tf.Tensor:
    """-log p(target) per step and dimension: target [B,T,z], mixture params [B,T,z,k] -> [B,T,z]."""
    y = target[..., None]
    log_normal = -0.5 * tf.square((y - mean) / tf.exp(logstd)) - logstd - LOG_SQRT_2PI
    return -tf.reduce_logsumexp(logmix + log_normal, axis=-1)


@keras.saving.register_keras_serializable(package="worldmodels")
class MDNRNN(keras.Model):
    """Inputs [B,T,z+a] -> (mixture [B,T,3*z*k], reward [B,T], done logit [B,T], (h, c, h_seq))."""

    def __init__(
        self,
        z_size: int = 32,
        action_dim: int = 3,
        rnn_size: int = 256,
        num_mixtures: int = 5,
        reward_weight: float = 1.0,
        done_weight: float = 1.0,
        done_pos_weight: float = 10.0,
        predict_action: bool = False,
        action_weight: float = 1.0,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.predict_action, self.action_weight, self.dropout = predict_action, action_weight, dropout
        self.z_size, self.action_dim = z_size, action_dim
        self.rnn_size, self.num_mixtures = rnn_size, num_mixtures
        self.reward_weight, self.done_weight, self.done_pos_weight = reward_weight, done_weight, done_pos_weight
        self.lstm = keras.layers.LSTM(rnn_size, return_sequences=True, return_state=True, name="lstm")
        self.mdn = keras.layers.Dense(3 * z_size * num_mixtures, name="mdn")
        self.reward_head = keras.layers.Dense(1, name="reward")
        self.done_head = keras.layers.Dense(1, name="done")
        self.action_head = keras.layers.Dense(action_dim, name="next_action") if predict_action else None
        self.seed_gen = keras.random.SeedGenerator(0)
        names = ("loss", "z_nll", "reward_mse", "done_bce") + (("action_mse",) if predict_action else ())
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    def get_config(self):
        return {
            "z_size": self.z_size,
            "action_dim": self.action_dim,
            "rnn_size": self.rnn_size,
            "num_mixtures": self.num_mixtures,
            "reward_weight": self.reward_weight,
            "done_weight": self.done_weight,
            "done_pos_weight": self.done_pos_weight,
            "predict_action": self.predict_action,
            "action_weight": self.action_weight,
            "dropout": self.dropout,
            **super().get_config(),
        }

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, initial_state=None, training=False):
        h_seq, h, c = self.lstm(x, initial_state=initial_state, training=training)
        if self.action_head is not None and not self.action_head.built:
            self.action_head(h_seq)  # create its weights with the others
        if training and self.dropout:
            # On what the heads read only (the recurrence keeps the whole state), drawn from the model's
            # seed generator, which training reseeds every step: a resumed run draws the same masks.
            h_seq = keras.random.dropout(h_seq, self.dropout, seed=self.seed_gen)
        return self.mdn(h_seq), self.reward_head(h_seq)[..., 0], self.done_head(h_seq)[..., 0], (h, c, h_seq)

    def compute_losses(self, batch, training=True):
        """batch: mu, logvar [B,T+1,z], action [B,T,a], reward [B,T], terminated [B,T], mask [B,T] (1 =
        a real step), zmask [B,T] (1 = z_{t+1} exists). z is sampled from (mu, logvar) per batch."""
        mu, logvar = batch["mu"], batch["logvar"]
        eps = keras.random.normal(tf.shape(mu), seed=self.seed_gen)
        z = mu + tf.exp(0.5 * logvar) * eps if training else mu
        x = tf.concat([z[:, :-1], batch["action"]], axis=-1)
        mix, reward, done_logit, (_, _, h_seq) = self(x, training=training)
        mix, reward, done_logit = (tf.cast(t, tf.float32) for t in (mix, reward, done_logit))  # float32 losses
        logmix, mean, logstd = split_mixture(mix, self.z_size, self.num_mixtures)
        nll = tf.reduce_mean(mdn_nll(z[:, 1:], logmix, mean, logstd), axis=-1)
        zmask, mask = batch["zmask"], batch["mask"]
        z_nll = tf.reduce_sum(nll * zmask) / tf.maximum(tf.reduce_sum(zmask), 1.0)
        reward_mse = tf.reduce_sum(tf.square(reward - batch["reward"]) * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        done = batch["terminated"]
        bce = tf.nn.weighted_cross_entropy_with_logits(done, done_logit, self.done_pos_weight)
        done_bce = tf.reduce_sum(bce * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        loss = z_nll + self.reward_weight * reward_mse + self.done_weight * done_bce
        out = {"loss": loss, "z_nll": z_nll, "reward_mse": reward_mse, "done_bce": done_bce}
        if self.action_head is not None:
            # h_{t+1} predicts a_{t+1}: step t's prediction is scored against action t+1 of the window,
            # where it exists (amask: the window and the episode go on).
            predicted = tf.cast(self.action_head(h_seq), tf.float32)
            err = tf.reduce_mean(tf.square(predicted[:, :-1] - batch["action"][:, 1:]), axis=-1)
            amask = mask[:, 1:]
            out["action_mse"] = tf.reduce_sum(err * amask) / tf.maximum(tf.reduce_sum(amask), 1.0)
            out["loss"] = loss + self.action_weight * out["action_mse"]
        return out

    def _update(self, losses):
        for k, v in losses.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}

    def train_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses = self.compute_losses(batch, training=True)
            scaled = self.optimizer.scale_loss(losses["loss"])  # the loss itself unless mixed precision scales it
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._update(losses)

    def test_step(self, data):
        batch, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update(self.compute_losses(batch, training=False))


def build_mdnrnn(
    z_size: int, action_dim: int, rnn_size: int, num_mixtures: int, mixed_precision: bool = False, **weights
) -> MDNRNN:
    """An MDNRNN with its weights created; float16 compute with float32 weights when `mixed_precision`
    (worldmodels.models.precision)."""
    from worldmodels.models.precision import dtype_policy

    with dtype_policy(mixed_precision):
        m = MDNRNN(z_size, action_dim, rnn_size, num_mixtures, **weights)
    m(tf.zeros((1, 1, z_size + action_dim)))
    return m


def export_rnn(m: MDNRNN) -> dict:
    """LSTM and head weights as numpy arrays for worldmodels.models.numpy_agent (gate order i, f, c, o)."""
    kernel, recurrent, bias = (np.asarray(w) for w in m.lstm.cell.weights)
    mdn_w, mdn_b = (np.asarray(w) for w in m.mdn.weights)
    r_w, r_b = (np.asarray(w) for w in m.reward_head.weights)
    d_w, d_b = (np.asarray(w) for w in m.done_head.weights)
    return {
        "lstm_kernel": kernel,
        "lstm_recurrent": recurrent,
        "lstm_bias": bias,
        "mdn_w": mdn_w,
        "mdn_b": mdn_b,
        "reward_w": r_w,
        "reward_b": r_b,
        "done_w": d_w,
        "done_b": d_b,
        "num_mixtures": np.int64(m.num_mixtures),
        **(
            dict(zip(("action_w", "action_b"), (np.asarray(w) for w in m.action_head.weights)))
            if m.action_head is not None
            else {}
        ),
    }
