"""The transferable prompt as an artifact: a stock PEFT adapter plus its provenance, card and handover rules.

`config.TransferablePromptConfig` (PROMPT_TUNING adapter + sidecar provenance), `model` (create, initialise,
load), `card` (model card), `handover` (what may leave a machine) and `hub` (publish prompts and students,
whitelisted file by file; students go through the same handover whitelist, so the Hub lives here). The
provenance records themselves (`peft_transfer.provenance`) and the rerun guard (`peft_transfer.rerun_guard`)
are base modules at the top: tasks, students and every resumable stage use them, not only prompts.
"""
