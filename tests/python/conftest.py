import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures import checkpoints  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return checkpoints.smollm2()
