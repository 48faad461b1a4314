"""An ordinary `Trainer` prompt-tuning script, switched to differentially private prompt tuning.

Only the lines marked `# DP:` differ from the plain version (shown in the comments next to them):
the arguments class, the trainer class and the privacy budget. Everything else - datasets, the training
loop, checkpoints, `trainer.train()`, `trainer.save_model()` - is the usual Trainer workflow.

    python examples/trainer_script_to_private.py --model runs/student --epsilon 8 --out runs/p_s_trainer
"""

import argparse

from peft_transfer import get_task
from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_labelled
from peft_transfer.tune.config import (
    PrivatePromptConfig,  # DP: was `from transformers import TrainingArguments`
)
from peft_transfer.tune.trainer import PrivatePromptTrainer  # DP: was `from transformers import Trainer`

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--epsilon", type=float, default=8.0)
parser.add_argument("--steps", type=int, default=100)
parser.add_argument("--limit", type=int, default=2000)
parser.add_argument("--out", default="runs/p_s_trainer")
args = parser.parse_args()

model, tokenizer = load_model(args.model)
train = load_labelled("rotten_tomatoes", split="train", limit=args.limit)

training_args = PrivatePromptConfig(  # DP: was TrainingArguments(
    output_dir=args.out,
    max_steps=args.steps,
    per_device_train_batch_size=16,
    learning_rate=1e-3,
    logging_steps=10,
    target_epsilon=args.epsilon,  # DP: the privacy budget (δ defaults to 1/(10 N))
    max_grad_norm=1.0,  # DP: per-example clipping norm
)
trainer = PrivatePromptTrainer(  # DP: was Trainer(model=peft_model, args=..., train_dataset=..., data_collator=...)
    model=model,
    args=training_args,
    train_dataset=train,
    task=get_task("rotten_tomatoes"),  # DP: the task replaces the collator and the loss (per-example)
    processing_class=tokenizer,
)
trainer.train()
trainer.save_model(args.out)
trainer.export_prompt(args.out + "-export")  # DP: the handover export (prompt + DP record; no logs, no args)
print(f"saved to {args.out}, export in {args.out}-export; ε = {trainer.dp_record().epsilon:.2f}")
