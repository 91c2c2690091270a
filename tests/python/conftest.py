import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# vLLM forks its EngineCore by default; a fork after this process has run torch (HF references)
# deadlocks in the child's first parallel op. scripts/test.sh sets this too; here it also
# covers a bare `pytest`.
os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures import checkpoints  # noqa: E402


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return checkpoints.smollm2()
