"""Flags, presets and their validation."""

import subprocess
import sys

import pytest

from worldmodels.cli import parse
from worldmodels.config import PRESETS, make_stage_config


def test_preset_values_and_flag_overrides():
    _, cfg, _ = parse("controller", "", ["--preset", "tiny"])
    assert cfg.population == PRESETS["tiny"]["controller"]["population"]
    args, cfg, _ = parse("controller", "", ["--preset", "tiny", "--population", "7", "--inputs", "z", "--seed", "3"])
    assert cfg.population == 7 and cfg.inputs == "z" and args.seed == 3
    assert str(args.data_dir) == "data/carracing-tiny"  # presets other than laptop get their own directory
    _, cfg, _ = parse("collect", "", ["--preset", "tiny", "--no-fast-env"])
    assert cfg.fast_env is False


def test_paper_preset_has_papers_settings():
    v = make_stage_config("vision", "carracing", "paper")
    m = make_stage_config("memory", "carracing", "paper")
    c = make_stage_config("controller", "carracing", "paper")
    assert v.z_size == 32 and m.rnn_size == 256 and m.num_mixtures == 5
    assert c.population == 64 and c.trials == 16


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "pong"], "invalid choice: 'pong'"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--population", "0"], "must be positive"),
        (["--sigma0", "-1"], "must be positive"),
        (["--workers", "0"], "must be positive"),
        (["--inputs", "zc"], "'zh', 'zch' or 'z'"),
        (["--in", "moon"], "'real' or 'dream'"),
        (["--temperature", "-1"], "must be >= 0"),
        (["--name", "../x"], "plain directory name"),
        (["--combine", "median"], "--combine must be one of best, mean"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse("controller", "", argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_every_flag():
    out = subprocess.run(
        [sys.executable, "04_train_rnn.py", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--env",
        "--preset",
        "--data-dir",
        "--seed",
        "--workers",
        "--rnn-size",
        "--num-mixtures",
        "--seq-len",
        "--done-weight",
    ):
        assert flag in out


def test_each_stage_help_shows_what_every_preset_uses(capsys):
    """A paper run's settings are on screen before anyone rents a GPU: each stage's --help ends with the
    presets' values of the settings that differ, read from the presets themselves."""
    import dataclasses

    from worldmodels.config import make_stage_config, preset_table

    for stage, flag, field in (
        ("collect", "--episodes", "episodes"),
        ("vision", "--epochs", "epochs"),
        ("memory", "--seq-len", "seq_len"),
        ("controller", "--population", "population"),
    ):
        row = next(line for line in preset_table(stage).splitlines() if line.startswith(flag + " "))
        expected = [
            str(dataclasses.asdict(make_stage_config(stage, env, preset))[field])
            for env in ("carracing", "doom")
            for preset in ("tiny", "laptop", "paper")
        ]
        assert row.split()[1:] == expected
    from worldmodels.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser("stage 5", "controller").parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--population" in out.split("The presets' controller settings")[1] and "2000" in out
