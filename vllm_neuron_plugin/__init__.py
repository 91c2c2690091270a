"""vLLM platform plugin: NxD Inference runtime semantics on a native libtorch worker.

`register()` is vLLM's `vllm.platform_plugins` entry point. It must stay cheap and import
nothing heavy: vLLM calls it while resolving its platform, in every process.
"""

import os

PLATFORM = "vllm_neuron_plugin.platform.NeuronPlatform"


def register() -> str | None:
    # VNP_DISABLE=1 switches the plugin off without uninstalling it.
    if os.environ.get("VNP_DISABLE") == "1":
        return None
    return PLATFORM
