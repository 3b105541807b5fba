"""V as a VAE-GAN (Larsen et al., 2016, "Autoencoding beyond pixels using a learned similarity metric").

The encoder and decoder are exactly the paper's ConvVAE (so `encode`, `decode`, the numpy encoder
and every later stage are unchanged); a discriminator Dis sits behind the decoder, and the
reconstruction error is measured in Dis's features instead of pixels:

    L_prior = KL(q(z|x) || N(0, I))   floored at kl_tolerance * z nats (free bits), as the VAE's
    L_llike = sum over Dis_l's features of (Dis_l(x) - Dis_l(x~))^2,   x~ = Dec(z), z ~ q(z|x)
    L_GAN   = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p)),       x_p = Dec(z_p), z_p ~ N(0, I)

Three optimisers (Adam each), one step each per batch, as in Larsen et al.'s algorithm:
    encoder       <- grad(L_prior + L_llike)
    decoder       <- grad(gamma * L_llike - L_GAN)   (non-saturating: -log Dis(x~) - log Dis(x_p))
    discriminator <- grad(-L_GAN)                    (binary cross-entropy, real 1, x~ and x_p 0)

Choices, documented:
- layer l is the third of the discriminator's four stride-2 convolutions (6x6x128 features): deep
  enough to be indifferent to exact pixel positions (the point of the method), shallow enough to
  keep the layout of the scene (where the road and the car are), which the agent needs.
- gamma (`--gamma`, default 1) weighs content against realism for the decoder. Measured on
  CarRacing frames (z 32, batch 100, Adam 1e-3, batches 50-200): at gamma 1 the norm of the
  decoder's gradient from gamma * L_llike was 7-47 and from the GAN loss 5-18, so both pull; at
  gamma 0.01 the feature term's share was 0.06-1.8 against 3-30, the GAN term alone steering.
- `--pixel-weight` (default 0: pure Larsen et al.) adds w * the VAE's pixel L2 to the encoder's and
  decoder's losses, a common stabiliser when the discriminator is still untrained.
- `--gan wgan-gp` swaps the discriminator for a Wasserstein critic (linear output, no sigmoid) with
  a gradient penalty (Gulrajani et al., 2017, lambda 10) on random interpolates of real and decoded
  frames: critic <- E[C(x~)] / 2 + E[C(x_p)] / 2 - E[C(x)] + 10 * GP; decoder's GAN term
  -(E[C(x~)] + E[C(x_p)]) / 2. One critic step per batch (not 5), to cost the same as the GAN.

Guards: a batch whose losses are not finite raises (the last checkpoint is kept); an epoch whose
held-out loss is over 3x the best so far (a blow-up: on the laptop preset at learning rate 1e-3, one
epoch's KL went from 14 to 1,779) is undone: the stage reloads the last checkpoint, halves the three
learning rates (kept in the checkpoint's meta, so a resumed run keeps them) and redoes the epoch, at
most 3 times in a row; the stage logs the discriminator's mean outputs per epoch and warns when it
wins outright (collapse).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from worldmodels.models.vae import ConvVAE, kl_divergence

DISCRIMINATOR_FILTERS = (32, 64, 128, 256)
FEATURE_LAYER = 2  # index of the conv whose output is Dis_l (the third)
GAN_KINDS = ("gan", "wgan-gp")
GP_WEIGHT = 10.0


class OptimizerGroup:
    """Several optimisers, each over its own variables, checkpointed as one (training.py's interface)."""

    def __init__(self, pairs: list[tuple[keras.optimizers.Optimizer, list]]):
        self.pairs = pairs

    def build(self, _variables=None) -> None:
        for opt, vars_ in self.pairs:
            if not opt.built:
                opt.build(vars_)

    @property
    def variables(self) -> list:
        return [v for opt, _ in self.pairs for v in opt.variables]


def _bce(logits: tf.Tensor, target: float) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits))


@keras.saving.register_keras_serializable(package="worldmodels")
class ConvVAEGAN(ConvVAE):
    """The ConvVAE plus a discriminator; `to_vae()` gives the plain ConvVAE later stages load."""

    def __init__(
        self,
        z_size: int = 32,
        kl_tolerance: float = 0.5,
        gan: str = "gan",
        gamma: float = 1.0,
        pixel_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(z_size=z_size, kl_tolerance=kl_tolerance, **kwargs)
        if gan not in GAN_KINDS:
            raise ValueError(f"--gan must be one of {', '.join(GAN_KINDS)}, got {gan!r}")
        self.gan, self.gamma, self.pixel_weight = gan, gamma, pixel_weight
        self.dis_convs = [
            keras.layers.Conv2D(f, 4, strides=2, activation=keras.activations.leaky_relu, name=f"dis_conv{i}")
            for i, f in enumerate(DISCRIMINATOR_FILTERS)
        ]
        self.dis_flatten = keras.layers.Flatten()
        self.dis_out = keras.layers.Dense(1, name="dis_out")

    def get_config(self):
        cfg = super().get_config()
        cfg.update(gan=self.gan, gamma=self.gamma, pixel_weight=self.pixel_weight)
        return cfg

    def discriminate(self, x):
        """x [B,64,64,3] -> (logit or critic value [B], Dis_l features [B, 6*6*128])."""
        h, feat = x, None
        for i, conv in enumerate(self.dis_convs):
            h = conv(h)
            if i == FEATURE_LAYER:
                feat = self.dis_flatten(h)
        return self.dis_out(self.dis_flatten(h))[:, 0], feat

    def build(self, input_shape=None) -> None:
        """Create every weight (encoder, decoder, discriminator)."""
        x = tf.zeros((1, 64, 64, 3))
        self.decode(self.encode(x)[0])
        self.discriminate(x)
        self.built = True

    def build_all(self) -> None:
        if not self.built:
            self.build()

    def variable_groups(self) -> tuple[list, list, list]:
        enc = [v for layer in (*self.convs, self.dense_mu, self.dense_logvar) for v in layer.trainable_variables]
        dec = [v for layer in (self.dec_dense, *self.deconvs) for v in layer.trainable_variables]
        dis = [v for layer in (*self.dis_convs, self.dis_out) for v in layer.trainable_variables]
        return enc, dec, dis

    def losses_for(self, x, training: bool = True) -> dict[str, tf.Tensor]:
        """All losses of one batch x in [0,1] (see the module docstring); batch means."""
        mu, logvar = self.encode(x)
        z = self.sample_z(mu, logvar) if training else mu
        recon = self.decode(z)
        prior = self.decode(keras.random.normal(tf.shape(mu), seed=self.seed_gen))
        d_real, f_real = self.discriminate(x)
        d_recon, f_recon = self.discriminate(recon)
        d_prior, _ = self.discriminate(prior)
        kl = tf.reduce_mean(kl_divergence(mu, logvar))
        kl_floored = tf.maximum(kl, self.kl_tolerance * self.z_size)
        llike = tf.reduce_mean(tf.reduce_sum(tf.square(f_real - f_recon), axis=-1))
        r_loss = tf.reduce_mean(tf.reduce_sum(tf.square(x - recon), axis=[1, 2, 3]))
        if self.gan == "gan":
            d_loss = _bce(d_real, 1.0) + _bce(d_recon, 0.0) + _bce(d_prior, 0.0)
            g_loss = _bce(d_recon, 1.0) + _bce(d_prior, 1.0)
            p_real, p_fake = tf.reduce_mean(tf.sigmoid(d_real)), tf.reduce_mean(tf.sigmoid(d_recon))
        else:
            alpha = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), seed=self.seed_gen)
            mixed = alpha * x + (1.0 - alpha) * recon
            with tf.GradientTape() as gp_tape:
                gp_tape.watch(mixed)
                d_mixed, _ = self.discriminate(mixed)
            g = gp_tape.gradient(d_mixed, mixed)
            gp = tf.reduce_mean(tf.square(tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2, 3]) + 1e-12) - 1.0))
            fake = 0.5 * (tf.reduce_mean(d_recon) + tf.reduce_mean(d_prior))
            d_loss = fake - tf.reduce_mean(d_real) + GP_WEIGHT * gp
            g_loss = -fake
            p_real, p_fake = tf.reduce_mean(d_real), tf.reduce_mean(d_recon)
        enc_loss = kl_floored + llike + self.pixel_weight * r_loss
        dec_loss = self.gamma * llike + g_loss + self.pixel_weight * r_loss
        return {
            "loss": enc_loss,
            "dec_loss": dec_loss,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "llike": llike,
            "r_loss": r_loss,
            "kl": kl,
            "d_real": p_real,
            "d_fake": p_fake,
        }

    def heldout_metrics(self, x) -> dict[str, tf.Tensor]:
        out = self.losses_for(x, training=False)
        return {k: out[k] for k in ("loss", "r_loss", "kl", "llike")}

    def compile_training(self, learning_rate: float) -> OptimizerGroup:
        """The three Adam optimisers (built) and the compiled training step."""
        self.build_all()
        enc, dec, dis = self.variable_groups()
        # beta_1 0.5, the usual choice for GAN training (Radford et al., 2016).
        self.opts = OptimizerGroup(
            [
                (keras.optimizers.Adam(learning_rate, beta_1=0.5, name=n), v)
                for n, v in (("enc_adam", enc), ("dec_adam", dec), ("dis_adam", dis))
            ]
        )
        self.opts.build()
        self._train_batch = tf.function(self._train_step_impl)
        return self.opts

    def set_learning_rate(self, lr: float) -> None:
        """The learning rate of all three optimisers (the stage halves it after a divergence)."""
        for opt, _ in self.opts.pairs:
            opt.learning_rate.assign(lr)

    def _train_step_impl(self, x):
        x = tf.cast(x, tf.float32) / 255.0
        with tf.GradientTape(persistent=True) as tape:
            out = self.losses_for(x, training=True)
        for (opt, vars_), key in zip(self.opts.pairs, ("loss", "dec_loss", "d_loss")):
            opt.apply_gradients(zip(tape.gradient(out[key], vars_), vars_))
        del tape
        return out

    def train_batch(self, x: np.ndarray) -> dict[str, float]:
        out = {k: float(v) for k, v in self._train_batch(tf.constant(x)).items()}
        bad = {k: v for k, v in out.items() if not np.isfinite(v)}
        if bad:
            raise FloatingPointError(f"non-finite VAE-GAN losses {bad}")
        return out

    def to_vae(self) -> ConvVAE:
        """The encoder and decoder as a plain ConvVAE (the weights stages 3-5 load)."""
        from worldmodels.models.vae import build_vae

        vae = build_vae(self.z_size, self.kl_tolerance)
        for a, b in zip(
            (*vae.convs, vae.dense_mu, vae.dense_logvar, vae.dec_dense, *vae.deconvs),
            (*self.convs, self.dense_mu, self.dense_logvar, self.dec_dense, *self.deconvs),
        ):
            a.set_weights(b.get_weights())
        return vae


def build_vaegan(z_size: int, kl_tolerance: float, gan: str, gamma: float, pixel_weight: float) -> ConvVAEGAN:
    model = ConvVAEGAN(z_size=z_size, kl_tolerance=kl_tolerance, gan=gan, gamma=gamma, pixel_weight=pixel_weight)
    model.build_all()
    return model
