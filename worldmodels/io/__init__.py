"""Artifacts and data on disk: paths, atomic writes and fingerprints (artifacts.py), the rollout and
series formats with their streaming readers (data.py), training checkpoints, metrics and TensorBoard
(checkpoints.py), env seed ranges (seeding.py), and images and plots (plots.py)."""
