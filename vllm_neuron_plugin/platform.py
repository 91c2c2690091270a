"""The vLLM Platform: a host (CPU) device whose model runs in our C++ worker."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from vllm.logger import init_logger
from vllm.platforms.interface import Platform, PlatformEnum

if TYPE_CHECKING:
    from vllm.config import VllmConfig

logger = init_logger(f"vllm.{__name__}")  # under "vllm", whose handler vLLM configures

WORKER = "vllm_neuron_plugin.worker.NeuronWorker"

class NeuronPlatform(Platform):
    _enum = PlatformEnum.OOT
    device_name = "cpu"
    device_type = "cpu"
    dispatch_key = "CPU"
    dist_backend = "gloo"
    simple_compile_backend = "eager"

    @classmethod
    def is_cpu(cls) -> bool:
        # The model runs on the host. vLLM uses this for its CPU batch defaults, to leave the
        # thread count alone, and to skip accelerator cache calls at shutdown.
        return True

    @classmethod
    def get_device_name(cls, device_id: int = 0) -> str:
        return "cpu"

    @classmethod
    def get_device_total_memory(cls, device_id: int = 0) -> int:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    @classmethod
    def is_pin_memory_available(cls) -> bool:
        return False  # a CPU-only torch raises on pin_memory=True

    @classmethod
    def inference_mode(cls):
        return torch.no_grad()

    @classmethod
    def manual_seed_all(cls, seed: int) -> None:
        pass

    @classmethod
    def set_device(cls, device: torch.device) -> None:
        pass

    @classmethod
    def import_kernels(cls) -> None:
        pass  # vLLM is built with VLLM_TARGET_DEVICE=empty: there is no vllm._C to import

    @classmethod
    def import_ir_kernels(cls) -> None:
        pass

    @classmethod
    def check_and_update_config(cls, vllm_config: VllmConfig) -> None:
        # Called for default configs too, and twice when the engine core is its own process.
        if vllm_config.model_config is None:
            return
        from vllm.config import CompilationMode

        from vllm_neuron_plugin import config

        pc, sc = vllm_config.parallel_config, vllm_config.scheduler_config
        if pc.worker_cls == "auto":
            pc.worker_cls = WORKER
        if pc.pipeline_parallel_size != 1:
            raise ValueError("vllm-neuron-plugin does not support pipeline parallelism yet")
        if sc.async_scheduling:
            logger.info("vllm-neuron-plugin: async scheduling disabled (the worker runs steps in order)")
        sc.async_scheduling = False
        cc = vllm_config.compilation_config
        cc.mode = CompilationMode.NONE
        cc.cudagraph_capture_sizes = []

        summary = config.summary(vllm_config)
        resolved, mc = summary["resolved"], vllm_config.model_config
        # The longest sequence the config runs: seq_len, max_length and the largest
        # token-generation bucket all bound it; vLLM then never schedules past it.
        limit = min(resolved["seq_len"], resolved["max_length"], summary["token_generation_buckets"][-1])
        if limit < mc.max_model_len:
            logger.info("vllm-neuron-plugin: max_model_len lowered from %d to %d (seq_len, "
                        "max_length, largest token-generation bucket)", mc.max_model_len, limit)
            mc.max_model_len = limit
        if config.dtype_name(mc.dtype) != resolved["torch_dtype"]:
            logger.info("vllm-neuron-plugin: dtype %s from override_neuron_config torch_dtype",
                        resolved["torch_dtype"])
            mc.dtype = getattr(torch, resolved["torch_dtype"])
        cls.max_prompt_len = summary["context_encoding_buckets"][-1]
        cls.on_device_sampling = resolved["on_device_sampling_config"]

    # From the config this process resolved last: the largest context-encoding bucket, and
    # NxDI's on_device_sampling_config (None: vLLM's sampling semantics).
    max_prompt_len: int | None = None
    on_device_sampling: dict[str, Any] | None = None

    @classmethod
    def validate_request(cls, processed_inputs: Any, params: Any) -> None:
        from vllm.exceptions import VLLMValidationError
        from vllm.sampling_params import SamplingParams

        if not isinstance(params, SamplingParams):
            raise VLLMValidationError("vllm-neuron-plugin serves generation requests only")
        prompt = processed_inputs.get("prompt_token_ids") if isinstance(processed_inputs, dict) else None
        if prompt is not None and cls.max_prompt_len and len(prompt) > cls.max_prompt_len:
            raise VLLMValidationError(
                f"prompt has {len(prompt)} tokens, more than the largest context-encoding bucket "
                f"({cls.max_prompt_len} tokens); shorten the prompt or raise "
                "context_encoding_buckets / max_context_length in override_neuron_config",
                parameter="prompt",
                value=len(prompt),
            )
        if cls.on_device_sampling is not None:
            cls._validate_on_device(params, cls.on_device_sampling)

    @staticmethod
    def _validate_on_device(params: Any, ods: dict[str, Any]) -> None:
        """NxDI's on-device sampler has only top-k, top-p and temperature (nxdi-semantics §8.5)."""
        from vllm.exceptions import VLLMValidationError

        from vllm_neuron_plugin.sampling import host_params

        if names := host_params(params):
            name = names[0]
            raise VLLMValidationError(
                f"sampling parameter '{name}' is not available with on_device_sampling_config "
                "(NxDI's on-device sampler applies temperature, top_k and top_p only); leave "
                "on_device_sampling_config out of override_neuron_config to use vLLM's sampler",
                parameter=name, value=getattr(params, name, None))
        if params.top_k is not None and params.top_k > ods["global_topk"]:
            raise VLLMValidationError(
                f"top_k={params.top_k} is above on_device_sampling_config.global_topk="
                f"{ods['global_topk']}; allowed: -1 or 0 (all of the global top-k pool) or 1.."
                f"{ods['global_topk']}",
                parameter="top_k", value=params.top_k)
