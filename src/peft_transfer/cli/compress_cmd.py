"""`peft-transfer compress`: a student without long training (layer blocks removed, optionally replaced)."""

from __future__ import annotations

import argparse
import json
import re

from ..distill.recipes import COMPRESS_METHODS
from ..errors import PeftTransferError
from .arg_types import block_size, non_negative_int, positive_float, positive_int, unit_interval
from .out_folders import check_folders
from .references import check_model_ref

DESCRIPTION = (
    "Make a student of a decoder LM in minutes instead of hours of distillation: run the teacher once over public "
    "calibration text (cached, reused by every later run), take out the contiguous block(s) of layers whose two "
    "ends differ least (angular distance, Gromov et al. 2024), and either drop them, replace each by a linear map "
    "folded into the layer before it (ReplaceMe: least squares or cosine objective), or by one layer trained on the "
    "cached activations (LLM-Streamline). The result is a standard transformers folder of the teacher's class; "
    "`peft-transfer distill --init-student DIR` heals it with a short distillation run."
)


def keep_spec(text: str) -> int | list[int]:
    """A layer count ("20") or the kept teacher layers ("0-11,18-29" or "0,1,2,...")."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must keep at least 1 layer, got {text}")
        return value
    layers: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"(\d+)-(\d+)", part)
        if match:
            lo, hi = int(match.group(1)), int(match.group(2))
            if hi < lo:
                raise argparse.ArgumentTypeError(f"range {part} runs backwards")
            layers.extend(range(lo, hi + 1))
        elif re.fullmatch(r"\d+", part):
            layers.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"expected a layer count such as 20 or kept layers such as 0-11,18-29, "
                                             f"got {text!r}")
    if not layers:
        raise argparse.ArgumentTypeError("expected a layer count such as 20 or kept layers such as 0-11,18-29")
    return layers


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="smollm2-135m", help="embedded model name, local folder, .gguf file or "
                                                                  "Hub id (a decoder LM)")
    parser.add_argument("--keep-layers", type=keep_spec, required=True,
                        help="how many teacher layers the student keeps (e.g. 20: the block(s) to take out are "
                             "chosen on the calibration text), or the kept layers themselves (e.g. 0-11,18-29)")
    parser.add_argument("--method", choices=COMPRESS_METHODS, default="linear-cos",
                        help="drop the block(s); replace each by a linear map (least squares / cosine objective) "
                             "folded into the layer before it; or by one trained layer")
    parser.add_argument("--num-blocks", type=positive_int, default=1,
                        help="with a layer count: take out this many separate blocks")
    parser.add_argument("--calibration", default="lee_news+movie_plots+guardian_headlines",
                        help="public calibration text: embedded set names joined by + (see `peft-transfer assets`), "
                             "or a csv/jsonl/json/parquet file with a text column; never the private task data")
    parser.add_argument("--calibration-tokens", type=positive_int, default=40_000,
                        help="tokens the teacher runs over once (the cost: ~5 min per 40k on 2 cores for 135M)")
    parser.add_argument("--block-size", type=block_size, default=128,
                        help="tokens per calibration sequence (8 up to the teacher's positions)")
    parser.add_argument("--max-stored-tokens", type=positive_int,
                        help="keep a seeded subsample of this many token positions (bounds the cache's memory)")
    parser.add_argument("--cache-dir", help="where calibration activations are cached (default: "
                                            "<peft-transfer cache>/calibration)")
    parser.add_argument("--out", required=True, help="output folder for the student (a rerun with the same settings "
                                                     "returns at once; other settings need --no-resume)")
    linear = parser.add_argument_group("linear map (linear-ls, linear-cos)")
    linear.add_argument("--ridge", type=float, default=1e-3,
                        help="least-squares ridge towards the identity, relative to trace(MᵀM)/d")
    linear.add_argument("--ls-weighting", choices=["relative", "none"], default="relative",
                        help="least-squares token weights: relative (1/||target||²: massive-activation tokens do not "
                             "dominate) or none (ReplaceMe's plain least squares)")
    linear.add_argument("--cos-steps", type=non_negative_int, default=300, help="Adam steps of the cosine objective")
    linear.add_argument("--cos-lr", type=positive_float, default=1e-3, help="Adam learning rate of the cosine fit")
    trained = parser.add_argument_group("trained replacement (trained)")
    trained.add_argument("--train-steps", type=non_negative_int, default=300, help="Adam steps")
    trained.add_argument("--train-seconds", type=positive_float, help="stop training after this many seconds")
    trained.add_argument("--train-lr", type=positive_float, default=3e-4, help="Adam learning rate")
    trained.add_argument("--train-batch-tokens", type=positive_int, default=1024, help="tokens per step")
    trained.add_argument("--train-loss", choices=["relative", "mse", "cosine+mse"], default="relative",
                         help="per-token squared error relative to the target's norm, or plain squared error "
                              "(LLM-Streamline; dominated by massive-activation tokens), optionally plus 1 - cos")
    trained.add_argument("--init", choices=["first", "last", "middle"], default="first",
                         help="the teacher layer of the block the replacement starts from")
    parser.add_argument("--held-out", type=unit_interval, default=0.1,
                        help="share of calibration tokens held out to pick and report the fits")
    parser.add_argument("--eval-text", default="wikipedia",
                        help="public text to measure perplexity on (teacher, student, and the same blocks dropped "
                             "without replacement); choose text outside --calibration; 'none': not measured")
    parser.add_argument("--eval-blocks", type=positive_int, default=32, help="blocks of --eval-text")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration mixture, subsample and fits")
    parser.add_argument("--no-resume", action="store_true", help="rebuild even if --out holds a finished student")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def check_keep_flags(args: argparse.Namespace) -> None:
    """--keep-layers (with --num-blocks) against the teacher's depth, from its config (no weights load) before any
    work: the checks `run_compression` makes once the teacher is loaded, in the flags' names."""
    from transformers import AutoConfig  # heavy: only when the command runs

    from ..assets.models import resolve_model
    from ..distill.block_selection import blocks_from_kept, check_blocks, check_keep_count
    from ..student.layers import check_keep_layers, num_layers

    try:
        depth = num_layers(AutoConfig.from_pretrained(resolve_model(args.teacher)[0]).get_text_config())
    except (OSError, ValueError, AttributeError, TypeError):
        return  # the teacher itself is reported when it loads
    given = args.keep_layers if isinstance(args.keep_layers, int) else ",".join(map(str, args.keep_layers))
    try:
        if isinstance(args.keep_layers, int):
            check_keep_count(depth, args.keep_layers, args.num_blocks)
        else:
            check_blocks(depth, blocks_from_kept(depth, check_keep_layers(args.keep_layers, depth, name="layers")))
    except PeftTransferError as exc:
        raise PeftTransferError(f"--keep-layers {given}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    check_folders(args.out, "model", [("--teacher", args.teacher), ("--calibration", args.calibration),
                                       ("--eval-text", args.eval_text)])
    check_model_ref(args.teacher, "--teacher")
    if args.held_out >= 1:
        raise PeftTransferError("--held-out must be below 1 (some calibration tokens must be fitted).")
    if args.ridge < 0:
        raise PeftTransferError(f"--ridge must be 0 or more, got {args.ridge}.")
    check_keep_flags(args)
    # torch and transformers load here, not at import, so `--help` stays fast
    from ..distill.compress import CompressJob, run_compression
    from ..distill.linear_map import LinearMapSettings
    from ..distill.trained_replacement import ReplacementSettings

    job = CompressJob(
        teacher=args.teacher, out=args.out, keep=args.keep_layers, method=args.method, calibration=args.calibration,
        calibration_tokens=args.calibration_tokens, block_size=args.block_size,
        max_stored_tokens=args.max_stored_tokens, num_blocks=args.num_blocks, cache_dir=args.cache_dir,
        linear=LinearMapSettings(ridge=args.ridge, weighting=args.ls_weighting, steps=args.cos_steps,
                                 learning_rate=args.cos_lr, held_out=args.held_out, seed=args.seed),
        replacement=ReplacementSettings(steps=args.train_steps, max_seconds=args.train_seconds,
                                        learning_rate=args.train_lr, batch_tokens=args.train_batch_tokens,
                                        loss=args.train_loss, init=args.init, held_out=args.held_out, seed=args.seed),
        eval_text=None if args.eval_text.lower() == "none" else args.eval_text, eval_blocks=args.eval_blocks,
        seed=args.seed, progress=not args.no_progress, resume=not args.no_resume)
    summary = run_compression(job)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "angular_distance_table"}))
    else:
        blocks = ", ".join(f"{s}-{e - 1} (distance {d:.4f})" for (s, e), d in
                           zip(summary["removed_blocks"], summary["block_distances"], strict=True))
        ppl = summary.get("perplexity") or {}
        print(f"student ({summary['num_layers']} of {summary['teacher_num_layers']} layers, "
              f"{summary['method']}) saved to {args.out} in {summary['build_seconds']:.0f} s; removed layers {blocks}"
              + ("; perplexity: " + ", ".join(f"{k} {v:.2f}" for k, v in ppl.items()) if ppl else ""))
    return 0
