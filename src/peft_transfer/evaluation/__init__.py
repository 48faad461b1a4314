"""Scoring on a labelled test set: classification accuracy / macro-F1, generation ROUGE, the comparison table.

`classification` and `generation` score one model (+ prompt) on a task, `metrics` holds the formulas
(accuracy, macro-F1, Wilson intervals), `comparison` builds the paper's rows (ZS, FullPT, CompPT, Direct,
POST, gap closure) for any task.
"""
