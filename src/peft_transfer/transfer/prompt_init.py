"""Where the target's prompt p_t starts (light: the pipeline's YAML check reads it without loading transformers).

- "text": from the embeddings of p_s's init text, as p_s itself started;
- "source": as a copy of p_s (same hidden size only; the setting of the compressed-student curve,
  benchmarks/results/compressed_students.md, and of the pipeline).
"""

PROMPT_INITS = ("text", "source")
