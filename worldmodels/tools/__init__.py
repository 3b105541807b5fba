"""User-facing commands beyond the five stages: evaluate, play, iterate, sweep_temperature,
export_pretrained, check, report. Each is `worldmodels <command>` (or `python -m worldmodels.<command>`)."""
