"""Issue #4: held-out perplexity of undistilled 4-layer students of SmolLM2-135M, by kept layers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/student_layer_choice.py

Output pasted into results/student_recipes_analysis.md.
"""
import torch

from peft_transfer.assets import load_model
from peft_transfer.assets.data_files import load_texts
from peft_transfer.distill.data import perplexity, prepare_blocks, split_held_out
from peft_transfer.student.layers import make_student

torch.manual_seed(0)
teacher, tok = load_model("smollm2-135m")
corpus = "wikipedia+movie_plots+lee_news+guardian_headlines"
blocks = prepare_blocks(load_texts(corpus, seed=0)["text"], tok, 128)
_, held = split_held_out(blocks, 16)
print("blocks", len(blocks), "teacher", perplexity(teacher, tok, held), flush=True)
for keep in ([0,1,28,29],[0,1,2,29],[0,27,28,29],[0,1,27,29],[0,2,28,29],[0,1,2,3],[0,15,28,29]):
    s = make_student(teacher, keep)
    print(keep, round(perplexity(s, tok, held), 1), flush=True)
