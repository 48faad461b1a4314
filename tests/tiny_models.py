"""Tiny models built from configs, one per supported architecture, and a small real BPE tokenizer.

Shared by all tests: `make_tokenizer()` trains a byte-level BPE tokenizer on a fixed corpus (so label
words such as " positive" are single tokens), `make_model(arch)` builds a randomly initialised model of
that architecture with a few layers and hidden size 32.
"""

from __future__ import annotations

import functools

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

CAUSAL_ARCHS = ("llama", "gemma3", "qwen2", "gpt2")
MASKED_ARCHS = ("roberta", "bert")
ALL_ARCHS = CAUSAL_ARCHS + MASKED_ARCHS
HIDDEN = 32

CORPUS = [
    "Review: a wonderful, moving film with great acting\nSentiment: positive",
    "Review: a dull and boring mess of a movie\nSentiment: negative",
    "Article: the bank raised interest rates again\nTopic: business",
    "Article: the team won the cup final\nTopic: sport",
    "Article: the minister spoke in parliament\nTopic: politics",
    "Article: a new phone with a faster chip\nTopic: tech",
    "Article: the singer released a new album\nTopic: entertainment",
    "Classify the sentiment of the movie review as positive or negative.",
    "the quick brown fox jumps over the lazy dog while the cat sleeps",
    "it was the best of times, it was the worst of times, good and bad, great and terrible",
] * 20


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700, min_frequency=1, show_progress=False,
        special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok.to_str()


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh copy of the tiny BPE tokenizer (pad, unk, bos, eos and mask tokens; right padding)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>", mask_token="<mask>",
        padding_side="right",
    )


def make_config(arch: str, num_layers: int = 2, vocab_size: int | None = None):
    vocab = vocab_size or len(make_tokenizer())
    common = dict(vocab_size=vocab, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    if arch == "llama":
        return LlamaConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                           tie_word_embeddings=True, **common)
    if arch == "mistral":
        return MistralConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             sliding_window=16, **common)
    if arch == "gemma3":
        return Gemma3TextConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                                num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                max_position_embeddings=256, sliding_window=8, sliding_window_pattern=2,
                                query_pre_attn_scalar=8, **common)
    if arch == "qwen2":
        return Qwen2Config(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **common)
    if arch == "gpt2":
        return GPT2Config(n_embd=HIDDEN, n_layer=num_layers, n_head=4, n_positions=256, **common)
    if arch == "roberta":
        return RobertaConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                             num_attention_heads=4, max_position_embeddings=260, type_vocab_size=1, **common)
    if arch == "bert":
        return BertConfig(hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=num_layers,
                          num_attention_heads=4, max_position_embeddings=256, **common)
    raise ValueError(arch)


_MODEL_CLASSES = {
    "llama": LlamaForCausalLM, "mistral": MistralForCausalLM, "gemma3": Gemma3ForCausalLM,
    "qwen2": Qwen2ForCausalLM, "gpt2": GPT2LMHeadModel, "roberta": RobertaForMaskedLM, "bert": BertForMaskedLM,
}


def make_model(arch: str, num_layers: int = 2, seed: int = 0):
    """A randomly initialised tiny model of `arch` in eval mode, float32, attention via sdpa/eager default."""
    torch.manual_seed(seed)
    model = _MODEL_CLASSES[arch](make_config(arch, num_layers))
    model.name_or_path = f"tiny-{arch}"
    model.config._name_or_path = f"tiny-{arch}"
    return model.eval()


def distill_inputs(folder) -> tuple[str, str]:
    """A 4-layer tiny Llama teacher (with its tokenizer) saved to `folder`/teacher and the first 40 lines of
    `CORPUS` as `folder`/corpus.jsonl: what `peft-transfer distill` reads. Returns both paths as strings."""
    import json
    from pathlib import Path

    teacher, corpus = Path(folder) / "teacher", Path(folder) / "corpus.jsonl"
    make_model("llama", num_layers=4).save_pretrained(teacher)
    make_tokenizer().save_pretrained(teacher)
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS[:40]))
    return str(teacher), str(corpus)
