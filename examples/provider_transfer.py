"""Provider, stage 3: transfer the data owner's prompt from the student to the target with POST, using only
public, unlabelled text (no private data, labels or validation set).

    python examples/provider_transfer.py --prompt runs/p_s --student runs/student --target smollm2-135m \
        --public movie_plots --out runs/p_t
"""

import argparse

from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_texts
from peft_transfer.transfer.config import TransferConfig
from peft_transfer.transfer.run import transfer_prompt

parser = argparse.ArgumentParser()
parser.add_argument("--prompt", required=True, help="the data owner's export of p_s")
parser.add_argument("--student", required=True)
parser.add_argument("--target", default="smollm2-135m")
parser.add_argument("--public", default="movie_plots", help="public texts: an embedded set name or a file")
parser.add_argument("--num-public", type=int, default=200)
parser.add_argument("--steps", type=int, default=150)
parser.add_argument("--alpha", type=float, default=0.5)
parser.add_argument("--out", default="runs/p_t", help="the export of p_t (checkpoints go to <out>-work)")
args = parser.parse_args()

student, tokenizer = load_model(args.student)
target, _ = load_model(args.target)
public = load_texts(args.public, limit=args.num_public)
config = TransferConfig(output_dir=f"{args.out}-work", alpha=args.alpha, temperature=2.0, max_steps=args.steps,
                        per_device_train_batch_size=8, public_dataset_name=args.public,
                        monitor_size=min(32, len(public) // 4))
transfer_prompt(args.prompt, student, target, tokenizer, public, config, export_dir=args.out)
print(f"transferred prompt saved to {args.out} (load it with PeftModel.from_pretrained(target, {args.out!r}))")
