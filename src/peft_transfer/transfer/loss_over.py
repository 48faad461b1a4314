"""What POST's two KL terms compare (light: the pipeline's YAML check reads it without loading transformers).

- "vocab": the next-token distributions over the whole vocabulary at the label position (the paper's loss);
- "classes": the task's class scores only (the label words' logits, `TokenizedTask.class_scores`), so p_t
  copies what p_s does to the decision and not the rest of a compressed student's vocabulary distribution.
  Single-token label words only. Measured on Rotten Tomatoes and BBC in benchmarks/results/transfer_levers.md.
"""

LOSS_OVER = ("vocab", "classes")


def compared(loss_over: str, tokenized, *logits):
    """The label-position logits (each (batch, vocab)) as the KL terms compare them under `loss_over`: as they
    are, or reduced to the task's class scores (`tokenized.class_scores`)."""
    return tuple(map(tokenized.class_scores, logits)) if loss_over == "classes" else logits
