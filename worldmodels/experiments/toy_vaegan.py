"""The toy experiment behind the VAE-GAN: where do reconstructions land when the latent is too small?

Data: 2-D points from two generative factors, a position t ~ U(-1, 1) along a curve and which of
two parallel sine curves (a coin flip), plus a little noise. A 1-D latent (with the KL prior
pulling the codes together) cannot hold both factors, so the model must give one up. A VAE with a
pixel-style L2 loss gives up the curve by averaging it: its reconstructions fall between the two
curves, where there is no data. A VAE-GAN's decoder is also judged by a discriminator, which
rejects points off the curves, so its reconstructions land on a curve (sometimes the wrong one).

Both models: two-hidden-layer MLPs of 128 units for encoder, decoder and (VAE-GAN) discriminator;
the same KL prior; the VAE-GAN's reconstruction error is measured in the discriminator's second
hidden layer, as in worldmodels/vision/vaegan.py. The VAE's likelihood is Gaussian with std 0.5:
at that price an error of one curve's offset costs about 0.5 nats, less than the KL of a code that
tells the curves apart, so the VAE averages them. With a much smaller std (0.25) the VAE instead
splits its one latent into two pieces, one per curve, and lands near the data too (mean distance
0.07 against 0.3 at 0.5): the effect is real but depends on how much pixel error costs.

    python -m worldmodels.toy_vaegan --out toy_vaegan.png

prints the mean distance from each model's reconstructions to the nearest point of the data's
curves, writes the plot and the figures (toy_vaegan.json beside it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NOISE = 0.02
GAP = 0.5  # each curve's vertical offset from the middle


def curves(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The noise-free data: point t on curve c (0 or 1)."""
    return np.stack([t, 0.4 * np.sin(3.0 * t) + np.where(c > 0, GAP, -GAP)], axis=-1).astype(np.float32)


def sample_data(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(-1.0, 1.0, n)
    c = rng.integers(0, 2, n)
    return curves(t, c) + rng.normal(0.0, NOISE, (n, 2)).astype(np.float32)


def distance_to_data(points: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest point of either curve (t in [-1, 1])."""
    t = np.linspace(-1.0, 1.0, 2001)
    ref = np.concatenate([curves(t, np.zeros_like(t)), curves(t, np.ones_like(t))])
    d2 = ((points[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    return np.sqrt(d2.min(axis=1))


def _mlp(out: int, name: str):
    import keras

    return keras.Sequential(
        [
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(out),
        ],
        name=name,
    )


def _toy_models(seed: int):
    """Encoder (x -> mu, logvar), decoder (z -> x), discriminator body and head, and their three Adams."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    enc, dec = _mlp(2, "encoder"), _mlp(2, "decoder")
    dis_body = keras.Sequential(
        [keras.layers.Dense(128, activation="relu"), keras.layers.Dense(128, activation="relu")], name="dis_body"
    )
    dis_head = keras.layers.Dense(1, name="dis_head")
    for m, shape in ((enc, 2), (dec, 1), (dis_body, 2)):
        m(tf.zeros((1, shape)))
    dis_head(tf.zeros((1, 128)))
    opts = [keras.optimizers.Adam(1e-3, beta_1=0.5) for _ in range(3)]
    opts[0].build(enc.trainable_variables)
    opts[1].build(dec.trainable_variables)
    opts[2].build(dis_body.trainable_variables + dis_head.trainable_variables)
    return enc, dec, dis_body, dis_head, opts


def train_toy(kind: str, steps: int, seed: int, batch: int = 256, sigma: float = 0.5, gamma: float = 0.1):
    """Train a 'vae' or 'vaegan' on fresh batches; returns reconstruct(x) -> decoded posterior means.

    The VAE's loss is the Gaussian negative log-likelihood with std `sigma` plus KL; the VAE-GAN's
    encoder uses the discriminator-feature error instead, its decoder gamma * that + the GAN loss.
    """
    import tensorflow as tf

    enc, dec, dis_body, dis_head, opts = _toy_models(seed)
    dis_vars = dis_body.trainable_variables + dis_head.trainable_variables
    rng = np.random.default_rng(seed)

    def bce(logits, target):
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), target), logits))

    @tf.function
    def step(x, eps, z_prior):
        with tf.GradientTape(persistent=True) as tape:
            h = enc(x)
            mu, logvar = h[:, :1], h[:, 1:]
            recon = dec(mu + tf.exp(0.5 * logvar) * eps)
            kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1.0 + logvar - mu**2 - tf.exp(logvar), axis=-1))
            if kind == "vae":
                nll = tf.reduce_mean(tf.reduce_sum(tf.square(x - recon), axis=-1)) / (2 * sigma**2)
                enc_loss = dec_loss = kl + nll
            else:
                f_real, f_recon = dis_body(x), dis_body(recon)
                prior = dec(z_prior)
                d_real, d_recon, d_prior = dis_head(f_real), dis_head(f_recon), dis_head(dis_body(prior))
                llike = tf.reduce_mean(tf.reduce_sum(tf.square(f_real - f_recon), axis=-1))
                enc_loss = kl + llike
                dec_loss = gamma * llike + bce(d_recon, 1.0) + bce(d_prior, 1.0)
                d_loss = bce(d_real, 1.0) + bce(d_recon, 0.0) + bce(d_prior, 0.0)
        groups = [(opts[0], enc.trainable_variables, enc_loss), (opts[1], dec.trainable_variables, dec_loss)]
        if kind != "vae":
            groups.append((opts[2], dis_vars, d_loss))
        for opt, vars_, loss in groups:
            opt.apply_gradients(zip(tape.gradient(loss, vars_), vars_))
        return enc_loss

    for _ in range(steps):
        x = sample_data(batch, rng)
        step(
            tf.constant(x),
            tf.constant(rng.normal(size=(batch, 1)).astype(np.float32)),
            tf.constant(rng.normal(size=(batch, 1)).astype(np.float32)),
        )

    def reconstruct(x: np.ndarray) -> np.ndarray:
        return np.asarray(dec(enc(tf.constant(x, tf.float32))[:, :1]))

    return reconstruct


def run(steps: int = 3000, seed: int = 0, n_test: int = 1000) -> dict:
    """Train both models on the same data stream; distances of their reconstructions of held-out points."""
    test = sample_data(n_test, np.random.default_rng(seed + 10_000))
    out = {"steps": steps, "seed": seed, "test": test, "data_distance": float(distance_to_data(test).mean())}
    for kind in ("vae", "vaegan"):
        recon = train_toy(kind, steps, seed)(test)
        out[f"{kind}_recon"] = recon
        out[f"{kind}_distance"] = float(distance_to_data(recon).mean())
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    for ax, kind, title in zip(axes, ("vae", "vaegan"), ("VAE", "VAE-GAN")):
        ax.scatter(*result["test"].T, s=4, c="0.7", label="data")
        ax.scatter(*result[f"{kind}_recon"].T, s=4, c="tab:red", label="reconstructions")
        ax.set_title(f"{title}: mean distance to the data {result[f'{kind}_distance']:.3f}")
        ax.legend(loc="lower right")
    fig.suptitle("Two curves, a 1-D latent: where reconstructions land")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--out", type=Path, default=Path("toy_vaegan.png"), help="plot to write (and .json beside it)")
        p.add_argument("--steps", type=int, default=3000, help="training batches per model")

    return build_cli_parser(__doc__, run_flags=("seed",), extra=extra, prog="worldmodels toy-vaegan")


def main(argv: list[str] | None = None) -> None:
    from worldmodels.cli import require

    p = build_parser()
    a = p.parse_args(argv)
    require(p, "--steps", a.steps, "positive")
    require(p, "--seed", a.seed, ">= 0")
    result = run(a.steps, a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    plot(result, a.out)
    figures = {k: v for k, v in result.items() if not isinstance(v, np.ndarray)}
    a.out.with_suffix(".json").write_text(json.dumps(figures, indent=1) + "\n")
    print(
        f"mean distance to the data: VAE {figures['vae_distance']:.3f}, VAE-GAN {figures['vaegan_distance']:.3f} "
        f"(the data's own noise: {figures['data_distance']:.3f}); plot {a.out}"
    )


if __name__ == "__main__":
    main()
