"""V: models that encode a 64x64x3 frame to a latent z and decode it back.

Every vision model has the same interface: encode(x) -> (mu, logvar), decode(z) -> x.
"""

from worldmodels.vision.vae import ConvVAE, kl_divergence

__all__ = ["ConvVAE", "kl_divergence"]
