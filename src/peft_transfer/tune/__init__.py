"""Data owner, stage 2: tune a soft prompt on the student with private labelled data, optionally with DP.

`config.PrivatePromptConfig` + `trainer.PrivatePromptTrainer` (Opacus DP-SGD on the prompt only; one trainer
for every task kind: it asks the task for its rows, batches and per-example losses), `dp_plan` (batch / steps /
lr from N, ε and a budget), `settings` (the one place that turns the plan and explicit flags into trainer
settings, used by the CLI and the pipeline), `micro_batches` (length-grouped physical batches) and `step_time`
(a timed estimate before training).
"""
