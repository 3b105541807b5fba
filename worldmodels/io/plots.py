"""Images and plots the stages write (PIL for image grids, matplotlib for curves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from worldmodels.io.artifacts import atomic_path


def save_image_grid(path: Path, rows: list[np.ndarray], scale: int = 2) -> None:
    """Tile rows of uint8 frames [N,64,64,3] into one PNG (one row of the grid per array)."""
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    img = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def plot_curves(
    path: Path,
    x: list[float],
    series: dict[str, list[float]],
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
    title: str | None = None,
) -> None:
    """A line plot of several series against x, with optional labelled reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ys in series.items():
        ys = np.asarray(ys, float)
        if np.isnan(ys).all():
            continue
        sparse = np.isnan(ys).any()
        ax.plot(np.asarray(x[: len(ys)])[~np.isnan(ys)], ys[~np.isnan(ys)], label=name, marker="o" if sparse else None)
    for name, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", linewidth=1, color="gray")
        ax.annotate(name, (x[0] if x else 0, y), fontsize=8, color="gray", va="bottom")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
