"""Stage 4: train M, the MDN-RNN, on windows of the encoded series (teacher forcing).

Writes memory/: checkpoint.npz (every `steps_per_epoch` steps; rerunning resumes), rnn.weights.h5
and rnn.npz (Keras and numpy), config.json, metrics.csv, tensorboard/.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.artifacts import (
    Paths,
    StageError,
    arrays_digest,
    atomic_path,
    clean_temporaries,
    fault_point,
    fix_hint,
    write_json,
)
from worldmodels.cli import RunArgs
from worldmodels.config import MemoryConfig
from worldmodels.data import open_series
from worldmodels.stages.train_vae import load_vision
from worldmodels.training import TensorBoard, check_finite, load_checkpoint, save_checkpoint, write_metrics_csv

log = logging.getLogger(__name__)


class SeriesSampler:
    """Random windows of `seq_len` steps from series.h5, read from disk per batch (bounded memory).

    A batch: mu, logvar float32 [B,L+1,z]; action [B,L,a]; reward, terminated, mask, zmask float32 [B,L].
    Windows shorter than L (short episodes, episode ends) are zero-padded; mask marks real steps and
    zmask the steps whose next z exists (the last step of an episode has none).
    """

    def __init__(self, f, episodes: np.ndarray, seq_len: int):
        self.f, self.episodes, self.seq_len = f, episodes, seq_len
        self.starts = f["episode_starts"][:]
        self.z_size = f["mu"].shape[1]
        self.action_dim = f["action"].shape[1]

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        L, z, a = self.seq_len, self.z_size, self.action_dim
        out = {
            "mu": np.zeros((batch_size, L + 1, z), np.float32),
            "logvar": np.zeros((batch_size, L + 1, z), np.float32),
            "action": np.zeros((batch_size, L, a), np.float32),
            "reward": np.zeros((batch_size, L), np.float32),
            "terminated": np.zeros((batch_size, L), np.float32),
            "mask": np.zeros((batch_size, L), np.float32),
            "zmask": np.zeros((batch_size, L), np.float32),
        }
        eps = rng.choice(self.episodes, size=batch_size)
        for b, e in enumerate(eps):
            s0, s1 = int(self.starts[e]), int(self.starts[e + 1])
            T = s1 - s0
            s = s0 + int(rng.integers(0, max(0, T - L) + 1))
            n = min(L, s1 - s)
            nz = min(n + 1, s1 - s)
            out["mu"][b, :nz] = self.f["mu"][s : s + nz]
            out["logvar"][b, :nz] = self.f["logvar"][s : s + nz]
            out["action"][b, :n] = self.f["action"][s : s + n]
            out["reward"][b, :n] = self.f["reward"][s : s + n]
            out["terminated"][b, :n] = self.f["terminated"][s : s + n]
            out["mask"][b, :n] = 1.0
            out["zmask"][b, : nz - 1] = 1.0
        return out


def train_rnn(args: RunArgs, cfg: MemoryConfig) -> Path:
    """Train (or resume training) the MDN-RNN; returns the memory directory."""
    import keras
    import tensorflow as tf

    from worldmodels.memory import build_mdnrnn, export_rnn

    paths = Paths(args.data_dir)
    out = paths.memory
    vision_cfg, _ = load_vision(args)
    f = open_series(paths.series, fix_hint("series", args))
    try:
        if str(f.attrs.get("vision_fingerprint")) != vision_cfg["fingerprint"]:
            raise StageError(
                f"{paths.series} was encoded by another vision model (fingerprint "
                f"{f.attrs.get('vision_fingerprint')}, vision/ is {vision_cfg['fingerprint']}); "
                f"rerun `{fix_hint('series', args)}`"
            )
        if f["mu"].shape[1] != vision_cfg["z_size"]:
            raise StageError(
                f"{paths.series} has z size {f['mu'].shape[1]} but V has {vision_cfg['z_size']}; "
                f"rerun `{fix_hint('series', args)}`"
            )
        n_ep = len(f["episode_starts"]) - 1
        n_val = max(1, n_ep // 20) if n_ep >= 4 else 0
        train_eps, val_eps = np.arange(n_ep - n_val), np.arange(n_ep - n_val, n_ep)
        sampler = SeriesSampler(f, train_eps, cfg.seq_len)
        z_size, action_dim = sampler.z_size, sampler.action_dim
        series_fp = str(f.attrs["fingerprint"])
        settings = {
            "env": args.env,
            "seed": args.seed,
            "series": series_fp,
            # The next-action knobs enter the settings only when used: older checkpoints still resume.
            **{
                k: v
                for k, v in asdict(cfg).items()
                if k != "steps" and (cfg.predict_action or k not in ("predict_action", "action_weight"))
            },
        }
        ckpt_path = out / "checkpoint.npz"

        keras.utils.set_random_seed(args.seed)
        model = build_mdnrnn(
            z_size,
            action_dim,
            cfg.rnn_size,
            cfg.num_mixtures,
            reward_weight=cfg.reward_weight,
            done_weight=cfg.done_weight,
            done_pos_weight=cfg.done_pos_weight,
            predict_action=cfg.predict_action,
            action_weight=cfg.action_weight,
        )
        optimizer = keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.grad_clip)
        model.compile(optimizer=optimizer)
        meta = {"step": 0, "history": [], "wall_s": 0.0}
        if ckpt_path.exists():
            meta = load_checkpoint(ckpt_path, model, optimizer, settings, fix_hint("memory", args))
            log.info("resuming from %s at step %d", ckpt_path, meta["step"])
        out.mkdir(parents=True, exist_ok=True)
        clean_temporaries(out)
        tb = TensorBoard(out / "tensorboard")
        val_batch = None
        if n_val:
            val_batch = SeriesSampler(f, val_eps, cfg.seq_len).batch(
                np.random.default_rng([args.seed, 999]), cfg.batch_size
            )

        step = meta["step"]
        bar = tqdm(total=cfg.steps, initial=step, desc="rnn steps", unit="step", leave=False)
        while step < cfg.steps:
            t0 = time.time()
            end = min(cfg.steps, (step // cfg.steps_per_epoch + 1) * cfg.steps_per_epoch)
            model.seed_gen.state.assign(np.array([args.seed, step], dtype=model.seed_gen.state.dtype))
            sums = {}
            for s in range(step, end):
                fault_point("step")
                batch = sampler.batch(np.random.default_rng([args.seed, s]), cfg.batch_size)
                model.reset_metrics()
                logs = model.train_on_batch(batch, return_dict=True)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.update()
                bar.set_postfix(loss=f"{float(logs['loss']):.3f}")
            row = {"step": end, **{k: v / (end - step) for k, v in sums.items()}}
            if val_batch is not None:
                model.reset_metrics()
                row.update({f"val_{k}": float(v) for k, v in model.test_on_batch(val_batch, return_dict=True).items()})
            row["seconds"] = time.time() - t0
            check_finite({k: v for k, v in row.items() if isinstance(v, float)}, f"rnn step {end}", ckpt_path)
            meta = {
                "settings": settings,
                "step": end,
                "history": meta["history"] + [row],
                "wall_s": meta["wall_s"] + row["seconds"],
            }
            save_checkpoint(ckpt_path, model, optimizer, meta)
            write_metrics_csv(out / "metrics.csv", meta["history"])
            tb.scalars("rnn", {k: v for k, v in row.items() if k != "step"}, end)
            log.info("step %d: loss %.3f z_nll %.3f", end, row["loss"], row["z_nll"])
            step = end
        bar.close()
    finally:
        f.close()

    with atomic_path(out / "rnn.weights.h5") as tmp:
        model.save_weights(tmp)
    arrays = export_rnn(model)
    with open_series(paths.series, fix_hint("series", args)) as f:
        calibration = done_calibration(arrays, f, train_eps, val_eps, cfg.done_pos_weight)
    with atomic_path(out / "rnn.npz") as tmp:
        np.savez(tmp, **arrays)
    write_json(
        out / "config.json",
        {
            "kind": "mdnrnn",
            "env": args.env,
            "preset": args.preset,
            "seed": args.seed,
            "z_size": z_size,
            "action_dim": action_dim,
            "rnn_size": cfg.rnn_size,
            "num_mixtures": cfg.num_mixtures,
            "steps": meta["step"],
            "config": asdict(cfg),
            "inputs": {"series": series_fp, "vision": vision_cfg["fingerprint"]},
            "fingerprint": arrays_digest(arrays),
            "done_bias": calibration["bias"],
            "done_calibration": calibration,
            "wall_s": meta["wall_s"],
            "final": meta["history"][-1] if meta["history"] else {},
        },
    )
    _ = tf
    try:
        plot_predictions(args, arrays, out / "predictions.png")
    except StageError as e:  # a missing frame file must not fail a finished training
        log.warning("no predictions plot: %s", e)
    return out


def teacher_forced_done_logits(rnn_weights: dict, f, episodes, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """M's done logits on the real episodes (fed their mu and actions), flat over steps, and the
    terminated flags they predict; episodes run as one padded batch per chunk."""
    from worldmodels.agent import NumpyMDNRNN

    rnn = NumpyMDNRNN(rnn_weights)
    starts = f["episode_starts"][:]
    logits, targets = [], []
    for i in range(0, len(episodes), chunk):
        eps = episodes[i : i + chunk]
        lens = np.array([starts[e + 1] - starts[e] for e in eps])
        seqs = [(f["mu"][starts[e] : starts[e + 1]], f["action"][starts[e] : starts[e + 1]]) for e in eps]
        state = rnn.initial_state(len(eps))
        out = np.zeros((len(eps), lens.max()), np.float64)
        for t in range(lens.max()):
            z = np.stack([mu[min(t, len(mu) - 1)] for mu, _ in seqs])
            a = np.stack([act[min(t, len(act) - 1)] for _, act in seqs])
            state = rnn.step(z, a, state)
            out[:, t] = rnn.heads(state[0])[2]
        for j, e in enumerate(eps):
            logits.append(out[j, : lens[j]])
            targets.append(f["terminated"][starts[e] : starts[e + 1]])
    return np.concatenate(logits), np.concatenate(targets).astype(bool)


def done_calibration(rnn_weights: dict, f, train_eps, val_eps, done_pos_weight: float, max_eps: int = 1000) -> dict:
    """Fit the dream's done bias on (up to max_eps of) the training episodes, so that M, fed the real
    episodes, expects as many terminations as they had; report the same count on the held-out
    episodes. Without terminations to fit (CarRacing rarely has any), the bias is -ln(pos weight)."""
    from worldmodels.envs.dream import done_probability, fit_done_bias

    default = -float(np.log(done_pos_weight))
    fit_eps = np.asarray(train_eps)[np.linspace(0, len(train_eps) - 1, min(max_eps, len(train_eps))).astype(int)]
    logits, term = teacher_forced_done_logits(rnn_weights, f, fit_eps)
    bias = fit_done_bias(logits, term)
    if not np.isfinite(bias):
        bias = default
    out = {
        "bias": bias,
        "pos_weight_bias": default,
        "fit_episodes": len(fit_eps),
        "fit_terminations": int(term.sum()),
        "fit_expected_with_pos_weight_bias": float(done_probability(logits, default).sum()),
        "fit_expected_calibrated": float(done_probability(logits, bias).sum()),
    }
    if len(val_eps):
        v_logits, v_term = teacher_forced_done_logits(rnn_weights, f, np.asarray(val_eps))
        out.update(
            val_episodes=len(val_eps),
            val_terminations=int(v_term.sum()),
            val_expected_with_pos_weight_bias=float(done_probability(v_logits, default).sum()),
            val_expected_calibrated=float(done_probability(v_logits, bias).sum()),
        )
    log.info(
        "done calibration: bias %.3f (-ln pos weight = %.3f): %d terminations in %d training episodes, "
        "M expected %.1f before and %.1f after",
        bias,
        default,
        out["fit_terminations"],
        len(fit_eps),
        out["fit_expected_with_pos_weight_bias"],
        out["fit_expected_calibrated"],
    )
    return out


def plot_predictions(args: RunArgs, rnn_weights: dict, path: Path, horizon: int = 10) -> None:
    """PNG: a held-out episode's real frames, V's reconstructions, and M's open-loop predictions
    (most likely component, temperature 0, fed its own predictions and the real actions), decoded by V."""
    import tensorflow as tf

    from worldmodels.agent import NumpyMDNRNN
    from worldmodels.data import load_rollout, rollout_files
    from worldmodels.envs.dream import sample_next_z
    from worldmodels.plots import save_image_grid

    paths = Paths(args.data_dir)
    _, vae = load_vision(args, need_keras=True)
    files = rollout_files(paths.rollouts)
    ep = load_rollout(files[-1])  # the last episode: held out from V and M's training
    start = min(len(ep["obs"]) // 3, max(0, len(ep["obs"]) - horizon - 1))
    frames = ep["obs"][start : start + horizon + 1]
    actions = ep["action"][start : start + horizon]
    mu, _ = vae.encode(tf.cast(frames, tf.float32) / 255.0)
    mu = mu.numpy()
    rnn = NumpyMDNRNN(rnn_weights)
    state = rnn.initial_state(1)
    z = mu[:1]
    predicted = [mu[0]]
    for t in range(len(actions)):
        state = rnn.step(z, actions[t : t + 1], state)
        mix, _, _ = rnn.heads(state[0])
        zero = np.zeros_like(z)
        z = sample_next_z(mix, z.shape[1], rnn.num_mixtures, 0.0, zero, zero).astype(np.float32)
        predicted.append(z[0])

    def decode(zs):
        return (
            (np.asarray(vae.decode(tf.constant(np.asarray(zs, np.float32)))) * 255 + 0.5).clip(0, 255).astype(np.uint8)
        )

    save_image_grid(path, [frames, decode(mu), decode(predicted)])
