"""`peft-transfer transfer`: move a soft prompt from the student to the target with public texts (resumable)."""

from __future__ import annotations

import argparse
import json

from ..errors import PeftTransferError
from .hub_args import add_hub_arguments, maybe_push


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="folder (or Hub id) of the source prompt p_s")
    parser.add_argument("--student", required=True, help="the model p_s was tuned on (folder, Hub id or embedded "
                                                        "name)")
    parser.add_argument("--target", nargs="+", default=["smollm2-135m"],
                        help="target model(s); several targets give one sub-folder each under --out")
    parser.add_argument("--public", default="movie_plots",
                        help="public unlabelled texts: an embedded set (movie_plots, guardian_headlines, lee_news, "
                             "wikipedia, bbc_articles), a csv/jsonl/json/parquet file or a saved datasets folder")
    parser.add_argument("--public-limit", type=int, default=256, help="use N public texts")
    parser.add_argument("--max-public-words", type=int, default=None,
                        help="cut each public text to its first N words (a step's cost grows with length)")
    parser.add_argument("--task", default=None,
                        help="only for a prompt without a task record (tuned with another tool, e.g. TRL): the task "
                             "it was tuned for, a default task name or a name with --template and --label-words")
    parser.add_argument("--template", help="with --task: the template p_s was tuned with ({text} slot)")
    parser.add_argument("--label-words", help='with --template: label words as JSON, one list per class')
    parser.add_argument("--out", required=True, help="output folder for p_t (a rerun resumes from its checkpoints)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--prompt-init", choices=["text", "source"], default="text")
    parser.add_argument("--monitor-size", type=int, default=32, help="public texts held out for the monitor")
    parser.add_argument("--save-steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.add_argument("--json", action="store_true", help="print the transfer record(s) as JSON")
    add_hub_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..assets import load_model
    from ..data_files import load_texts
    from ..transfer import transfer_prompt
    from ..transfer_config import TransferConfig

    if args.steps < 1:
        raise PeftTransferError("--steps must be at least 1.")
    public = load_texts(args.public, limit=args.public_limit, seed=args.seed, max_words=args.max_public_words)
    student, tokenizer = load_model(args.student)
    targets = [load_model(t)[0] for t in args.target]
    config = TransferConfig(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate, alpha=args.alpha, temperature=args.temperature,
        prompt_init=args.prompt_init, monitor_size=args.monitor_size, save_steps=args.save_steps, seed=args.seed,
        public_dataset_name=args.public,
    )
    task = None
    if args.task or args.template or args.label_words:
        from .common import task_from_args

        args.task = args.task or "custom"
        task = task_from_args(args)
    results = transfer_prompt(args.prompt, student, targets, tokenizer, public, config, task=task,
                              resume=not args.no_resume)
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
        print(f"prompt(s) saved under {args.out}")
    if len(args.target) == 1:
        maybe_push(args, args.out, "prompt")
    elif args.push_to_hub:
        raise PeftTransferError("--push-to-hub takes one target; push each sub-folder with `peft-transfer push`.")
    return 0
