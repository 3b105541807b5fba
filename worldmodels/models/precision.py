"""Mixed precision for V and M (`--mixed-precision`, stages 2 and 4): layers compute in float16 and
keep float32 weights (Keras' "mixed_float16" policy); `Model.compile` wraps the optimizer in a
LossScaleOptimizer, and the training steps scale the loss through `optimizer.scale_loss` so small
float16 gradients do not underflow. Losses are computed in float32 from the layers' outputs.

It is for GPUs with tensor cores (an H100/H200 runs float16 matrix products several times faster);
on a CPU it is slower, and only there to test that it trains the same model: over a few steps the
losses agree with float32's within MIXED_LOSS_RTOL (tests/test_models.py). The exported numpy
weights (vision/*.npz, memory/rnn.npz) stay float32 whatever the policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

MIXED_POLICY = "mixed_float16"
MIXED_LOSS_RTOL = 0.01
"""Relative difference of a mixed-precision loss from float32's, over a few steps from the same start."""


@contextlib.contextmanager
def dtype_policy(mixed: bool) -> Iterator[None]:
    """Layers built inside take the mixed-precision policy when `mixed` (else the default float32)."""
    if not mixed:
        yield
        return
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(MIXED_POLICY)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
