"""`peft-transfer transfer`: move a soft prompt from the student to the target with public texts (resumable)."""

from __future__ import annotations

import argparse
import json
import os

from ..errors import PeftTransferError
from ..precision import precision_args
from ..transfer.loss_over import LOSS_OVER
from ..transfer.prompt_init import PROMPT_INITS
from .arg_types import non_negative_int, positive_float, positive_int, unit_interval
from .common import add_precision_argument, add_task_arguments, explicit_task, task_from_args
from .hub_args import add_hub_arguments, maybe_push
from .out_folders import check_folders
from .references import check_model_ref, check_prompt_ref


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="folder (or Hub id) of the source prompt p_s")
    parser.add_argument("--student", required=True, help="the model p_s was tuned on (folder, Hub id, .gguf file or "
                                                        "embedded name)")
    parser.add_argument("--target", nargs="+", default=["smollm2-135m"],
                        help="target model(s) (folder, Hub id, .gguf file or embedded name); several targets give "
                             "one sub-folder each under --out")
    parser.add_argument("--public", default="movie_plots",
                        help="public unlabelled texts: an embedded set (movie_plots, guardian_headlines, lee_news, "
                             "wikipedia, bbc_articles), a csv/jsonl/json/parquet file or a saved datasets folder")
    parser.add_argument("--public-limit", type=positive_int, default=256, help="use N public texts")
    parser.add_argument("--max-public-words", type=positive_int, default=None,
                        help="cut each public text to its first N words, as a step's cost grows with length "
                             "(default: whole texts)")
    add_task_arguments(parser, prompt_flags="--prompt", data=False)
    parser.add_argument("--out", required=True, help="output folder for the export of p_t (what may be published)")
    parser.add_argument("--work-dir", default=None,
                        help="checkpoints and the transfer monitor (default: <out>-work; a rerun with the same "
                             "settings resumes from it, other settings are refused)")
    parser.add_argument("--steps", type=positive_int, default=1000, help="transfer steps (a rerun with more steps "
                                                                         "continues)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="public texts per step")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--alpha", type=unit_interval, default=0.5,
                        help="POST's α: weight of the prompt-induced-shift loss L2 (0 = copy the prompted student's "
                             "output, 1 = copy only the shift)")
    parser.add_argument("--temperature", type=positive_float, default=2.0, help="softmax temperature of both KL terms")
    parser.add_argument("--prompt-init", choices=PROMPT_INITS, default="text",
                        help="start p_t from the embeddings of p_s's init text, or as a copy of p_s (same hidden "
                             "size only)")
    parser.add_argument("--loss-over", choices=LOSS_OVER, default="vocab",
                        help="what both KL terms compare: vocab = the whole vocabulary at the label position (the "
                             "paper), classes = the task's class scores only (single-token label words)")
    parser.add_argument("--monitor-size", type=non_negative_int, default=None,
                        help="public texts held out for the monitor, at most a quarter of them (default: 32, or a "
                             "quarter of the public texts when fewer; 0: no monitor)")
    parser.add_argument("--save-steps", type=positive_int, default=100, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the public subset and the data order")
    add_precision_argument(parser)
    parser.add_argument("--no-resume", action="store_true",
                        help="start over, deleting the checkpoints in the work folder (needed to change settings)")
    parser.add_argument("--json", action="store_true", help="print the transfer record(s) as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


SHARED = ("POST compares the two models' outputs token by token, so the student must share the target's "
          "tokenizer: use a student made from the target (peft-transfer distill or compress).")


def check_student(prompt: str, student) -> None:
    """--student must be the model --prompt was tuned on (transfer copies what the prompt does there)."""
    from ..prompts.config import TransferablePromptConfig  # heavy (peft): loaded with the models anyway
    from ..prompts.fit import check_base_model

    config = TransferablePromptConfig.from_pretrained(prompt)
    check_base_model(config, student, f"--prompt {prompt}", f"--student {student.name_or_path}",
                     f"give the model it was made on as --student ({config.base_model_name_or_path}).")


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub and len(args.target) > 1:
        raise PeftTransferError("--push-to-hub takes one target; push each sub-folder with `peft-transfer push`.")
    check_folders(args.out, "prompt" if len(args.target) == 1 else "prompts",
                  [("--prompt", args.prompt), ("--student", args.student), ("--target", args.target),
                   ("--public", args.public)], args.work_dir, uses_work_dir=True)
    check_prompt_ref(args.prompt, "--prompt")
    check_model_ref(args.student, "--student")
    for target in args.target:
        check_model_ref(target, "--target")
    # heavy (torch, transformers, peft): imported when the command runs, so `--help` stays fast
    from ..assets.data_files import load_texts
    from ..assets.models import load_model
    from ..assets.vocabulary import check_same_tokenizer
    from ..transfer.config import TransferConfig
    from ..transfer.monitor import check_monitor_size
    from ..transfer.run import transfer_prompt

    task = task_from_args(args, prompts=[args.prompt]) if explicit_task(args) is not None else None
    public = load_texts(args.public, limit=args.public_limit, seed=args.seed, max_words=args.max_public_words,
                        setting="--public")
    if args.monitor_size is not None:  # given: it must fit the public set (the default shrinks to fit)
        check_monitor_size(args.monitor_size, len(public))
    student, tokenizer = load_model(args.student)
    check_student(args.prompt, student)
    targets = []
    for name in args.target:
        target, target_tokenizer = load_model(name)
        check_same_tokenizer(tokenizer, target_tokenizer, f"--student {args.student}", f"--target {name}", SHARED)
        targets.append(target)
    work = args.work_dir or f"{os.path.normpath(args.out)}-work"
    config = TransferConfig(
        output_dir=work, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, alpha=args.alpha, temperature=args.temperature,
        prompt_init=args.prompt_init, loss_over=args.loss_over,
        monitor_size=32 if args.monitor_size is None else args.monitor_size,
        save_steps=args.save_steps, seed=args.seed, public_dataset_name=args.public, **precision_args(args.precision),
    )
    results = transfer_prompt(args.prompt, student, targets, tokenizer, public, config, task=task,
                              resume=not args.no_resume, export_dir=args.out)
    records = [r.peft_config[r.active_adapter].transfer.to_dict() for r in results]
    if args.json:
        print(json.dumps(records if len(records) > 1 else records[0]))
    else:
        if results[0].peft_config[results[0].active_adapter].dp.recorded is False:
            print("the source prompt carried no DP record (tuned outside peft-transfer): p_t records that, and no "
                  "privacy guarantee is claimed")
        for target, record in zip(args.target, records):
            print(f"{target}: {record['steps']} steps, final loss {record['final_loss']:.4f}, public agreement "
                  f"{record['public_agreement']}")
        print(f"prompt export(s) under {args.out}; checkpoints and the transfer monitor under {work}")
    if len(args.target) == 1:
        maybe_push(args, args.out, "prompt")
    return 0
