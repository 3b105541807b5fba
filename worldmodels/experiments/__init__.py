"""Experiments that are not part of the pipeline: toy_vaegan (the VAE-GAN idea in 2-D),
compare_vision (VAE vs VAE-GAN on one run's data), diagnose_dream (constant policies in the dream
and in the game), revalidate (what stage 5 would have kept with fewer validation tracks)."""
