"""A prompt tuned with another tool as POST's source: TRL's SFTTrainer with a stock PEFT PromptTuningConfig.

    python examples/trl_prompt_to_post.py --student runs/student --target smollm2-135m --task rotten_tomatoes \
        --out runs/trl

1. The data owner tunes a soft prompt on the student with `trl.SFTTrainer` and a stock `PromptTuningConfig`
   (prompt = the task's template around the text, completion = the label word or target). TRL saves a stock
   adapter: no provenance file, no DP record.
2. The provider transfers it with POST. The adapter cannot say which template its inputs were read through,
   so `transfer_prompt` refuses to guess and asks for the task; given it, the transfer runs, and p_t records
   that the source had no DP record (no guarantee is claimed).
"""

import argparse
import os

from datasets import Dataset
from peft import PromptTuningConfig
from trl import SFTConfig, SFTTrainer

from peft_transfer import PeftTransferError, TransferablePromptConfig, get_task
from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_labelled, load_texts
from peft_transfer.transfer.config import TransferConfig
from peft_transfer.transfer.run import transfer_prompt

parser = argparse.ArgumentParser()
parser.add_argument("--student", required=True, help="student folder, Hub id or embedded name")
parser.add_argument("--target", required=True, help="target folder, Hub id or embedded name")
parser.add_argument("--task", default="rotten_tomatoes", help="a default task (classification or bbc_titles)")
parser.add_argument("--data", default=None, help="labelled training data (default: the task's embedded set)")
parser.add_argument("--public", default="movie_plots", help="public unlabelled texts for the transfer")
parser.add_argument("--num-public", type=int, default=64)
parser.add_argument("--limit", type=int, default=512, help="use the first N training examples")
parser.add_argument("--steps", type=int, default=50, help="SFT steps")
parser.add_argument("--transfer-steps", type=int, default=50)
parser.add_argument("--out", default="runs/trl")
args = parser.parse_args()

task = get_task(args.task)
student, tokenizer = load_model(args.student)
tokenized = task.tokenized(tokenizer, masked_lm=False)
train = load_labelled(args.data or task.name, split="train", limit=args.limit)


def prompt_completion(row: dict) -> dict:
    """The task's template around the text; the completion is what the prompt should make the model say."""
    return {"prompt": tokenized.render(row[task.text_column]), "completion": task.answer_text(row)}


sft_data = Dataset.from_list([prompt_completion(row) for row in train])
tokenizer_dir = os.path.join(args.out, "tokenizer")  # PEFT's TEXT init loads the tokenizer from a path
tokenizer.save_pretrained(tokenizer_dir)
peft_config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=20, prompt_tuning_init="TEXT",
                                 prompt_tuning_init_text=task.description, tokenizer_name_or_path=tokenizer_dir)
sft_dir = os.path.join(args.out, "p_s_trl")
trainer = SFTTrainer(
    model=student, processing_class=tokenizer, train_dataset=sft_data, peft_config=peft_config,
    args=SFTConfig(output_dir=os.path.join(args.out, "trl_work"), max_steps=args.steps, per_device_train_batch_size=8,
                   learning_rate=1e-3, logging_steps=10, save_strategy="no", report_to="none", bf16=False,
                   gradient_checkpointing=False),
)
trainer.train()
trainer.model.save_pretrained(sft_dir)  # hand over the adapter alone (TRL's output_dir also holds its training args)
print(f"TRL prompt saved to {sft_dir}: {sorted(os.listdir(sft_dir))}")

student, _ = load_model(args.student)  # a fresh student (SFTTrainer wrapped the one above)
target, _ = load_model(args.target)
public = load_texts(args.public, limit=args.num_public, max_words=48)
config = TransferConfig(output_dir=os.path.join(args.out, "p_t"), max_steps=args.transfer_steps,
                        per_device_train_batch_size=8, public_dataset_name=args.public, save_strategy="no",
                        monitor_size=min(32, args.num_public // 4))
try:
    transfer_prompt(sft_dir, student, target, tokenizer, public, config)
except PeftTransferError as exc:
    print(f"without the task, the transfer asks for it: {exc}")
transfer_prompt(sft_dir, student, target, tokenizer, public, config, task=task)

dp = TransferablePromptConfig.from_pretrained(config.output_dir).dp
print(f"p_t saved to {config.output_dir}; DP record of the source: "
      + ("none (tuned outside peft-transfer), so no guarantee is claimed" if not dp.recorded else str(dp.to_dict())))
