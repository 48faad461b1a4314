"""`peft-transfer distill`: distil a student from a teacher LM on a public text corpus (resumable)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from ..distill.recipes import DEFAULT_RECIPE, RECIPES, recipe_settings
from ..errors import PeftTransferError
from .arg_types import block_size, layer_list, non_negative_float, non_negative_int, positive_float, positive_int
from .hub_args import add_hub_arguments, maybe_push
from .out_folders import check_folders
from .references import check_model_ref, looks_like_path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="smollm2-135m", help="embedded model name, local folder, .gguf file or "
                                                                  "Hub id")
    parser.add_argument("--tokenizer", help="the teacher's tokenizer from another folder or Hub id (it must map every "
                                            "token as the teacher's does; default: the teacher's own)")
    parser.add_argument("--corpus", default="wikipedia",
                        help="public text: an embedded set name (movie_plots, guardian_headlines, lee_news, "
                             "wikipedia, bbc_articles), a csv/jsonl/json/parquet file or a saved datasets folder; "
                             "several joined by +")
    parser.add_argument("--corpus-limit", type=positive_int, help="use at most N texts (default: all)")
    parser.add_argument("--keep-layers", type=layer_list,
                        help="teacher layers to keep, e.g. 0,1,28,29 (default: the first and last --num-keep of "
                             "whatever the teacher has)")
    parser.add_argument("--num-keep", type=positive_int, default=2,
                        help="without --keep-layers: keep this many first and last teacher layers (the paper: 2)")
    parser.add_argument("--init-student",
                        help="start from this student folder (e.g. made by `peft-transfer compress`) instead of "
                             "teacher layers: a short run heals it")
    parser.add_argument("--out", required=True, help="output folder (a rerun with the same settings resumes from its "
                                                     "last checkpoint; other settings are refused)")
    parser.add_argument("--max-steps", type=positive_int, default=100, help="optimizer steps (a rerun with more "
                                                                            "steps continues)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="blocks per step")
    parser.add_argument("--learning-rate", type=positive_float, default=5e-4, help="AdamW peak learning rate "
                                                                                   "(cosine schedule)")
    parser.add_argument("--block-size", type=block_size, default=128,
                        help="tokens per training sequence (8 up to the teacher's positions)")
    parser.add_argument("--eval-blocks", type=non_negative_int, default=16, help="held-out blocks for perplexity")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                        help="preset of the loss terms and freezing (benchmarks/results/student_recipes.md); the "
                        "flags below override it")
    parser.add_argument("--alpha-ce", type=non_negative_float, help="weight of T²·KL(teacher ‖ student) (default: "
                                                                    "the recipe's)")
    parser.add_argument("--alpha-lm", type=non_negative_float, help="weight of the LM loss (default: the recipe's)")
    parser.add_argument("--alpha-cos", type=non_negative_float, help="weight of the last-hidden-state term (default: "
                                                                     "the recipe's)")
    parser.add_argument("--alpha-hidden", type=non_negative_float, help="weight of the cut-point hidden-state term "
                                                                        "(default: the recipe's)")
    parser.add_argument("--hidden-loss", choices=["cosine", "mse"],
                        help="hidden-state terms: cosine, or squared error relative to the teacher's norm (default: "
                             "the recipe's)")
    parser.add_argument("--train-below-cut", action="store_true", default=None,
                        help="train only the layers below the first cut (upper layers and head stay the teacher's)")
    parser.add_argument("--temperature", type=positive_float, default=2.0, help="softmax temperature of the KL term")
    parser.add_argument("--top-k", type=non_negative_int, default=0,
                        help="> 0: cache the teacher's top-k log-probabilities once and train from the cache")
    parser.add_argument("--freeze-embeddings", action="store_true", default=None,
                        help="keep the input embeddings fixed (default: the recipe's choice)")
    parser.add_argument("--freeze-lm-head", action="store_true", help="keep the LM head fixed")
    parser.add_argument("--save-steps", type=positive_int, default=50, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corpus subset, data order and LM masking")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over, deleting the checkpoints and teacher cache in --out (needed to change "
                             "settings there)")
    parser.add_argument("--max-minutes", type=positive_float,
                        help="wall-clock budget: train this many minutes, the learning rate annealed over them "
                             "(--max-steps is then an upper bound); for a fixed slot of GPU time")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision (GPU)")
    parser.add_argument("--grad-accum", type=positive_int, default=1, help="gradient accumulation steps")
    parser.add_argument("--logging-steps", type=positive_int,
                        help="log the losses every N steps (default: max(1, min(10, max-steps / 10)))")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: print one log line per logging step (for logs and remote runs)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


def check_teacher_flags(args: argparse.Namespace, recipe: dict) -> None:
    """--keep-layers / --num-keep / --top-k and the cut-point terms against the teacher (its config: no weights
    load), before any work; the same checks as `make_student`'s and the trainer's, in the flags' names."""
    from transformers import AutoConfig  # heavy: only when the command runs

    from ..assets.models import resolve_model
    from ..student.layers import check_keep_layers, default_keep_layers, num_layers

    if args.init_student:
        if args.keep_layers is not None:
            raise PeftTransferError("give either --keep-layers (a new student from the teacher) or --init-student "
                                    "(an existing student), not both.")
        return
    try:
        config = AutoConfig.from_pretrained(resolve_model(args.teacher)[0]).get_text_config()
        depth, vocab = num_layers(config), int(config.vocab_size)
    except (OSError, ValueError, AttributeError, TypeError):
        return  # the teacher itself is reported when it loads
    if args.keep_layers is not None:
        keep = check_keep_layers(args.keep_layers, depth, name="--keep-layers")
    else:
        keep = default_keep_layers(depth, args.num_keep, name="--num-keep", keep_name="--keep-layers")
    if args.top_k > vocab:
        raise PeftTransferError(f"--top-k {args.top_k} is more than the teacher's vocabulary ({vocab} tokens): give "
                                f"at most {vocab}, or 0 to train without a teacher cache.")
    gap = any(b != a + 1 for a, b in zip(keep, keep[1:]))
    if (recipe.get("alpha_hidden") or recipe.get("train_below_cut")) and not gap:
        source = "" if args.alpha_hidden or args.train_below_cut else f" (--recipe {args.recipe} turns them on)"
        raise PeftTransferError(f"--alpha-hidden above 0 and --train-below-cut{source} match the student to the "
                                f"teacher where it skips teacher layers, but the kept layers {keep} skip none: keep "
                                "layers with a gap (e.g. --keep-layers 0,3), or set --alpha-hidden 0 and leave "
                                "--train-below-cut off.")


def run(args: argparse.Namespace) -> int:
    check_folders(args.out, "model", [("--teacher", args.teacher), ("--tokenizer", args.tokenizer),
                                       ("--corpus", args.corpus), ("--init-student", args.init_student)])
    check_model_ref(args.teacher, "--teacher")
    if args.tokenizer and looks_like_path(args.tokenizer) and not os.path.isdir(args.tokenizer):
        raise PeftTransferError(f"--tokenizer {args.tokenizer}: no such folder.")
    from ..distill.run import DistillJob, run_distillation  # heavy (torch, transformers): only when it runs

    recipe = recipe_settings(args.recipe)
    changed = {key: getattr(args, key) for key in recipe
               if getattr(args, key) is not None and getattr(args, key) != recipe[key]}
    recipe.update(changed)
    weights = ("alpha_ce", "alpha_lm", "alpha_cos", "alpha_hidden")
    if not any(recipe.get(key) for key in weights):
        given = ", ".join(f"--{k.replace('_', '-')} {recipe.get(k) or 0:g}" for k in weights)
        raise PeftTransferError(f"every loss weight is 0 ({given}): the student would learn nothing; give at least one "
                                f"of them above 0, or leave them to --recipe {args.recipe}.")
    check_teacher_flags(args, recipe)
    recipe_name = args.recipe + (" with " + ", ".join(f"{k}={v}" for k, v in changed.items()) if changed else "")
    job = DistillJob(
        teacher=args.teacher, tokenizer=args.tokenizer, corpus=args.corpus, corpus_limit=args.corpus_limit,
        out=args.out, keep_layers=args.keep_layers, num_keep=args.num_keep, max_steps=args.max_steps,
        batch_size=args.batch_size, learning_rate=args.learning_rate, block_size=args.block_size,
        eval_blocks=args.eval_blocks, temperature=args.temperature, top_k=args.top_k,
        freeze_lm_head=args.freeze_lm_head, save_steps=args.save_steps, seed=args.seed, resume=not args.no_resume,
        recipe=recipe_name, bf16=args.bf16, gradient_accumulation_steps=args.grad_accum, max_minutes=args.max_minutes,
        progress=not args.no_progress, logging_steps=args.logging_steps, init_student=args.init_student, **recipe)
    summary = run_distillation(job)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        ppl = ", ".join(f"{k} {v:.2f}" for k, v in summary.perplexity.items())
        print(f"student saved to {args.out} after {summary.steps} steps" + (f"; held-out perplexity: {ppl}" if ppl
                                                                             else ""))
    maybe_push(args, args.out, "student")
    return 0
