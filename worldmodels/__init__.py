"""worldmodels: Ha & Schmidhuber's World Models (2018) as a staged, resumable, tested pipeline."""

__version__ = "0.1.0"
