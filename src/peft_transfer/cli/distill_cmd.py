"""`peft-transfer distill`: distil a student from a teacher LM on a public text corpus (resumable)."""

from __future__ import annotations

import argparse
import json

from ..distillation_recipes import DEFAULT_RECIPE, RECIPES, recipe_settings
from ..errors import PeftTransferError
from .hub_args import add_hub_arguments, maybe_push


def _layers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--keep-layers takes comma-separated integers, got {text!r}") from exc


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="smollm2-135m", help="embedded model name, local folder or Hub id")
    parser.add_argument("--tokenizer", help="tokenizer folder or Hub id (default: the teacher's)")
    parser.add_argument("--corpus", default="wikipedia",
                        help="public text: an embedded set name (movie_plots, guardian_headlines, lee_news, "
                             "wikipedia, bbc_articles), a csv/jsonl/json/parquet file or a saved datasets folder")
    parser.add_argument("--corpus-limit", type=int, help="use at most N texts")
    parser.add_argument("--keep-layers", type=_layers, help="teacher layers to keep, e.g. 0,1,28,29 "
                                                            "(default: first and last --num-keep)")
    parser.add_argument("--num-keep", type=int, default=2)
    parser.add_argument("--out", required=True, help="output folder (a rerun resumes from its last checkpoint)")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--block-size", type=int, default=128, help="tokens per training sequence")
    parser.add_argument("--eval-blocks", type=int, default=16, help="held-out blocks for perplexity")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                        help="preset of the loss terms and freezing (benchmarks/results/student_recipes.md); the "
                        f"flags below override it (default: {DEFAULT_RECIPE})")
    parser.add_argument("--alpha-ce", type=float, help="weight of T²·KL(teacher ‖ student)")
    parser.add_argument("--alpha-lm", type=float, help="weight of the LM loss")
    parser.add_argument("--alpha-cos", type=float, help="weight of the last-hidden-state term")
    parser.add_argument("--alpha-hidden", type=float, help="weight of the cut-point hidden-state term")
    parser.add_argument("--hidden-loss", choices=["cosine", "mse"],
                        help="hidden-state terms: cosine, or squared error relative to the teacher's norm")
    parser.add_argument("--train-below-cut", action="store_true", default=None,
                        help="train only the layers below the first cut (upper layers and head stay the teacher's)")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--top-k", type=int, default=0,
                        help="> 0: cache the teacher's top-k log-probabilities once and train from the cache")
    parser.add_argument("--freeze-embeddings", action="store_true", default=None)
    parser.add_argument("--freeze-lm-head", action="store_true")
    parser.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps")
    parser.add_argument("--max-minutes", type=float,
                        help="wall-clock budget: train this many minutes, the learning rate annealed over them "
                             "(--max-steps is then an upper bound); for a fixed slot of GPU time")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (GPU)")
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default: 1)")
    parser.add_argument("--logging-steps", type=int, help="log the losses every N steps (default: max(1, min(10, "
                                                          "max-steps / 10)))")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: print one log line per logging step (for logs and remote runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..distillation_run import DistillJob, run_distillation

    if args.max_steps < 1:
        raise PeftTransferError("--max-steps must be at least 1.")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise PeftTransferError("--max-minutes must be positive.")
    if args.grad_accum < 1:
        raise PeftTransferError("--grad-accum must be at least 1.")
    recipe = recipe_settings(args.recipe)
    changed = {key: getattr(args, key) for key in recipe
               if getattr(args, key) is not None and getattr(args, key) != recipe[key]}
    recipe.update(changed)
    recipe_name = args.recipe + (" with " + ", ".join(f"{k}={v}" for k, v in changed.items()) if changed else "")
    job = DistillJob(
        teacher=args.teacher, tokenizer=args.tokenizer, corpus=args.corpus, corpus_limit=args.corpus_limit,
        out=args.out, keep_layers=args.keep_layers, num_keep=args.num_keep, max_steps=args.max_steps,
        batch_size=args.batch_size, learning_rate=args.learning_rate, block_size=args.block_size,
        eval_blocks=args.eval_blocks, temperature=args.temperature, top_k=args.top_k,
        freeze_lm_head=args.freeze_lm_head, save_steps=args.save_steps, seed=args.seed, recipe=recipe_name,
        bf16=args.bf16, gradient_accumulation_steps=args.grad_accum, max_minutes=args.max_minutes,
        progress=not args.no_progress, logging_steps=args.logging_steps, **recipe)
    summary = run_distillation(job)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        ppl = ", ".join(f"{k} {v:.2f}" for k, v in summary.perplexity.items())
        print(f"student saved to {args.out} after {summary.steps} steps" + (f"; held-out perplexity: {ppl}" if ppl
                                                                             else ""))
    maybe_push(args, args.out, "student")
    return 0
