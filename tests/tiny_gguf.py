"""Write a tiny Llama (or another architecture's header) as a float32 GGUF file, as llama.cpp's converter would."""

from __future__ import annotations

import json

import numpy as np
from gguf import GGUFWriter, TokenType
from tiny_models import make_model, make_tokenizer

EXTRA_TOKEN = "<|endoftext|>"
_LAYER_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
                "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary layout for q/k (transformers reverses it on load)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tokenizer_fields(writer: GGUFWriter) -> None:
    tok = make_tokenizer()
    data = json.loads(tok.backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    # transformers' GGUF reader adds GPT-2's <|endoftext|> to a BPE vocabulary without it: include it here
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])] + [EXTRA_TOKEN]
    special = {tok.pad_token, tok.unk_token, tok.bos_token, tok.eos_token, tok.mask_token, EXTRA_TOKEN}
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType.CONTROL if t in special else TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tok.bos_token_id)
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    writer.add_unk_token_id(tok.unk_token_id)


def write_tiny_llama_gguf(path, num_layers: int = 4, seed: int = 0):
    """Save the tiny Llama `make_model("llama", num_layers, seed)` (with one more token row, for
    EXTRA_TOKEN) as GGUF; returns that model."""
    model = make_model("llama", num_layers=num_layers, seed=seed)
    model.resize_token_embeddings(len(make_tokenizer()) + 1)
    cfg = model.config
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_vocab_size(cfg.vocab_size)
    _tokenizer_fields(writer)
    for name, tensor in model.state_dict().items():
        w = tensor.float().numpy()
        if name == "model.embed_tokens.weight":
            writer.add_tensor("token_embd.weight", w)
        elif name == "model.norm.weight":
            writer.add_tensor("output_norm.weight", w)
        elif name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            part = _LAYER_NAMES[rest.rsplit(".", 1)[0]]
            if part == "attn_q":
                w = _permute(w, cfg.num_attention_heads)
            elif part == "attn_k":
                w = _permute(w, cfg.num_key_value_heads)
            writer.add_tensor(f"blk.{i}.{part}.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


def write_header_only_gguf(path, architecture: str) -> None:
    """A GGUF file of `architecture` with one tensor: enough to be refused by name."""
    writer = GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
