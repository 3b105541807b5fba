"""C: the linear controller a = W [z h] + b (paper, section 2.3), flat parameters <-> (W, b)."""

from __future__ import annotations

import numpy as np


def input_size(z_size: int, rnn_size: int, inputs: str) -> int:
    """Size of the controller's input: [z h] for 'zh', [z c h] for 'zch' (doom), [z] for 'V only'."""
    sizes = {"zh": z_size + rnn_size, "zch": z_size + 2 * rnn_size, "z": z_size}
    if inputs not in sizes:
        raise ValueError(f"unknown controller inputs {inputs!r}; use 'zh', 'zch' or 'z'")
    return sizes[inputs]


def controller_input(z: np.ndarray, h: np.ndarray, c: np.ndarray, inputs: str) -> np.ndarray:
    """The controller's input [B, n_in] from z [B,z], M's hidden h and cell c [B,units]."""
    if inputs == "zh":
        return np.concatenate([z, h], axis=-1)
    if inputs == "zch":
        return np.concatenate([z, c, h], axis=-1)
    return z


def batched_outputs(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Outputs [B, n_out] of B controllers at once: x [B,n_in], W [B,n_in,n_out] (or shared [n_in,n_out])."""
    if w.ndim == 2:
        return x @ w + b
    return np.einsum("bi,bio->bo", x, w) + b


def param_count(z_size: int, rnn_size: int, outputs: int, inputs: str = "zh") -> int:
    """Number of controller parameters: 867 for z=32, h=256, 3 outputs."""
    return input_size(z_size, rnn_size, inputs) * outputs + outputs


def unflatten(params: np.ndarray, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat float [n_in*n_out + n_out] -> W float32 [n_in, n_out], b float32 [n_out]."""
    params = np.asarray(params, np.float32)
    if params.shape != (n_in * n_out + n_out,):
        raise ValueError(f"controller has {params.shape} parameters, expected {n_in * n_out + n_out}")
    return params[: n_in * n_out].reshape(n_in, n_out), params[n_in * n_out :]


def flatten(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([np.ravel(w), np.ravel(b)]).astype(np.float32)


def committee(params: list) -> np.ndarray:
    """One linear controller standing for several (float32 [n] each): the mean of their parameters, so
    its pre-activations are the mean of theirs. Stage 5's --combine mean and tail_mean --pick
    validation both average with this, so the two give the same bits."""
    return np.mean([np.asarray(p, np.float32) for p in params], axis=0).astype(np.float32)
