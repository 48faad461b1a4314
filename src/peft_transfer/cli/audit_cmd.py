"""`peft-transfer audit`: LiRA membership-inference audit of private prompt tuning (audit.json, audit.md, roc.png)."""

from __future__ import annotations

import argparse
import math

from .common import add_task_arguments, task_from_args


def _epsilon(value: str) -> float:
    if value.lower() in ("inf", "infinity", "none"):
        return math.inf
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("epsilon must be positive (or 'inf' for no DP)")
    return number


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="embedded model name, local folder or Hub id")
    parser.add_argument("--keep-layers", help="audit on a layer-dropped student of --model, e.g. 0,1,28,29")
    add_task_arguments(parser)
    parser.add_argument("--data", help="labelled pool: an embedded set name, a csv/jsonl file or a saved datasets "
                                       "folder (default: the task's embedded set)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--pool-size", type=int, default=200, help="examples drawn from --data for the audit pool")
    parser.add_argument("--shadows", type=int, default=8, help="number K of shadow prompts (at least 4)")
    parser.add_argument("--epsilon", type=_epsilon, default=8.0, help="DP budget of each shadow ('inf': no DP)")
    parser.add_argument("--delta", type=float, help="DP delta (default: the tuning default)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="optimizer steps per shadow (overrides --epochs)")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-virtual-tokens", type=int)
    parser.add_argument("--target-prompt", help="attack this saved prompt instead of each shadow in turn")
    parser.add_argument("--target-members-column", default="member",
                        help="bool column of --data: was the row in the target prompt's training set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder (shadows are kept there: rerun to resume)")
    parser.set_defaults(func=run)


def build_tune_args(epsilon: float, out: str, seed: int, delta: float | None = None, epochs: float = 1.0,
                    max_steps: int = -1, learning_rate: float | None = None, batch_size: int | None = None,
                    num_virtual_tokens: int | None = None):
    """A `PrivatePromptConfig` for the shadows from the audit's options."""
    from ..errors import PeftTransferError

    try:
        from ..private_prompt_config import PrivatePromptConfig
    except ImportError as exc:
        raise PeftTransferError("Private prompt tuning (private_prompt_config) is not in this install.") from exc
    values = {"output_dir": out, "seed": seed, "num_train_epochs": epochs, "max_steps": max_steps,
              "target_epsilon": epsilon, "report_to": "none"}
    if delta is not None:
        values["target_delta"] = delta
    if learning_rate is not None:
        values["learning_rate"] = learning_rate
    if batch_size is not None:
        values["per_device_train_batch_size"] = batch_size
    if num_virtual_tokens is not None:
        values["num_virtual_tokens"] = num_virtual_tokens
    return PrivatePromptConfig(**values)


def run(args: argparse.Namespace) -> int:
    import os

    import numpy as np

    from ..assets import load_model
    from ..audit import run_lira_audit
    from ..audit.lira import MIN_SHADOWS
    from ..data_files import load_labelled
    from ..errors import PeftTransferError

    if args.shadows < MIN_SHADOWS:  # before loading anything
        raise PeftTransferError(f"--shadows must be at least {MIN_SHADOWS} (got {args.shadows}); the paper uses 8.")
    task = task_from_args(args)
    data = load_labelled(args.data or task.name, split=args.split)
    model, tokenizer = load_model(args.model)
    if args.keep_layers:
        from ..student import make_student

        try:
            layers = [int(x) for x in args.keep_layers.split(",")]
        except ValueError as exc:
            raise PeftTransferError(f"--keep-layers must be comma-separated integers (got {args.keep_layers!r}).") \
                from exc
        model = make_student(model, keep_layers=layers)
    members = None
    if args.target_prompt:
        if args.target_members_column not in data.column_names:
            raise PeftTransferError(
                f"--target-prompt needs a bool column {args.target_members_column!r} in --data saying which rows "
                "the prompt was trained on (set it with --target-members-column)."
            )
        members = np.asarray(data[args.target_members_column], dtype=bool)
        pool_size = None  # membership is per row: the whole data set is the pool
    else:
        pool_size = args.pool_size
    tune_args = build_tune_args(args.epsilon, os.path.join(args.out, "trainer"), args.seed, args.delta,
                                args.epochs, args.max_steps, args.learning_rate, args.batch_size,
                                args.num_virtual_tokens)
    result = run_lira_audit(model, tokenizer, task, data, num_shadows=args.shadows, tune_args=tune_args,
                            seed=args.seed, out_dir=args.out, pool_size=pool_size, delta=args.delta,
                            target_prompt=args.target_prompt, target_members=members)
    print(result.markdown())
    print(f"wrote {os.path.join(args.out, 'audit.json')}, audit.md and roc.png")
    return 0
