"""The C++ extension. libtorch must be loaded (import torch) before it."""

import torch  # noqa: F401  (loads libtorch and libc10 that _C links against)

from vllm_neuron_plugin._C import (  # noqa: E402
    ModuleProbe,
    Worker,
    known_neuron_config_keys,
    linear,
    linear_gemv_max_rows,
    neuron_config_schema,
    neuron_config_summary,
    propose_ngram,
    read_model_config,
    sample,
)

LOGITS_NONE, LOGITS_LAST, LOGITS_ALL = 0, 1, 2


def block_table(block_lists: list[list[int]]) -> torch.Tensor:
    """Rows' block ids as the worker takes them: [rows, longest] int64, padded with vLLM's
    null block 0 (the worker reads only each row's own length)."""
    width = max(map(len, block_lists), default=0)
    if not block_lists:
        return torch.zeros((0, 0), dtype=torch.int64)
    # One tensor from padded lists: a tensor and a copy per row cost ~20 us each, which at 32
    # rows was half a millisecond of every decode step.
    return torch.tensor([b + [0] * (width - len(b)) for b in block_lists], dtype=torch.int64)

__all__ = [
    "LOGITS_ALL",
    "LOGITS_LAST",
    "LOGITS_NONE",
    "ModuleProbe",
    "Worker",
    "block_table",
    "known_neuron_config_keys",
    "linear",
    "linear_gemv_max_rows",
    "neuron_config_schema",
    "neuron_config_summary",
    "propose_ngram",
    "read_model_config",
    "sample",
]
