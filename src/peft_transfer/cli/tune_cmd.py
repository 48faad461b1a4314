"""`peft-transfer tune`: the data owner tunes a soft prompt on private labelled data, optionally with (ε, δ)-DP.

`--out` receives the handover export (adapter, provenance with the DP record, card: what may leave this
machine); checkpoints, logs and the accountant state go to `--work-dir` (default `<out>-work`), which stays.
Under `--epsilon` the settings left out come from the DP plan (`peft_transfer.tune.settings`, `tune.dp_plan`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from ..errors import PeftTransferError
from ..precision import precision_args
from ..tune.dp_plan import check_dp_flags
from .arg_types import dp_delta, epsilon, positive_float, positive_int
from .common import add_column_arguments, add_precision_argument, add_task_arguments, column_options, task_from_args
from .hub_args import add_hub_arguments, maybe_push
from .out_folders import check_folders
from .references import check_model_ref

DESCRIPTION = (
    "Tune a soft prompt on private labelled data, optionally with (epsilon, delta)-DP (the data owner's stage; "
    "resumable). Why DP wants large batches: DP-SGD adds noise of std sigma*C to the sum of a batch's clipped "
    "per-example gradients, so the mean gradient carries noise of norm ~ sigma*C*sqrt(d)/B over the prompt's d "
    "coordinates (d = virtual tokens x hidden size), against a signal of at most C. At a fixed epsilon, sigma grows "
    "only slowly with the batch, so for the same examples processed, fewer and larger batches (and a shorter "
    "prompt) carry far less noise per step. With --epsilon, tune therefore plans its logical batch, steps and "
    "learning rate from the data size and the compute budget (--budget-examples), prints the plan and a time "
    "estimate, and uses micro-batches for memory; any of those flags given explicitly wins. Measured in "
    "benchmarks/results/dp_levers.md."
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the model to tune on (the student): folder, Hub id, .gguf "
                                                      "file or embedded name (smollm2-135m)")
    parser.add_argument("--data", required=True, help="labelled training data: csv/jsonl/json/parquet file, a saved "
                                                     "datasets folder or an embedded set (rotten_tomatoes, bbc_news); "
                                                     "labels as class indices or class names")
    add_column_arguments(parser)
    add_task_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder for the prompt export: the only thing to hand over")
    parser.add_argument("--work-dir", default=None, help="checkpoints, logs and accountant state, which stay on this "
                                                        "machine (default: <out>-work; a rerun resumes from it)")
    parser.add_argument("--epsilon", type=epsilon, default=None, help="target ε of (ε, δ)-DP, from 0.01 to 50; omit "
                                                                      "(or inf) to train without DP")
    parser.add_argument("--delta", type=dp_delta, default=None,
                        help="δ of (ε, δ)-DP, below 1/N and at least 1e-10, with --epsilon or --noise-multiplier "
                             "(default: 1/(10 N) for N training examples)")
    parser.add_argument("--noise-multiplier", type=positive_float, default=None,
                        help="DP noise σ instead of --epsilon (ε is then what the accountant reports)")
    parser.add_argument("--max-grad-norm", type=positive_float, default=1.0, help="per-example clip norm under DP")
    parser.add_argument("--accountant", choices=["prv", "rdp"], default="prv", help="privacy accountant")
    parser.add_argument("--stop-at-epsilon", type=epsilon, default=None,
                        help="under DP (--epsilon or --noise-multiplier), stop before ε would pass this (at most "
                             "--epsilon; a resume with more steps stops there)")
    parser.add_argument("--budget-examples", type=positive_int, default=None,
                        help="compute budget in examples processed (steps x batch); with --epsilon the DP plan "
                             "spends it in large batches (default under DP: one epoch, at least 4,096 and at most "
                             "8,192 examples; without DP: --epochs)")
    parser.add_argument("--epochs", type=positive_float, default=None,
                        help="passes over the training data, instead of --budget-examples (default: 1 without DP)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="optimizer steps, instead of --epochs (default: what the budget or --epochs gives)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="logical (expected, under DP) batch size (default: 16 without DP; under --epsilon the "
                             "plan's, e.g. 128 for 10k examples at epsilon 8)")
    parser.add_argument("--physical-batch-size", type=positive_int, default=None,
                        help="micro-batch size, for memory only (default: the whole batch without DP; under "
                             "--epsilon at most 2,048 tokens at --max-length)")
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="Adam learning rate (default: 1e-3 without DP, 1e-2 for the DP plan's few large steps)")
    parser.add_argument("--num-virtual-tokens", type=positive_int, default=None,
                        help="length of the soft prompt (default: 20 without DP, 4 under --epsilon: fewer "
                             "coordinates to noise)")
    parser.add_argument("--max-length", type=positive_int, default=None,
                        help="tokens per example, template included: longer texts are cut at their end, keeping "
                             "the template and the label position, and the number cut is printed (default: the "
                             "task's, 128 for rotten_tomatoes, 160 for bbc_news, 256 for your own)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first N training examples "
                                                                         "(default: all)")
    parser.add_argument("--save-steps", type=positive_int, default=100, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt's data order (never of the DP noise)")
    add_precision_argument(parser)
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.add_argument("--json", action="store_true", help="print the DP record as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.epsilon is not None and not math.isinf(args.epsilon) and args.noise_multiplier is not None:
        raise PeftTransferError("give either --epsilon (σ is then calibrated to spend it) or --noise-multiplier, "
                                "not both.")
    if args.budget_examples and (args.epochs or args.max_steps):
        raise PeftTransferError("give the compute once: --budget-examples, or --epochs, or --max-steps.")
    check_dp_flags(args.epsilon, args.delta, args.noise_multiplier, args.stop_at_epsilon)
    check_folders(args.out, "prompt", [("--model", args.model), ("--data", args.data)], args.work_dir,
                  uses_work_dir=True)
    check_model_ref(args.model, "--model")
    # heavy (torch, transformers, opacus): imported when the command runs, so `--help` stays fast
    from transformers.trainer_utils import get_last_checkpoint

    from ..assets import load_model
    from ..assets.data_files import load_labelled
    from ..prompted_forward import is_masked_lm
    from ..tasks.labels import warn_if_one_class
    from ..tasks.position_limits import fit_to_model
    from ..tune.config import PrivatePromptConfig
    from ..tune.dp_plan import check_noise_multiplier, noise_warning
    from ..tune.trainer import tune_prompt
    from .tune_settings import estimate_line, resolve, truncation_line

    task = task_from_args(args, default=args.data)
    if args.max_length is not None:
        task = dataclasses.replace(task, max_length=args.max_length)
    eps = None if args.epsilon is None or math.isinf(args.epsilon) else args.epsilon
    work = args.work_dir or f"{os.path.normpath(args.out)}-work"
    common = dict(output_dir=work, target_epsilon=eps, target_delta=args.delta, noise_multiplier=args.noise_multiplier,
                  stop_at_epsilon=args.stop_at_epsilon, max_grad_norm=args.max_grad_norm, accountant=args.accountant,
                  save_steps=args.save_steps, seed=args.seed)
    checked = PrivatePromptConfig(**common)  # bad combinations are refused before anything loads
    data = load_labelled(args.data, "train", args.limit, task=task, **column_options(args))
    warn_if_one_class(data, task, f"--data {args.data}")
    delta = checked.resolved_delta(len(data)) if eps else None
    model, tokenizer = load_model(args.model)
    masked = is_masked_lm(model)
    try:
        task.tokenized(tokenizer, masked_lm=masked)  # a --max-length that leaves no room for text is refused here
    except PeftTransferError as exc:
        if args.max_length is None:
            raise
        raise PeftTransferError(f"{exc} Raise --max-length {args.max_length} above the template's own "
                                "tokens.") from None
    settings = resolve(args, len(data), model.get_input_embeddings().weight.shape[1], task.max_length, delta)
    virtual = (f"--num-virtual-tokens {args.num_virtual_tokens}" if args.num_virtual_tokens else
               f"the prompt's {settings.num_virtual_tokens} virtual tokens (--num-virtual-tokens)")
    task = fit_to_model(task, tokenizer, model, settings.num_virtual_tokens, virtual, "--max-length",
                        given=args.max_length is not None)  # prompt + text within the model's positions
    config = PrivatePromptConfig(
        **common, num_train_epochs=settings.num_train_epochs, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size, physical_batch_size=settings.physical_batch_size,
        learning_rate=settings.learning_rate, num_virtual_tokens=settings.num_virtual_tokens,
        **precision_args(args.precision))
    if args.noise_multiplier is not None and args.stop_at_epsilon is None:  # σ given: does it promise anything?
        steps = settings.max_steps if settings.max_steps > 0 else math.ceil(
            settings.num_train_epochs * max(1, len(data) // settings.batch_size))
        check_noise_multiplier(args.noise_multiplier, settings.batch_size / len(data), steps,
                               checked.resolved_delta(len(data)))
    texts = list(data[task.text_column])
    if settings.plan is not None:
        print(settings.plan.describe(eps) + f"; {settings.num_virtual_tokens} virtual tokens, micro-batches of "
              f"{settings.physical_batch_size}")
        warning = noise_warning(settings.plan)
        if warning:
            print(warning, file=sys.stderr)
    print(truncation_line(task, tokenizer, texts, masked))
    examples = settings.max_steps * settings.batch_size if settings.max_steps > 0 else math.ceil(
        settings.num_train_epochs * len(data))
    print(estimate_line(model, tokenizer, task, texts, settings, examples, config.bf16), flush=True)
    resume = None
    if not args.no_resume and os.path.isdir(work):
        resume = get_last_checkpoint(work)
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
