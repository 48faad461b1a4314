"""`peft-transfer audit`: LiRA membership-inference audit of private prompt tuning (audit.json, audit.md, roc.png)."""

from __future__ import annotations

import argparse
import os

from ..errors import PeftTransferError
from ..tune.dp_plan import check_dp_flags
from .arg_types import dp_delta, epsilon, layer_list, positive_float, positive_int
from .common import add_column_arguments, add_task_arguments, column_options, task_from_args
from .out_folders import check_folders
from .references import check_model_ref, check_prompt_ref


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="embedded model name, local folder, .gguf file or "
                                                                "Hub id")
    parser.add_argument("--keep-layers", type=layer_list,
                        help="audit on a layer-dropped student of --model, e.g. 0,1,28,29 (default: --model itself)")
    add_task_arguments(parser, prompt_flags="--target-prompt")
    parser.add_argument("--data", help="labelled pool: an embedded set name, a csv/jsonl/json/parquet file or a saved "
                                       "datasets folder; labels as class indices or class names (default: the task's "
                                       "embedded set)")
    add_column_arguments(parser)
    parser.add_argument("--split", default=None, help="split of an embedded set or DatasetDict folder (default: train; "
                                                      "a single file is used whole)")
    parser.add_argument("--pool-size", type=positive_int, default=200,
                        help="examples drawn from --data for the audit pool")
    parser.add_argument("--shadows", type=positive_int, default=8, help="number K of shadow prompts (at least 4)")
    parser.add_argument("--epsilon", type=epsilon, default=8.0, help="DP budget of each shadow ('inf': no DP)")
    parser.add_argument("--delta", type=dp_delta, help="DP delta (default: the tuning default, 1/(10 N))")
    parser.add_argument("--epochs", type=positive_float, default=1.0, help="passes over each shadow's half of the "
                                                                           "pool")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="optimizer steps per shadow, instead of --epochs (default: what --epochs gives)")
    parser.add_argument("--learning-rate", type=positive_float, help="Adam learning rate (default: tune's, 1e-3)")
    parser.add_argument("--batch-size", type=positive_int, help="logical batch size (default: tune's, 16)")
    parser.add_argument("--num-virtual-tokens", type=positive_int, help="prompt length (default: tune's, 20)")
    parser.add_argument("--target-prompt", help="attack this saved prompt instead of each shadow in turn")
    parser.add_argument("--target-members-column", default="member",
                        help="bool column of --data: was the row in the target prompt's training set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool, the halves and the shadows' data order")
    parser.add_argument("--out", required=True, help="output folder (shadows are kept there: rerun to resume)")
    parser.set_defaults(func=run)


def build_tune_args(epsilon: float, out: str, seed: int, delta: float | None = None, epochs: float = 1.0,
                    max_steps: int = -1, learning_rate: float | None = None, batch_size: int | None = None,
                    num_virtual_tokens: int | None = None):
    """A `PrivatePromptConfig` for the shadows from the audit's options."""
    from ..tune.config import PrivatePromptConfig  # heavy (transformers): imported when the audit runs

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
    from ..audit.lira import MIN_SHADOWS  # numpy: not at start-up (every command's --help imports this module)

    if args.shadows < MIN_SHADOWS:  # before loading anything
        raise PeftTransferError(f"--shadows must be at least {MIN_SHADOWS} (got {args.shadows}); the paper uses 8.")
    check_dp_flags(args.epsilon, args.delta, noise_flag=False)
    check_folders(args.out, "audit", [("--model", args.model), ("--data", args.data),
                                       ("--target-prompt", args.target_prompt)])
    check_model_ref(args.model, "--model")
    if args.target_prompt:
        check_prompt_ref(args.target_prompt, "--target-prompt")
    # heavy (torch, transformers, datasets): imported when the command runs, so `--help` stays fast
    import numpy as np

    from ..assets import load_model
    from ..assets.data_files import load_labelled
    from ..audit.lira_audit import run_lira_audit
    from ..student.layers import check_keep_layers, make_student, num_layers
    from ..tasks.position_limits import fit_to_model

    task = task_from_args(args, prompts=[args.target_prompt], default=args.data)
    data = load_labelled(args.data or task.name, split=args.split, task=task, **column_options(args))
    tune_args = build_tune_args(args.epsilon, os.path.join(args.out, "trainer"), args.seed, args.delta,
                                args.epochs, args.max_steps or -1, args.learning_rate, args.batch_size,
                                args.num_virtual_tokens)
    model, tokenizer = load_model(args.model)
    if args.keep_layers:
        check_keep_layers(args.keep_layers, num_layers(model.config), name="--keep-layers")
        model = make_student(model, keep_layers=args.keep_layers)
    n = tune_args.num_virtual_tokens  # the shadows' prompts beside each text, within the model's positions
    task = fit_to_model(task, tokenizer, model, n, f"--num-virtual-tokens {n}" if args.num_virtual_tokens else
                        f"the shadows' {n} virtual tokens (--num-virtual-tokens)")
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
    result = run_lira_audit(model, tokenizer, task, data, num_shadows=args.shadows, tune_args=tune_args,
                            seed=args.seed, out_dir=args.out, pool_size=pool_size, delta=args.delta,
                            target_prompt=args.target_prompt, target_members=members)
    print(result.markdown())
    print(f"wrote {os.path.join(args.out, 'audit.json')}, audit.md and roc.png")
    return 0
