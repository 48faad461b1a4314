"""What a task is: a template with a text slot and either label words (classification) or a free-text target.

`classification` and `generation` are the two task kinds (a config-like description, bound to a tokenizer by
`task.tokenized`); `labels` reads labels as class indices, `label_scoring` scores label words of any length,
`sequence_rows` builds teacher-forced rows, `decoding` produces greedy continuations, `defaults` holds the
embedded data sets' tasks. Stages ask the task what to do instead of branching on its kind.
"""
