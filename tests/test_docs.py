"""The README stays true: every command it shows parses with the flags it gives, and every module,
file, make target and `worldmodels` command it names exists."""

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_lines(text: str) -> list[str]:
    """The command lines of the ```bash blocks (comments and line continuations handled)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def command_parser(tokens: list[str]):
    """(parser, the command's flags) for a line that runs one of ours, else None."""
    from worldmodels.__main__ import COMMANDS
    from worldmodels.cli import STAGES
    from worldmodels.cli import build_parser as build_cli_parser
    from worldmodels.io.artifacts import SCRIPTS

    scripts = {script: name for name, script in zip(STAGES, SCRIPTS.values())}
    for i, tok in enumerate(tokens):
        if tok in scripts or (tok.endswith(".py") and Path(tok).name in scripts):
            stage = STAGES[scripts[Path(tok).name]][0]
            return build_cli_parser(None, stage), tokens[i + 1 :]
        name = None
        if tok == "-m" and i + 1 < len(tokens) and tokens[i + 1].startswith("worldmodels."):
            name, flags = tokens[i + 1].split(".", 1)[1], tokens[i + 2 :]
        elif i == 0 and (tok == "worldmodels" or tok.endswith("/worldmodels")) and len(tokens) > 1:
            name, flags = tokens[i + 1], tokens[i + 2 :]
        if name is not None:
            name = name.replace("_", "-")
            assert name in COMMANDS, f"README names a command that does not exist: {tok} {name}"
            if name in STAGES:
                return build_cli_parser(None, STAGES[name][0]), flags
            return importlib.import_module(COMMANDS[name][0]).build_parser(), flags
    return None


def our_commands() -> list[str]:
    return [line for line in code_lines(README) if "worldmodels" in line or re.search(r"\b0\d_\w+\.py\b", line)]


@pytest.mark.parametrize("line", our_commands())
def test_readme_commands_parse(line):
    tokens = [t for t in shlex.split(line.replace("[", "").replace("]", "")) if t != "|"]
    found = command_parser(tokens)
    if found is None:  # docker, tensorboard, ... : not ours to parse
        return
    parser, flags = found
    try:
        parser.parse_args(flags)
    except SystemExit as e:
        pytest.fail(f"`{line}` does not parse ({e})")


def test_readme_names_only_what_exists():
    missing = []
    for mod in set(re.findall(r"\bworldmodels(?:\.\w+)+", README)):
        # `worldmodels.envs.dream` style names must import; the fast env id is not a module.
        if importlib.util.find_spec(mod) is None:
            missing.append(mod)
    for path in set(re.findall(r"\b((?:docs|bench|deploy|tests|worldmodels|pretrained)/[\w./-]+\w)", README)):
        if "<" not in path and not path.endswith("-v3") and not (ROOT / path).exists():  # not the env id
            missing.append(path)
    for script in set(re.findall(r"\b(0\d_\w+\.py)\b", README)):
        if not (ROOT / script).exists():
            missing.append(script)
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for target in set(re.findall(r"`make ([\w-]+)", README)):
        if target not in targets:
            missing.append(f"make {target}")
    assert not missing, f"the README names what does not exist: {sorted(missing)}"


def test_fast_env_id_is_registered_on_import_as_the_readme_says():
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401

    assert "`worldmodels/CarRacingFast-v3` (registered when `worldmodels.envs` is imported)" in README
    env = gym.make("worldmodels/CarRacingFast-v3")
    obs, _ = env.reset(seed=0)
    env.close()
    assert obs.shape == (96, 96, 3)


def test_every_command_has_a_parser_with_the_common_vocabulary():
    """Each `worldmodels <command>` is built by the one builder: --help works and the shared flags
    (when the command takes them) have one spelling."""
    from worldmodels.__main__ import COMMANDS
    from worldmodels.cli import STAGES
    from worldmodels.cli import build_parser as build_cli_parser

    for name, (module, _) in COMMANDS.items():
        if name in STAGES:
            p = build_cli_parser(None, STAGES[name][0])
        else:
            p = importlib.import_module(module).build_parser()
        options = {o for a in p._actions for o in a.option_strings}
        assert "--log-level" in options, name  # every command has the common group
        assert not options & {"--model_dir", "--stock-env", "--fast-renderer"}, name
        if "--data-dir" in options:
            assert "--model-dir" in options, name  # the old spelling, hidden


def test_readme_presets_table_is_the_presets():
    """The README's table of presets says what worldmodels/config.py runs, row by row."""
    from worldmodels.config import make_stage_config

    rows = [line for line in README.split("**Presets.**")[1].split("\n\n")[1].splitlines()[2:]]
    assert len(rows) == 6
    for row in rows:
        preset, env, collect, vision, memory, controller, _ = (c.strip() for c in row.strip("|").split("|"))
        c, v, m, k = (make_stage_config(s, env, preset) for s in ("collect", "vision", "memory", "controller"))
        assert collect == f"{c.episodes} ({c.max_steps})", row
        assert vision == f"{v.z_size}, {v.epochs}", row
        assert memory == f"{m.rnn_size}, {m.seq_len}, {m.batch_size}, {m.steps}", row
        dream = " (dream)" if k.train_in == "dream" else ""
        searches = f", {k.searches} searches ({k.combine})" if k.searches > 1 else ""
        assert controller == f"{k.population} x {k.trials} x {k.generations}{dream}{searches}", row
