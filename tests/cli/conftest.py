import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from bad_input_env import build_env  # noqa: E402


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """The bad-input tables' tiny models, prompt and files (built once for every table)."""
    return build_env(tmp_path_factory.mktemp("bad-inputs"))
