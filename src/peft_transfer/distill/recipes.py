"""Named recipes: presets of the loss weights and freezing options of `DistillJob`, and the names of the
ways `compress` replaces a removed block (here, not in `compress`, so the CLI and the pipeline's config check
read them without loading torch).

Distillation recipes were measured against each other on the embedded SmolLM2-135M in
`benchmarks/results/student_recipes.md` (issue #4). Explicit settings given next to a recipe override it.
"""

from __future__ import annotations

from ..errors import PeftTransferError

# what replaces each block `compress` removes: nothing, a linear map folded into the layer before it (least
# squares or cosine objective), or one trained layer
COMPRESS_METHODS = ("drop", "linear-ls", "linear-cos", "trained")

# the fewest tokens per training or calibration block: a 1-token block predicts nothing (loss 0, perplexity nan)
# and a masked LM masks ~15 % of a block, so shorter blocks leave most with no masked token at all
MIN_BLOCK_SIZE = 8

RECIPES: dict[str, dict] = {
    # POST / DistilBERT: T²·KL on full-vocabulary logits + LM loss + cosine on the last hidden state, all trained
    "kd": dict(alpha_ce=5.0, alpha_lm=2.0, alpha_cos=1.0, alpha_hidden=0.0, hidden_loss="cosine",
               freeze_embeddings=False, train_below_cut=False),
    # the same with the (tied) embedding / LM head frozen: no head gradient, no optimiser state for the vocabulary
    "kd-frozen-head": dict(alpha_ce=5.0, alpha_lm=2.0, alpha_cos=1.0, alpha_hidden=0.0, hidden_loss="cosine",
                           freeze_embeddings=True, train_below_cut=False),
    # dense per-token target: the teacher's last hidden state (after the final norm), relative squared error;
    # the LM head is never run in training, the embedding / head frozen
    "last-mse": dict(alpha_ce=0.0, alpha_lm=0.0, alpha_cos=1.0, alpha_hidden=0.0, hidden_loss="mse",
                     freeze_embeddings=True, train_below_cut=False),
    # the same, training only the layers below the cut (upper layers stay the teacher's)
    "last-mse-below-cut": dict(alpha_ce=0.0, alpha_lm=0.0, alpha_cos=1.0, alpha_hidden=0.0, hidden_loss="mse",
                               freeze_embeddings=True, train_below_cut=True),
    # the lower layers learn the teacher's residual stream at the cut (dominated by its massive activations)
    "cut-mse": dict(alpha_ce=0.0, alpha_lm=0.0, alpha_cos=0.0, alpha_hidden=1.0, hidden_loss="mse",
                    freeze_embeddings=False, train_below_cut=True),
}
DEFAULT_RECIPE = "kd-frozen-head"


def recipe_settings(name: str) -> dict:
    """The `DistillJob` fields of recipe `name` (a copy)."""
    if name not in RECIPES:
        raise PeftTransferError(f"unknown distillation recipe {name!r}; choose one of {sorted(RECIPES)}.")
    return dict(RECIPES[name])
