"""`worldmodels <command> [flags]` (or `python -m worldmodels <command>`): one entry point for every
command. `worldmodels --help` lists them; `worldmodels <command> --help` shows a command's flags."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "collect": ("worldmodels.stages.collect", "stage 1: exploration rollouts (01_generate_data.py)"),
    "train-vae": ("worldmodels.stages.train_vae", "stage 2: V, the ConvVAE or VAE-GAN (02_train_vae.py)"),
    "encode": ("worldmodels.stages.encode", "stage 3: encode the rollouts with V (03_generate_rnn_data.py)"),
    "train-rnn": ("worldmodels.stages.train_rnn", "stage 4: M, the MDN-RNN (04_train_rnn.py)"),
    "train-controller": ("worldmodels.stages.train_controller", "stage 5: C by CMA-ES (05_train_controller.py)"),
    "evaluate": ("worldmodels.tools.evaluate", "score a saved agent or the random policy on held-out episodes"),
    "play": ("worldmodels.tools.play", "film the agent in the real env (beside V's view) or in the dream"),
    "serve": ("worldmodels.tools.serve", "play and inspect a trained world model (its dream, the game) in the browser"),
    "iterate": ("worldmodels.tools.iterate", "the paper's iterative training, in rounds"),
    "sweep-temperature": ("worldmodels.tools.sweep_temperature", "the paper's Table 2: C trained at several taus"),
    "export-pretrained": ("worldmodels.tools.export_pretrained", "package a finished run with its model card"),
    "check": ("worldmodels.tools.check", "check a data directory against the artifact contracts"),
    "report": ("worldmodels.tools.report", "rewrite a run's report.md"),
    "results": ("worldmodels.tools.results", "rewrite docs/results.md from the results files in results/"),
    "compare-vision": ("worldmodels.experiments.compare_vision", "experiment: VAE vs VAE-GAN on one run's data"),
    "diagnose-dream": ("worldmodels.experiments.diagnose_dream", "experiment: constant policies, dream vs game"),
    "toy-vaegan": ("worldmodels.experiments.toy_vaegan", "experiment: the VAE-GAN idea on a 2-D toy"),
    "revalidate": ("worldmodels.experiments.revalidate", "experiment: what fewer validation tracks would have kept"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    tail = "`worldmodels <command> --help` lists a command's flags."
    return f"usage: worldmodels <command> [flags]\n\ncommands:\n{rows}\n\n{tail}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name = argv[0].replace("_", "-")
    if name not in COMMANDS:
        print(f"worldmodels: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from worldmodels.cli import STAGES, stage_main

    if name in STAGES:
        return stage_main(name, argv[1:], importlib.import_module(COMMANDS[name][0]).__doc__)
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
