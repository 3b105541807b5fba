"""Numpy forward passes of the V-encoder, the M step and C, for rollout workers.

Workers never import TensorFlow: stages 2 and 4 export their weights to `encoder.npz` and
`rnn.npz`, and this module runs them. A test checks these passes equal the Keras models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from worldmodels.models import controller as ctrl

_BLAS: list = []  # the process's threadpoolctl controller, made on first use


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the agent's arithmetic on one BLAS thread. A matrix product's last bits depend on how BLAS
    splits it over threads, and an episode is chaotic: with this, an episode's result depends on the
    seed, the weights and the settings only, not on the worker count or the machine's cores."""
    from threadpoolctl import ThreadpoolController

    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    with _BLAS[0].limit(limits=1, user_api="blas"):
        yield


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def rowwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x [B,n] @ w [n,m] (or one matrix per row, [B,n,m]) -> [B,m], every row computed exactly as a
    batch of one would be.

    BLAS computes a [B,n] @ [n,m] product with a matrix-matrix kernel whose last bits differ from the
    vector-matrix kernel a single row gets, and an episode is chaotic: a stacked product ([B,1,n] @ w)
    makes numpy call the vector-matrix kernel once per row, so a row's result never depends on B (how
    many episodes a worker steps together)."""
    return np.matmul(x[:, None, :], w)[:, 0, :]


def conv2d_stride2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'valid' convolution, stride 2, then ReLU. x [B,H,W,C], w [k,k,C,F], b [F] -> [B,Ho,Wo,F].
    One matrix product per frame (a stacked product), so a frame's bits never depend on B."""
    k = w.shape[0]
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::2, ::2]  # [B,Ho,Wo,C,k,k]
    win = win.transpose(0, 1, 2, 4, 5, 3)  # [B,Ho,Wo,k,k,C], the kernel's layout
    B, Ho, Wo = win.shape[:3]
    out = np.matmul(win.reshape(B, Ho * Wo, -1), w.reshape(-1, w.shape[-1])) + b
    return np.maximum(out, 0.0).reshape(B, Ho, Wo, -1)


class NumpyEncoder:
    """The ConvVAE encoder: uint8 frames [B,64,64,3] -> (mu, logvar) float32 [B,z]."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.z_size = self.w["mu_b"].shape[0]

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.asarray(frames, np.float32) / 255.0
        for i in range(4):
            h = conv2d_stride2(h, self.w[f"conv{i}_w"], self.w[f"conv{i}_b"])
        h = h.reshape(len(h), -1)
        return rowwise(h, self.w["mu_w"]) + self.w["mu_b"], rowwise(h, self.w["logvar_w"]) + self.w["logvar_b"]


def conv_transpose2d_stride2(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Keras' Conv2DTranspose (stride 2, valid padding): x [B,H,W,C], w [kh,kw,O,C] -> [B,2H-2+kh,2W-2+kw,O]."""
    B, H, W, C = x.shape
    kh, kw, n_out, _ = w.shape
    cols = (x.reshape(B * H * W, C) @ w.reshape(kh * kw * n_out, C).T).reshape(B, H, W, kh, kw, n_out)
    out = np.zeros((B, 2 * H - 2 + kh, 2 * W - 2 + kw, n_out), np.float32)
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + 2 * H : 2, j : j + 2 * W : 2] += cols[:, :, :, i, j]
    return out + b


class NumpyDecoder:
    """The ConvVAE decoder: z float32 [B,z] -> frames uint8 [B,64,64,3] (what V's Keras decoder gives,
    for viewers that import no TensorFlow: `worldmodels.serve`)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}

    def __call__(self, z: np.ndarray) -> np.ndarray:
        h = np.asarray(z, np.float32) @ self.w["dec0_w"] + self.w["dec0_b"]
        h = h.reshape(len(h), 1, 1, -1)
        for i in range(1, 5):
            h = conv_transpose2d_stride2(h, self.w[f"dec{i}_w"], self.w[f"dec{i}_b"])
            h = np.maximum(h, 0.0) if i < 4 else 1.0 / (1.0 + np.exp(-h))
        return (h * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


class NumpyMDNRNN:
    """One LSTM step of M plus its heads, batched: state (h, c) float32 [B,units]."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items() if k != "num_mixtures"}
        self.num_mixtures = int(weights["num_mixtures"])
        self.units = self.w["lstm_recurrent"].shape[0]

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32)

    def step(self, z: np.ndarray, action: np.ndarray, state: tuple[np.ndarray, np.ndarray], exact_rows: bool = True):
        """[z_t, a_t] and (h_t, c_t) -> (h_{t+1}, c_{t+1}) (Keras LSTM gate order i, f, c, o).

        exact_rows: each row's bits as a batch of one would give (`rowwise`); the dream, which steps
        a whole population at once, passes False for plain matrix products (2.5x faster at 1,024 rows)."""
        h, c = state
        mm = rowwise if exact_rows else np.matmul
        x = np.concatenate([z, action], axis=-1).astype(np.float32)
        gates = mm(x, self.w["lstm_kernel"]) + mm(h, self.w["lstm_recurrent"]) + self.w["lstm_bias"]
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        return h, c

    def heads(self, h: np.ndarray, exact_rows: bool = True):
        """h [B,units] -> (mixture params [B,3*z*k], reward [B], done logit [B]); exact_rows as in step."""
        mm = rowwise if exact_rows else np.matmul
        mix = mm(h, self.w["mdn_w"]) + self.w["mdn_b"]
        reward = (mm(h, self.w["reward_w"]) + self.w["reward_b"])[:, 0]
        done = (mm(h, self.w["done_w"]) + self.w["done_b"])[:, 0]
        return mix, reward, done


def mixture_nll(mix: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """-log p(z) under M's mixture, averaged over latent dimensions (M's z loss per step):
    mix [B,3*z*k] (logits, means, log-stds per dimension), z [B,z] -> [B]."""
    b, n = z.shape
    m = mix.reshape(b, n, 3 * k).astype(np.float64)
    logmix, mean, logstd = m[..., :k], m[..., k : 2 * k], m[..., 2 * k :]
    logmix = logmix - np.logaddexp.reduce(logmix, axis=-1, keepdims=True)
    log_normal = -0.5 * ((z[..., None] - mean) / np.exp(logstd)) ** 2 - logstd - 0.5 * np.log(2 * np.pi)
    return -np.logaddexp.reduce(logmix + log_normal, axis=-1).mean(axis=-1)


class Agent:
    """V + M + C for a batch of B parallel episodes, all numpy.

    act(frames uint8 [B,64,64,3]) -> actions float32 [B,A], then advances M's state with (z, a).
    `params` is one controller for every row (flat [P]) or one per row ([B, P]). Every row's
    arithmetic is a batch of one's (`rowwise`), so an episode's result never depends on B.
    """

    def __init__(
        self, encoder: NumpyEncoder, rnn: NumpyMDNRNN, params: np.ndarray, inputs: str, map_actions, n_out: int
    ):
        self.encoder, self.rnn, self.inputs, self.map_actions = encoder, rnn, inputs, map_actions
        self.n_in, self.n_out = ctrl.input_size(encoder.z_size, rnn.units, inputs), n_out
        self.set_params(params)
        self.track_surprise = False
        self.reset(1)

    def set_params(self, params: np.ndarray) -> None:
        """C's parameters: flat [P] (shared by every row) or [B, P] (row i's controller in row i)."""
        params = np.asarray(params, np.float32)
        if params.ndim == 1:
            self.W, self.b = ctrl.unflatten(params, self.n_in, self.n_out)
        else:
            split = self.n_in * self.n_out
            self.W = params[:, :split].reshape(len(params), self.n_in, self.n_out)
            self.b = params[:, split:]

    def reset(self, batch: int = 1) -> None:
        """Fresh episodes in all `batch` rows."""
        self.state = self.rnn.initial_state(batch)
        self._mix: np.ndarray | None = None
        self._has_mix = np.zeros(batch, bool)
        self.surprise = np.zeros(batch)

    def reset_row(self, row: int, params: np.ndarray | None = None) -> None:
        """A fresh episode in row `row` (M's state zeroed), with its own controller `params` if given
        (the agent must then hold one controller per row)."""
        self.state[0][row] = 0.0
        self.state[1][row] = 0.0
        self._has_mix[row] = False
        if params is not None:
            self.W[row], self.b[row] = ctrl.unflatten(params, self.n_in, self.n_out)

    def act(
        self,
        frames: np.ndarray,
        actions: np.ndarray | None = None,
        explore: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """C's actions for these frames; `actions` (exploration) replaces them, in every row or, with
        the mask `explore`, in those rows only; M's state advances with whichever is taken.

        rows: which rows of the batch these frames belong to (the others' episodes are over or not
        started); all rows by default."""
        rows = np.arange(len(frames)) if rows is None else np.asarray(rows)
        z, _ = self.encoder(frames)
        self.last_z = z  # V's encoding of these frames (play shows its reconstruction)
        h, c = self.state[0][rows], self.state[1][rows]
        if self.track_surprise:
            # M's negative log-likelihood of the z it now sees, from its prediction at the last step.
            self.surprise = np.zeros(len(rows))
            seen = self._has_mix[rows]
            if seen.any():
                self.surprise[seen] = mixture_nll(self._mix[rows[seen]], z[seen], self.rnn.num_mixtures)
        if actions is None or explore is not None:
            W, b = (self.W, self.b) if self.W.ndim == 2 else (self.W[rows], self.b[rows])
            chosen = self.map_actions(rowwise(ctrl.controller_input(z, h, c, self.inputs), W) + b)
            actions = chosen if actions is None else np.where(explore[:, None], actions, chosen).astype(np.float32)
        h, c = self.rnn.step(z, actions, (h, c))
        self.state[0][rows], self.state[1][rows] = h, c
        if self.track_surprise:
            mix = self.rnn.heads(h)[0]
            if self._mix is None:
                self._mix = np.zeros((len(self._has_mix), mix.shape[1]), mix.dtype)
            self._mix[rows] = mix
            self._has_mix[rows] = True
        return actions


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
