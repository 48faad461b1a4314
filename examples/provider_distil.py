"""Provider, stage 1: distil a small student from a large LM and (optionally) publish it on the Hub.

    python examples/provider_distil.py --teacher smollm2-135m --corpus wikipedia+movie_plots \
        --steps 130 --out runs/student [--push-to-hub my-org/smollm2-student]

The student keeps the teacher's tokenizer, embeddings, final norm and LM head; the folder it writes is a
standard transformers model (AutoModelForCausalLM loads it) with a model card.
"""

import argparse

from peft_transfer.distill.recipes import DEFAULT_RECIPE, RECIPES, recipe_settings
from peft_transfer.distill.run import DistillJob, run_distillation

parser = argparse.ArgumentParser()
parser.add_argument("--teacher", default="smollm2-135m")
parser.add_argument("--corpus", default="wikipedia+movie_plots",
                    help="public text: embedded set names or files, joined by +")
parser.add_argument("--recipe", default=DEFAULT_RECIPE, choices=sorted(RECIPES), help="loss terms and freezing")
parser.add_argument("--keep-layers", default=None,
                    help="e.g. 0,1,28,29 (default: the first 2 and last 2 of the teacher's layers, the paper's rule)")
parser.add_argument("--steps", type=int, default=130)
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--block-size", type=int, default=128)
parser.add_argument("--out", default="runs/student")
parser.add_argument("--push-to-hub", default=None, help="org/name of a Hub model repo")
args = parser.parse_args()

summary = run_distillation(DistillJob(
    teacher=args.teacher, corpus=args.corpus, out=args.out, max_steps=args.steps, batch_size=args.batch_size,
    block_size=args.block_size,
    keep_layers=[int(i) for i in args.keep_layers.split(",")] if args.keep_layers else None,
    **recipe_settings(args.recipe),
))
print(f"student saved to {args.out}: {summary.steps} steps, held-out perplexity {summary.perplexity}")

if args.push_to_hub:
    from peft_transfer.prompts.hub import push_student_to_hub

    print(push_student_to_hub(args.out, args.push_to_hub).repo_url)
