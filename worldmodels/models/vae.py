"""The paper's ConvVAE (appendix A.1): four stride-2 convolutions to (mu, logvar) of size z,
and a dense layer plus four stride-2 deconvolutions back to a 64x64x3 sigmoid image."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"worldmodels' V and M are Keras models with TensorFlow training steps, but Keras' backend is "
        f"{keras.backend.backend()!r}: unset KERAS_BACKEND or set it to 'tensorflow'"
    )

ENCODER_FILTERS = (32, 64, 128, 256)
DECODER_LAYERS = ((128, 5), (64, 5), (32, 6), (3, 6))


def kl_divergence(mu: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over z: [B,z] -> [B]. Always >= 0."""
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)


@keras.saving.register_keras_serializable(package="worldmodels")
class ConvVAE(keras.Model):
    """Inputs float32 [B,64,64,3] in [0,1]; encode -> (mu, logvar) [B,z]; decode [B,z] -> [B,64,64,3]."""

    def __init__(self, z_size: int = 32, kl_tolerance: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.z_size = z_size
        self.kl_tolerance = kl_tolerance
        self.convs = [
            keras.layers.Conv2D(f, 4, strides=2, activation="relu", name=f"enc_conv{i}")
            for i, f in enumerate(ENCODER_FILTERS)
        ]
        self.flatten = keras.layers.Flatten()
        self.dense_mu = keras.layers.Dense(z_size, name="enc_mu")
        self.dense_logvar = keras.layers.Dense(z_size, name="enc_logvar")
        self.dec_dense = keras.layers.Dense(1024, name="dec_dense")
        self.deconvs = [
            keras.layers.Conv2DTranspose(
                f, k, strides=2, activation="sigmoid" if i == len(DECODER_LAYERS) - 1 else "relu", name=f"dec_deconv{i}"
            )
            for i, (f, k) in enumerate(DECODER_LAYERS)
        ]
        self.seed_gen = keras.random.SeedGenerator(0)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.r_tracker = keras.metrics.Mean(name="r_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def get_config(self):
        return {"z_size": self.z_size, "kl_tolerance": self.kl_tolerance, **super().get_config()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.r_tracker, self.kl_tracker]

    def encode(self, x):
        h = x
        for conv in self.convs:
            h = conv(h)
        h = self.flatten(h)
        return self.dense_mu(h), self.dense_logvar(h)

    def decode(self, z):
        h = self.dec_dense(z)
        h = tf.reshape(h, (-1, 1, 1, 1024))
        for deconv in self.deconvs:
            h = deconv(h)
        return h

    def sample_z(self, mu, logvar):
        eps = keras.random.normal(tf.shape(mu), dtype=mu.dtype, seed=self.seed_gen)
        return mu + tf.exp(0.5 * logvar) * eps

    def call(self, x, training=False):
        mu, logvar = self.encode(x)
        z = self.sample_z(mu, logvar) if training else mu
        return self.decode(z)

    def compute_losses(self, x, training=True):
        """(loss, r_loss, kl): L2 summed over pixels, KL floored at kl_tolerance*z (free bits); batch means."""
        mu, logvar = self.encode(x)
        z = self.sample_z(mu, logvar) if training else mu
        recon = tf.cast(self.decode(z), tf.float32)  # losses in float32 under mixed precision too
        mu, logvar = tf.cast(mu, tf.float32), tf.cast(logvar, tf.float32)
        r_loss = tf.reduce_mean(tf.reduce_sum(tf.square(x - recon), axis=[1, 2, 3]))
        kl = tf.reduce_mean(kl_divergence(mu, logvar))
        kl_floored = tf.maximum(kl, self.kl_tolerance * self.z_size)
        return r_loss + kl_floored, r_loss, kl

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32) / 255.0
        with tf.GradientTape() as tape:
            loss, r_loss, kl = self.compute_losses(x, training=True)
            scaled = self.optimizer.scale_loss(loss)  # the loss itself unless mixed precision scales it
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        self.r_tracker.update_state(r_loss)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32) / 255.0
        loss, r_loss, kl = self.compute_losses(x, training=False)
        self.loss_tracker.update_state(loss)
        self.r_tracker.update_state(r_loss)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}


def build_vae(z_size: int, kl_tolerance: float, mixed_precision: bool = False) -> ConvVAE:
    """A ConvVAE with its weights created (so they can be loaded or counted); float16 compute with
    float32 weights when `mixed_precision` (worldmodels.models.precision)."""
    from worldmodels.models.precision import dtype_policy

    with dtype_policy(mixed_precision):
        vae = ConvVAE(z_size=z_size, kl_tolerance=kl_tolerance)
    vae(tf.zeros((1, 64, 64, 3)))
    return vae


def export_encoder(vae: ConvVAE) -> dict:
    """The encoder's weights as numpy arrays for worldmodels.models.numpy_agent (no TensorFlow in workers)."""
    out = {}
    for i, conv in enumerate(vae.convs):
        out[f"conv{i}_w"], out[f"conv{i}_b"] = (np.asarray(w) for w in conv.weights)
    out["mu_w"], out["mu_b"] = (np.asarray(w) for w in vae.dense_mu.weights)
    out["logvar_w"], out["logvar_b"] = (np.asarray(w) for w in vae.dense_logvar.weights)
    return out


def export_decoder(vae: ConvVAE, dtype=np.float16) -> dict:
    """The decoder's weights as numpy arrays (float16 by default: for shipping, about 7 MB)."""
    out = {}
    for i, layer in enumerate((vae.dec_dense, *vae.deconvs)):
        out[f"dec{i}_w"], out[f"dec{i}_b"] = (np.asarray(w).astype(dtype) for w in layer.weights)
    return out


def to_uint8(x) -> np.ndarray:
    """Pixels in [0, 1] (any array or tensor) -> uint8 [0, 255], rounded."""
    return (np.asarray(x, np.float32) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def decode_uint8(vae: ConvVAE, z: np.ndarray, batch: int = 256) -> np.ndarray:
    """V's decoding of latents z [N,z] as frames uint8 [N,64,64,3], in batches of `batch`."""
    z = np.asarray(z, np.float32)
    out = [to_uint8(vae.decode(tf.constant(z[i : i + batch]))) for i in range(0, len(z), batch)]
    return np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.uint8)


def load_vae(vision_dir, z_size: int, kl_tolerance: float) -> ConvVAE:
    """V from a vision directory: vae.weights.h5 (a training run) or encoder.npz + decoder.npz (a
    shipped model, pretrained/)."""
    from pathlib import Path

    vision_dir = Path(vision_dir)
    vae = build_vae(z_size, kl_tolerance)
    if (vision_dir / "vae.weights.h5").exists():
        vae.load_weights(vision_dir / "vae.weights.h5")
        return vae
    with np.load(vision_dir / "encoder.npz") as enc, np.load(vision_dir / "decoder.npz") as dec:
        for i, conv in enumerate(vae.convs):
            conv.set_weights([enc[f"conv{i}_w"], enc[f"conv{i}_b"]])
        vae.dense_mu.set_weights([enc["mu_w"], enc["mu_b"]])
        vae.dense_logvar.set_weights([enc["logvar_w"], enc["logvar_b"]])
        for i, layer in enumerate((vae.dec_dense, *vae.deconvs)):
            layer.set_weights([dec[f"dec{i}_w"].astype(np.float32), dec[f"dec{i}_b"].astype(np.float32)])
    return vae
