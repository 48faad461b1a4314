"""Anyone: compare a target's zero-shot accuracy with the student prompt (CompPT), the prompt pasted into the
target (Direct) and the transferred prompt (POST), on a labelled test set.

    python examples/evaluate_prompts.py --target smollm2-135m --student runs/student --source runs/p_s \
        --transferred runs/p_t --data rotten_tomatoes --limit 300 --out runs/compare
"""

import argparse

from peft_transfer import get_task
from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_labelled
from peft_transfer.evaluation.comparison import compare_prompts, comparison_markdown, write_comparison

parser = argparse.ArgumentParser()
parser.add_argument("--target", default="smollm2-135m")
parser.add_argument("--student", default=None)
parser.add_argument("--source", default=None, help="p_s folder")
parser.add_argument("--transferred", default=None, help="p_t folder")
parser.add_argument("--full", nargs="*", default=[], help="prompts tuned on the target (upper bound)")
parser.add_argument("--task", default="rotten_tomatoes")
parser.add_argument("--data", default="rotten_tomatoes")
parser.add_argument("--limit", type=int, default=300)
parser.add_argument("--out", default="runs/compare")
args = parser.parse_args()

target, tokenizer = load_model(args.target)
student = load_model(args.student)[0] if args.student else None
test = load_labelled(args.data, default_split="test", limit=args.limit)  # a single file: all its rows
rows = compare_prompts(target, tokenizer, get_task(args.task), test, student=student, source_prompt=args.source,
                       transferred_prompt=args.transferred, full_prompts=args.full)
write_comparison(rows, args.out)
print(comparison_markdown(rows))
