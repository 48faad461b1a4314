"""Data owner: tune a soft prompt on the provider's student with private data, with (ε, δ)-DP, and export it.

    python examples/data_owner_tune.py --student runs/student --data my_reviews.csv --epsilon 8 --out runs/p_s

The private data never leaves this machine: only the export in --out does (a stock PEFT adapter whose
`prompt_provenance.json` records the guarantee: ε, δ, accountant, noise multiplier, clip norm, steps, and its
card). Checkpoints and logs (with the unprivatised training loss) stay in `<out>-work`.
"""

import argparse

from peft_transfer import TransferablePromptConfig, get_task
from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_labelled
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import tune_prompt

parser = argparse.ArgumentParser()
parser.add_argument("--student", required=True, help="student folder or Hub id")
parser.add_argument("--data", default="rotten_tomatoes", help="csv/jsonl with text,label, or an embedded set")
parser.add_argument("--task", default="rotten_tomatoes")
parser.add_argument("--epsilon", type=float, default=8.0, help="inf for no DP")
parser.add_argument("--steps", type=int, default=150)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--limit", type=int, default=None, help="use only the first N training examples")
parser.add_argument("--out", default="runs/p_s", help="the export to hand over (checkpoints go to <out>-work)")
args = parser.parse_args()

student, tokenizer = load_model(args.student)
train = load_labelled(args.data, split="train", limit=args.limit)
config = PrivatePromptConfig(
    output_dir=f"{args.out}-work", target_epsilon=args.epsilon, max_steps=args.steps,
    per_device_train_batch_size=args.batch_size, num_virtual_tokens=20, learning_rate=1e-3,
)
tune_prompt(student, tokenizer, get_task(args.task), train, config, export_dir=args.out)

dp = TransferablePromptConfig.from_pretrained(args.out).dp
guarantee = f"(ε = {dp.epsilon:.2f}, δ = {dp.delta:.2g})-DP, {dp.accountant} accountant" if dp.private \
    else "not private"
print(f"prompt export (hand over only this folder) in {args.out}; {guarantee}")
