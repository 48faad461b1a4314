import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tiny_models import make_tokenizer  # noqa: E402


@pytest.fixture
def tokenizer():
    return make_tokenizer()
