"""Scoring on a labelled test set: classification accuracy / macro-F1, generation ROUGE, the comparison table.

`scoring.evaluate` is the one entry for any task (the task's type picks how it is scored); `classification`
and `generation` score one model (+ prompt) on their kind of task and `result` is what both return (a
headline number plus the other metrics). `metrics` holds the formulas (accuracy, macro-F1, Wilson intervals),
`comparison` builds the paper's rows (ZS, FullPT, CompPT, Direct, POST, gap closure) for any task.
"""
