"""Configs for every stage, and the named presets (tiny, laptop, paper) per environment.

One dataclass per stage. Each field carries a one-line help text that becomes its `--flag` help.
Presets are plain dicts of overrides, kept here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENVS = ("carracing", "doom")
ENVS_PER_WORKER = 8
"""Episodes a worker steps in lockstep by default (--envs-per-worker): V, M and C run once per step for
all of them. Past 8 the agent's share of a step is already small next to the env's (bench/cmaes_generation.py)."""
PRESET_NAMES = ("tiny", "laptop", "paper")


@dataclass(frozen=True)
class Run:
    """What every stage needs besides its own settings: the env, the preset, where the run's
    artifacts live, the seed, and how many workers (local processes, or Ray actors at `ray_address`)."""

    env: str
    preset: str
    data_dir: Path
    seed: int = 0
    workers: int = 1
    ray_address: str | None = None
    argv: tuple[str, ...] | None = None
    """The flags as the user gave them (set by the command line), so artifacts can record the exact
    command that made them and messages can repeat it."""
    envs_per_worker: int = ENVS_PER_WORKER
    """Episodes each worker steps in lockstep (results never depend on it)."""


def default_data_dir(env: str, preset: str) -> Path:
    """data/<env> for the laptop preset, data/<env>-<preset> for the others (as `make run` does); a
    gym:<id> env's directory is named after its id (data/gym-ALE-Pong-v5)."""
    if env.startswith("gym:"):
        env = "gym-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in env[4:].split("?")[0])
    return Path("data") / (env if preset == "laptop" else f"{env}-{preset}")


def _f(default: Any, help: str, flag: str | None = None) -> Any:  # noqa: A002 - mirrors argparse's name
    """A config field with its --help text (and its flag name, when not the field's name)."""
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass
class CollectConfig:
    """Stage 1: exploration rollouts in the real environment."""

    episodes: int = _f(100, "number of episodes (rollout files) to collect")
    max_steps: int = _f(1000, "cap on steps per collected episode")
    policy: str = _f(
        "pursuit",
        "exploration policy: 'pursuit' (carracing: noisy track follower), 'random', 'random-long' "
        "(doom: each action held up to 60 steps), or 'controller' (a trained agent)",
    )
    fast_env: bool = _f(True, "use the fast renderer (carracing); --no-fast-env for the stock env")
    agent_dir: str = _f("", "with --policy controller: the data dir whose vision/, memory/ and controller/ act")
    explore: float = _f(0.1, "with --policy controller: probability per step of a random action instead")


@dataclass
class VisionConfig:
    """Stage 2: the ConvVAE (paper, appendix A.1)."""

    z_size: int = _f(32, "latent size of z")
    epochs: int = _f(10, "passes over the training frames")
    batch_size: int = _f(100, "frames per training batch")
    learning_rate: float = _f(1e-4, "Adam learning rate")
    kl_tolerance: float = _f(0.5, "free bits: the KL term is floored at kl_tolerance * z_size nats")
    heldout_episodes: int = _f(2, "rollouts kept out of training for validation and plots")
    shuffle_buffer: int = _f(10000, "frames held in the streaming shuffle buffer (bounds memory)")
    max_frames_per_epoch: int = _f(0, "stop an epoch after this many frames (0: all frames)")
    model: str = _f("vae", "V's kind: 'vae' (the paper's ConvVAE) or 'vaegan' (Larsen et al. 2016)")
    gan: str = _f("gan", "vaegan only: 'gan' (discriminator, cross-entropy) or 'wgan-gp' (Wasserstein critic)")
    gamma: float = _f(1.0, "vaegan only: weight of the feature-space reconstruction error in the decoder's loss")
    pixel_weight: float = _f(0.0, "vaegan only: weight of an extra pixel L2 term (0: pure Larsen et al.)")
    mixed_precision: bool = _f(
        False,
        "compute in float16 with float32 weights and loss scaling (Keras mixed_float16), for GPUs with tensor "
        "cores; the exported weights stay float32",
    )


@dataclass
class EncodeConfig:
    """Stage 3: encode every rollout to (mu, logvar)."""

    batch_size: int = _f(1000, "frames per encoder call")


@dataclass
class MemoryConfig:
    """Stage 4: the MDN-RNN (paper, appendix A.2)."""

    rnn_size: int = _f(256, "LSTM units")
    num_mixtures: int = _f(5, "Gaussian mixture components per latent dimension")
    seq_len: int = _f(100, "training sequence length (teacher forcing)")
    batch_size: int = _f(100, "sequences per batch")
    steps: int = _f(4000, "training steps in total")
    steps_per_epoch: int = _f(200, "steps between checkpoints and metric rows")
    learning_rate: float = _f(1e-3, "Adam learning rate")
    grad_clip: float = _f(1.0, "clip gradients to this global norm")
    reward_weight: float = _f(1.0, "weight of the reward MSE in the loss")
    done_weight: float = _f(1.0, "weight of the terminated cross-entropy in the loss")
    done_pos_weight: float = _f(10.0, "weight of terminated=1 steps inside that cross-entropy")
    predict_action: bool = _f(False, "also predict the next action (the paper's iterative procedure)")
    mixed_precision: bool = _f(
        False,
        "compute in float16 with float32 weights and loss scaling (Keras mixed_float16), for GPUs with tensor "
        "cores; the exported weights stay float32",
    )
    action_weight: float = _f(1.0, "weight of the next-action MSE in the loss (with --predict-action)")
    windows: str = _f(
        "inside",
        "where training windows may start: 'inside' (each window lies inside its episode, so the last seq_len "
        "steps, the ones before a death, are in fewer windows), or 'all-steps' (windows may start before the "
        "episode or run past its end, zero-padded, so every step is in as many windows as any other)",
    )
    dropout: float = _f(
        0.0,
        "dropout rate on the LSTM's output before M's heads while training M (Dropout's Dream Land, Wellmer & "
        "Kwok 2021; stage 5's --dream-dropout uses it in the dream); 0: none",
    )


@dataclass
class ControllerConfig:
    """Stage 5: the linear controller trained by CMA-ES (paper, section 3.3)."""

    inputs: str = _f("zh", "controller inputs: 'zh' (full world model), 'zch' (doom: z, cell, hidden), 'z' (V only)")
    train_in: str = _f("real", "where CMA-ES scores candidates: 'real' env, or 'dream' (inside M)", flag="--in")
    temperature: float = _f(1.0, "dream temperature tau: mixture logits / tau, sigma * sqrt(tau)")
    name: str = _f("controller", "output directory under the data dir (a sweep writes one per temperature)")
    population: int = _f(64, "CMA-ES population size")
    trials: int = _f(16, "episodes per candidate; its fitness is the mean")
    generations: int = _f(100, "CMA-ES generations")
    sigma0: float = _f(0.1, "initial CMA-ES step size")
    max_steps: int = _f(1000, "cap on steps per training episode")
    patience: int = _f(0, "end a training episode after this many steps without reward (0: never); never in eval")
    eval_episodes: int = _f(100, "held-out tracks the best controller is scored on")
    eval_max_steps: int = _f(1000, "cap on steps per evaluation episode (1000 = the full benchmark)")
    eval_every: int = _f(
        0, "every N generations, score the generation's best and the CMA-ES mean on validation tracks (0: never)"
    )
    val_episodes: int = _f(8, "validation tracks per candidate at each --eval-every check; the best on them is kept")
    fast_env: bool = _f(True, "use the fast renderer (carracing); --no-fast-env for the stock env")
    curiosity: float = _f(
        0.0, "training reward bonus: this weight x M's negative log-likelihood of each transition (0: none)"
    )
    dream_dropout: float = _f(
        0.0,
        "dropout rate on M's LSTM output before its heads in the dream, a fresh mask every step of every episode: "
        "each candidate meets many slightly different dreams (Dropout's Dream Land); 0: none",
    )
    dream_done_shift: float = _f(
        0.0,
        "added to M's calibrated done logit in the dream C trains and is validated in: multiplies the odds of "
        "dying at each dream step by e^SHIFT, so fewer dream episodes reach the --max-steps cap (where every "
        "candidate scores alike); 0: M's calibrated dream",
    )
    searches: int = _f(
        1,
        "independent CMA-ES searches (seeds SEED*N .. SEED*N+N-1, each in controller/search-I/); the one whose "
        "chosen controller scores best on --select-episodes held-out episodes where C trains (the dream or the "
        "real env) is kept; 1: a single search in controller/",
    )
    select_episodes: int = _f(200, "held-out episodes per search that choose among --searches (more than one)")
    combine: str = _f(
        "best",
        "with --searches N: 'best' keeps the search that scores best on --select-episodes, 'mean' keeps the mean "
        "of the N searches' chosen controllers (one linear controller whose output is the mean of theirs)",
    )


STAGE_CONFIGS: dict[str, type] = {
    "collect": CollectConfig,
    "vision": VisionConfig,
    "encode": EncodeConfig,
    "memory": MemoryConfig,
    "controller": ControllerConfig,
}

# Overrides of the dataclass defaults (which are the paper's settings) per preset.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "collect": {"episodes": 4, "max_steps": 60},
        "vision": {
            "z_size": 8,
            "epochs": 2,
            "batch_size": 32,
            "learning_rate": 1e-3,
            "heldout_episodes": 1,
            "shuffle_buffer": 500,
        },
        "encode": {"batch_size": 64},
        "memory": {
            "rnn_size": 16,
            "num_mixtures": 2,
            "seq_len": 16,
            "batch_size": 8,
            "steps": 20,
            "steps_per_epoch": 10,
        },
        "controller": {
            "population": 4,
            "trials": 1,
            "generations": 2,
            "sigma0": 0.1,
            "max_steps": 40,
            "patience": 20,
            "eval_episodes": 2,
            "eval_max_steps": 40,
            "eval_every": 1,
            "val_episodes": 2,
        },
    },
    "laptop": {
        "collect": {"episodes": 200, "max_steps": 600},
        "vision": {"epochs": 5, "learning_rate": 1e-3, "heldout_episodes": 4},
        "memory": {"steps": 3000, "batch_size": 64, "seq_len": 100, "steps_per_epoch": 200},
        "controller": {
            "population": 16,
            "trials": 3,
            # 120, not 80: the curve was still rising at 80; on 200 development tracks the run
            # continued to 120 beat it by 22 +- 10 points (paired), docs/carracing-score.md.
            "generations": 120,
            "sigma0": 0.1,
            "max_steps": 1000,
            "patience": 50,
            "eval_every": 10,
            "val_episodes": 8,
            "eval_episodes": 100,
        },
    },
    "paper": {
        "collect": {"episodes": 10000, "max_steps": 1000},
        "vision": {"epochs": 10},
        "memory": {"steps": 4000, "seq_len": 999},
        "controller": {"population": 64, "trials": 16, "generations": 2000, "eval_every": 25, "val_episodes": 64},
    },
}

# Per-environment overrides on top of PRESETS (doom arrives with its own file in envs/).
# Doom (paper, section 4): z 64, LSTM 512, the controller sees [z c h], trained in the dream at
# tau 1.15, episodes capped at 2100 steps; exploration is random (survival needs no driving skill;
# the laptop preset holds each random action longer, see below).
_DOOM_CONTROLLER = {"inputs": "zch", "train_in": "dream", "temperature": 1.15, "patience": 0}
ENV_PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "carracing": {},
    # Any gym:<id> env: random exploration (the track follower is CarRacing's), C in the real env.
    # No patience: ending an episode after N steps without reward is CarRacing's shortcut.
    "gym": {preset: {"collect": {"policy": "random"}, "controller": {"patience": 0}} for preset in PRESET_NAMES},
    "doom": {
        "tiny": {
            "collect": {"policy": "random", "episodes": 4, "max_steps": 60},
            "controller": {**_DOOM_CONTROLLER, "trials": 2, "max_steps": 60, "eval_max_steps": 60},
        },
        "laptop": {
            # Actions held up to 60 steps, not 10: with short holds M never sees a long run to a wall
            # and believes "always left" survives (dream 1,264 vs game 178); with long holds its dream
            # matches the game for constant policies and the dream-trained C scored 725 vs 181 on
            # 100 real episodes (docs/iterative.md).
            # 3,000 episodes for M (10,000 steps), V capped at about the frames of 300 per epoch, and
            # the mean of three searches' controllers: 847.7 and 861.5 on the 200 development episodes
            # for two such triples, against 740.7 for the 300-episode, one-search agent
            # (docs/doom-score.md, "The mean of three searches' controllers").
            "collect": {"policy": "random-long", "episodes": 3000, "max_steps": 2100},
            "vision": {"z_size": 64, "epochs": 4, "learning_rate": 1e-3, "max_frames_per_epoch": 105000},
            "memory": {"steps": 10000, "seq_len": 100, "batch_size": 64},
            "controller": {
                **_DOOM_CONTROLLER,
                "searches": 3,
                "combine": "mean",
                "population": 32,
                "trials": 8,
                "generations": 60,
                "max_steps": 2100,
                "eval_max_steps": 2100,
                "eval_every": 10,
                "val_episodes": 8,
            },
        },
        "paper": {
            "collect": {"policy": "random", "episodes": 10000, "max_steps": 2100},
            "vision": {"z_size": 64},
            "memory": {"rnn_size": 512, "seq_len": 500},
            "controller": {**_DOOM_CONTROLLER, "max_steps": 2100, "eval_max_steps": 2100},
        },
    },
}


def make_stage_config(stage: str, env: str, preset: str, overrides: dict[str, Any] | None = None):
    """Build a stage's config: dataclass defaults <- preset <- env preset <- explicit overrides."""
    if env not in ENVS and not env.startswith("gym:"):
        raise ValueError(f"unknown env {env!r}; choose one of {', '.join(ENVS)} or gym:<id>")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}")
    cls = STAGE_CONFIGS[stage]
    values: dict[str, Any] = {}
    values.update(PRESETS[preset].get(stage, {}))
    values.update(ENV_PRESETS.get("gym" if env.startswith("gym:") else env, {}).get(preset, {}).get(stage, {}))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = cls(**values)
    validate(cfg)
    return cfg


def preset_table(stage: str) -> str:
    """The settings of `stage` that differ between presets, as a text table (each command's --help
    ends with it): one column per env and preset, so what a paper run would use is on screen."""
    combos = [(env, preset) for env in ENVS for preset in PRESET_NAMES]
    configs = {c: dataclasses.asdict(make_stage_config(stage, *c)) for c in combos}
    varying = [
        f.name
        for f in dataclasses.fields(STAGE_CONFIGS[stage])
        if len({repr(cfg[f.name]) for cfg in configs.values()}) > 1
    ]
    flags = [f"--{k.replace('_', '-')}" for k in varying]
    name_w, w = max(map(len, flags), default=8) + 1, 12
    span = w * len(PRESET_NAMES)
    lines = [
        " " * name_w + "".join(f" {env} ".center(span - 2, "-").rjust(span) for env in ENVS),
        " " * name_w + "".join(preset.rjust(w) for _ in ENVS for preset in PRESET_NAMES),
    ]
    for k, flag in zip(varying, flags):
        lines.append(flag.ljust(name_w) + "".join(_cell(configs[c][k]).rjust(w) for c in combos))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


WINDOWS = ("inside", "all-steps")  # stage 4's --windows (io/data.py SeriesSampler)
COMBINE = ("best", "mean")  # stage 5's --combine (stages/train_controller.py)

CAN_BE_ZERO = (
    "max_frames_per_epoch",
    "eval_every",
    "heldout_episodes",
    "patience",
    "temperature",
    "pixel_weight",
    "explore",
    "curiosity",
    "kl_tolerance",
    "dropout",
    "dream_dropout",
    "dream_done_shift",
)


def validate(cfg: Any) -> None:
    """Reject sizes that cannot work (zero or negative counts, rates, choices out of range)."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name == "mixed_precision" and v and getattr(cfg, "model", "vae") != "vae":
            raise ValueError("--mixed-precision applies to --model vae (and to M), not to the VAE-GAN")
        if isinstance(v, bool):
            continue
        if (
            isinstance(v, int)
            and f.name not in ("max_frames_per_epoch", "eval_every", "heldout_episodes", "patience")
            and v <= 0
        ):
            raise ValueError(f"--{f.name.replace('_', '-')} must be positive, got {v}")
        if isinstance(v, int) and v < 0:
            raise ValueError(f"--{f.name.replace('_', '-')} must be >= 0, got {v}")
        if isinstance(v, float) and f.name in CAN_BE_ZERO and v < 0:
            raise ValueError(f"--{f.name.replace('_', '-')} must be >= 0, got {v}")
        if isinstance(v, float) and f.name not in CAN_BE_ZERO and v <= 0:
            raise ValueError(f"--{f.name.replace('_', '-')} must be positive, got {v}")
    if isinstance(cfg, CollectConfig):
        if cfg.policy == "controller" and not cfg.agent_dir:
            raise ValueError("--policy controller needs --agent-dir (a data dir with vision/, memory/, controller/)")
        if not 0.0 <= cfg.explore <= 1.0:
            raise ValueError(f"--explore must be in [0, 1], got {cfg.explore}")
    if isinstance(cfg, MemoryConfig):
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"--dropout must be in [0, 1), got {cfg.dropout}")
        if cfg.windows not in WINDOWS:
            raise ValueError(f"--windows must be one of {', '.join(WINDOWS)}, got {cfg.windows!r}")
    if isinstance(cfg, VisionConfig):
        if cfg.model not in ("vae", "vaegan"):
            raise ValueError(f"--model must be 'vae' or 'vaegan', got {cfg.model!r}")
        if cfg.gan not in ("gan", "wgan-gp"):
            raise ValueError(f"--gan must be 'gan' or 'wgan-gp', got {cfg.gan!r}")
    if isinstance(cfg, ControllerConfig):
        if cfg.inputs not in ("zh", "zch", "z"):
            raise ValueError(f"--inputs must be 'zh', 'zch' or 'z', got {cfg.inputs!r}")
        if cfg.train_in not in ("real", "dream"):
            raise ValueError(f"--in must be 'real' or 'dream', got {cfg.train_in!r}")
        if cfg.combine not in COMBINE:
            raise ValueError(f"--combine must be one of {', '.join(COMBINE)}, got {cfg.combine!r}")
        if not 0.0 <= cfg.dream_dropout < 1.0:
            raise ValueError(f"--dream-dropout must be in [0, 1), got {cfg.dream_dropout}")
        if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
            raise ValueError(f"--name must be a plain directory name, got {cfg.name!r}")
