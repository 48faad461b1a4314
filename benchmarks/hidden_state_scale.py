"""Issue #4: scale of SmolLM2-135M hidden states by depth (why a residual-stream MSE at the cut is a poor target).

    .venv/bin/python benchmarks/hidden_state_scale.py

Per layer: median / max token norm, the mean norm at position 0 (the attention sink), the four largest dims.
Output pasted into results/student_recipes_analysis.md.
"""
import torch

from peft_transfer.assets import load_model, load_public_texts

m, tok = load_model("smollm2-135m")
texts = list(load_public_texts("movie_plots", limit=8)["text"])
x = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=128)
with torch.no_grad():
    out = m(**x, output_hidden_states=True, logits_to_keep=1)
for L in (2, 10, 20, 26, 28, 30):
    h = out.hidden_states[L]
    n = h.norm(dim=-1)
    dims = h.abs().mean((0, 1))
    top = dims.topk(4)
    print(L, f"tok-norm median {n.median():.1f} max {n.max():.1f} pos0 {n[:, 0].mean():.1f}", "top dims",
          top.indices.tolist(), [round(v, 1) for v in top.values.tolist()], f"median dim {dims.median():.2f}")
w = m.model.layers[28].input_layernorm.weight
print("ln28 weight on top dims", w[top.indices].tolist(), "median", w.abs().median().item())
