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

__all__ = [
    "LOGITS_ALL",
    "LOGITS_LAST",
    "LOGITS_NONE",
    "ModuleProbe",
    "Worker",
    "known_neuron_config_keys",
    "linear",
    "linear_gemv_max_rows",
    "neuron_config_schema",
    "neuron_config_summary",
    "propose_ngram",
    "read_model_config",
    "sample",
]
