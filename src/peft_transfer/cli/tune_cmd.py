"""`peft-transfer tune`: the data owner tunes a soft prompt on private labelled data, optionally with (ε, δ)-DP.

`--out` receives the handover export (adapter, provenance with the DP record, card: what may leave this
machine); checkpoints, logs and the accountant state go to `--work-dir` (default `<out>-work`), which stays.
"""

from __future__ import annotations

import argparse
import json
import math
import os

from ..errors import PeftTransferError
from .arg_types import epsilon, open_unit_interval, positive_float, positive_int
from .common import add_task_arguments, check_out_folder, task_from_args
from .hub_args import add_hub_arguments, maybe_push


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the model to tune on (the student): folder, Hub id, .gguf "
                                                      "file or embedded name (smollm2-135m)")
    parser.add_argument("--data", required=True, help="labelled training data: csv/jsonl/json/parquet file, a saved "
                                                     "datasets folder or an embedded set (rotten_tomatoes, bbc_news); "
                                                     "labels as class indices or class names")
    add_task_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder for the prompt export: the only thing to hand over")
    parser.add_argument("--work-dir", default=None, help="checkpoints, logs and accountant state, which stay on this "
                                                        "machine (default: <out>-work; a rerun resumes from it)")
    parser.add_argument("--epsilon", type=epsilon, default=None, help="target ε of (ε, δ)-DP; omit (or inf) to train "
                                                                      "without DP")
    parser.add_argument("--delta", type=open_unit_interval, default=None,
                        help="δ of (ε, δ)-DP, below 1/N (default: 1/(10 N) for N training examples)")
    parser.add_argument("--noise-multiplier", type=positive_float, default=None,
                        help="DP noise σ instead of --epsilon (ε is then what the accountant reports)")
    parser.add_argument("--max-grad-norm", type=positive_float, default=1.0, help="per-example clip norm under DP")
    parser.add_argument("--accountant", choices=["prv", "rdp"], default="prv", help="privacy accountant")
    parser.add_argument("--stop-at-epsilon", type=epsilon, default=None,
                        help="stop before ε would pass this (at most --epsilon; a resume with more steps stops there)")
    parser.add_argument("--epochs", type=positive_float, default=1.0, help="passes over the training data")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="optimizer steps, instead of --epochs (default: what --epochs gives)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="logical (expected, under DP) batch size")
    parser.add_argument("--physical-batch-size", type=positive_int, default=None,
                        help="micro-batch size, for memory only (default: the whole batch at once)")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--num-virtual-tokens", type=positive_int, default=20, help="length of the soft prompt")
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first N training examples "
                                                                         "(default: all)")
    parser.add_argument("--save-steps", type=positive_int, default=100, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt's data order (never of the DP noise)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.add_argument("--json", action="store_true", help="print the DP record as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.epsilon is not None and not math.isinf(args.epsilon) and args.noise_multiplier is not None:
        raise PeftTransferError("give either --epsilon (σ is then calibrated to spend it) or --noise-multiplier, "
                                "not both.")
    check_out_folder(args.out)
    from .references import check_model_ref

    check_model_ref(args.model, "--model")
    from transformers.trainer_utils import get_last_checkpoint

    from ..assets import load_model
    from ..data_files import load_labelled
    from ..private_prompt_config import PrivatePromptConfig
    from ..private_prompt_trainer import tune_prompt

    task = task_from_args(args, default=args.data)
    eps = None if args.epsilon is None or math.isinf(args.epsilon) else args.epsilon
    work = args.work_dir or f"{os.path.normpath(args.out)}-work"
    config = PrivatePromptConfig(
        output_dir=work, target_epsilon=eps, target_delta=args.delta, noise_multiplier=args.noise_multiplier,
        stop_at_epsilon=args.stop_at_epsilon, max_grad_norm=args.max_grad_norm, accountant=args.accountant,
        num_train_epochs=args.epochs, max_steps=args.max_steps or -1, per_device_train_batch_size=args.batch_size,
        physical_batch_size=args.physical_batch_size, learning_rate=args.learning_rate,
        num_virtual_tokens=args.num_virtual_tokens, save_steps=args.save_steps, seed=args.seed,
    )
    data = load_labelled(args.data, "train", args.limit, task=task)
    resume = None
    if not args.no_resume and os.path.isdir(work):
        resume = get_last_checkpoint(work)
    model, tokenizer = load_model(args.model)
    prompt = tune_prompt(model, tokenizer, task, data, config, resume_from_checkpoint=resume, export_dir=args.out)
    record = prompt.peft_config[prompt.active_adapter].dp
    if args.json:
        print(json.dumps(record.to_dict()))
    elif record.private:
        print(f"tuned with ({record.epsilon:.3g}, {record.delta:.3g})-DP: σ {record.noise_multiplier:.4g}, clip "
              f"{record.max_grad_norm}, q {record.sample_rate:.4g}, {record.steps} steps, {record.accountant}")
    else:
        print("tuned without differential privacy")
    if resume:
        print(f"resumed from {resume}")
    print(f"prompt export (hand over only this) in {args.out}; checkpoints and logs (keep them) in {work}")
    if record.private and record.epsilon > (eps or math.inf) + 1e-6:
        raise PeftTransferError(f"ε {record.epsilon} exceeds the target {eps}.")
    maybe_push(args, args.out, "prompt")
    return 0
