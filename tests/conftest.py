import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tiny_models import make_tokenizer  # noqa: E402


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models and greedy decoding run many small ops, which are far
    (20-40x) slower on two threads when the shared 2-core machine is busy."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tokenizer():
    return make_tokenizer()
