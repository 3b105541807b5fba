"""VAE vs VAE-GAN as World Models' V: reconstructions on held-out frames, and the agent each V makes.

Example:
    python -m worldmodels.compare_vision --env carracing \\
        --vae-dir data/carracing --vaegan-dir data/carracing-vaegan

Each directory is a run of the pipeline (stages 2-5) with one kind of V, on the same rollouts (a
VAE-GAN run can link the VAE run's rollouts: see the README). Held-out frames are taken from the
VAE run's held-out rollouts, which neither V trained on when both use the same --heldout-episodes.

Writes to --out (default: the VAE-GAN directory) compare_vision.md (the table), compare_vision.json
and compare_vision.png (rows: real | VAE | VAE-GAN). Figures per V: pixel MSE (per pixel, [0,1]
scale), SSIM (mean over frames, tf.image.ssim), a sharpness ratio (variance of the Laplacian of the
reconstructions over that of the real frames: 1 = as sharp as the data, below 1 = blurrier), V's
training time, and the agent's real-env score from controller/eval.json. The agent scores compare
like with like only if M and C had the same budgets: their configs are compared and any
difference is printed in the table.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from worldmodels.io.artifacts import Paths, StageError, ensure_writable, read_json, write_json
from worldmodels.io.data import rollout_files, split_heldout

log = logging.getLogger(__name__)

KINDS = ("vae", "vaegan")


def laplacian_variance(images: np.ndarray) -> float:
    """Mean over images of the variance of the 4-neighbour Laplacian of the grey image; images [N,H,W,3] in [0,1]."""
    g = images.astype(np.float64).mean(axis=-1)
    lap = g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] - 4 * g[:, 1:-1, 1:-1]
    return float(lap.reshape(len(g), -1).var(axis=1).mean())


def reconstruction_metrics(real: np.ndarray, recon: np.ndarray) -> dict[str, float]:
    """Pixel MSE, SSIM and the sharpness ratio of reconstructions `recon` of frames `real` (float [0,1])."""
    import tensorflow as tf

    ssim = tf.image.ssim(tf.constant(real, tf.float32), tf.constant(recon, tf.float32), max_val=1.0)
    return {
        "pixel_mse": float(np.mean((real - recon) ** 2)),
        "ssim": float(np.mean(ssim)),
        "sharpness_ratio": laplacian_variance(recon) / max(laplacian_variance(real), 1e-12),
    }


def heldout_sample(data_dir: Path, n: int) -> np.ndarray:
    """Up to n held-out frames (uint8) of the run in data_dir, spread over its held-out rollouts."""
    from worldmodels.io.data import heldout_frames

    cfg = read_json(Paths(data_dir).vision / "config.json", "vision")
    files = rollout_files(Paths(data_dir).rollouts)
    _, held = split_heldout(files, cfg["config"]["heldout_episodes"])
    if not held:
        raise StageError(f"{data_dir}: V was trained with --heldout-episodes 0; there are no held-out frames")
    return heldout_frames(held, n)


def _load_vae(data_dir: Path):
    from worldmodels.models.vae import load_vae

    cfg = read_json(Paths(data_dir).vision / "config.json", "vision")
    return cfg, load_vae(Paths(data_dir).vision, cfg["z_size"], cfg["kl_tolerance"])


def _budget(data_dir: Path, controller: str) -> dict:
    """The M and C settings that must match for a fair comparison of agent scores."""
    from dataclasses import asdict

    from worldmodels.config import ControllerConfig, MemoryConfig

    # Settings a run's config.json lacks (added after it was trained) take their defaults.
    out = {}
    mem = Paths(data_dir).memory / "config.json"
    if mem.exists():
        out["memory"] = {**asdict(MemoryConfig()), **read_json(mem, "memory").get("config", {})}
    ctl = data_dir / controller / "config.json"
    if ctl.exists():
        c = read_json(ctl, "controller")
        saved = {**asdict(ControllerConfig()), **c.get("config", {})}
        out["controller"] = {k: v for k, v in saved.items() if k != "name"}
        out["generations_run"] = c.get("generations")
    return out


def compare(env: str, dirs: dict[str, Path], out: Path, frames: int, controller: str) -> dict:
    import tensorflow as tf

    from worldmodels.io.plots import save_image_grid
    from worldmodels.models.vae import to_uint8

    real_u8 = heldout_sample(dirs["vae"], frames)
    real = real_u8.astype(np.float32) / 255.0
    rows, result = [real_u8[:8]], {"env": env, "heldout_frames": len(real), "runs": {}}
    for kind in KINDS:
        cfg, vae = _load_vae(dirs[kind])
        if cfg.get("env") != env:
            raise StageError(f"{dirs[kind]} holds a V for {cfg.get('env')!r}, not {env!r}")
        if cfg.get("kind", "vae") != kind:
            log.warning("%s: V's kind is %r, compared as %r", dirs[kind], cfg.get("kind", "vae"), kind)
        recon = np.concatenate([np.asarray(vae(tf.constant(real[i : i + 128]))) for i in range(0, len(real), 128)])
        entry = {
            "dir": str(dirs[kind]),
            "kind": cfg.get("kind", "vae"),
            **reconstruction_metrics(real, recon),
            "train_seconds": cfg.get("wall_s"),
            "epochs": cfg.get("epochs"),
            "budget": _budget(dirs[kind], controller),
        }
        ev = dirs[kind] / controller / "eval.json"
        if ev.exists():
            e = read_json(ev, "controller")
            score = e.get("real", e)
            entry["score"] = {"mean": score["mean"], "std": score["std"], "episodes": len(score["scores"])}
        rows.append(to_uint8(recon[:8]))
        result["runs"][kind] = entry
    b = [result["runs"][k]["budget"] for k in KINDS]
    result["same_budgets"] = b[0] == b[1]
    out.mkdir(parents=True, exist_ok=True)
    save_image_grid(out / "compare_vision.png", rows)
    write_json(out / "compare_vision.json", result)
    (out / "compare_vision.md").write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    lines = [
        f"# VAE vs VAE-GAN on {result['env']}",
        "",
        f"{result['heldout_frames']} held-out frames. Sharpness ratio: variance of the Laplacian of the "
        "reconstructions over that of the real frames (1 = as sharp as the data).",
        "",
        "| V | pixel MSE | SSIM | sharpness ratio | V training (s) | agent's real score |",
        "|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        r = result["runs"][kind]
        score = (
            f"{r['score']['mean']:.1f} ± {r['score']['std']:.1f} ({r['score']['episodes']} episodes)"
            if "score" in r
            else "not trained"
        )
        secs = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "?"
        lines.append(
            f"| {'VAE' if kind == 'vae' else 'VAE-GAN'} ({r['dir']}) | {r['pixel_mse']:.5f} | {r['ssim']:.3f} | "
            f"{r['sharpness_ratio']:.3f} | {secs} | {score} |"
        )
    lines += [
        "",
        "M and C budgets: "
        + ("identical." if result["same_budgets"] else "DIFFERENT: the agent scores do not compare like with like."),
        "",
        "![real (top), VAE, VAE-GAN](compare_vision.png)",
        "",
    ]
    return "\n".join(lines)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--vae-dir", type=Path, help="a run with --model vae (default data/<env>)")
        p.add_argument("--vaegan-dir", type=Path, help="a run with --model vaegan (default data/<env>-vaegan)")
        p.add_argument("--controller", default="controller", help="controller directory name inside each run")
        p.add_argument("--frames", type=int, default=512, help="held-out frames to score")

    return build_cli_parser(
        __doc__, run_flags=("env",), scoring_flags=("out",), extra=extra, prog="worldmodels compare-vision"
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_tool, report_errors, require

    p = build_parser()
    _, a = parse_tool(p, argv)
    require(p, "--frames", a.frames, "positive")
    dirs = {"vae": a.vae_dir or Path(f"data/{a.env}"), "vaegan": a.vaegan_dir or Path(f"data/{a.env}-vaegan")}
    out = a.out or dirs["vaegan"]

    def body():
        ensure_writable(out)
        print(markdown(compare(a.env, dirs, out, a.frames, a.controller)))

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
