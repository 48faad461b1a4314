"""Provider, stage 1: distil a student from its teacher on public text (a config + trainer pair).

`config.DistillationConfig` + `trainer.DistillationTrainer` (the KD loss of `loss`), the token blocks of
`data`, the teacher's top-k logit cache (`teacher_cache`), named loss presets (`recipes`), a wall-clock
budget (`budget`), a JSON-lines loss log (`training_log`) and the resumable end-to-end job `run`
(teacher name + corpus -> student folder). Building the student itself (which layers it keeps) is
`peft_transfer.student`, one floor down, because the shipped student in `assets` needs it too.
"""
