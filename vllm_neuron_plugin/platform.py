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

# SamplingParams fields the worker does not honour yet, with their neutral values. A request
# that sets one is refused with HTTP 400 instead of being silently sampled without it.
_UNSUPPORTED_SAMPLING = {
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repetition_penalty": 1.0,
    "min_p": 0.0,
    "min_tokens": 0,
    "logprobs": None,
    "prompt_logprobs": None,
    "logit_bias": None,
    "allowed_token_ids": None,
    "bad_words": None,
    "structured_outputs": None,
}


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

    # The largest context-encoding bucket of the config this process resolved last.
    max_prompt_len: int | None = None

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
        for name, neutral in _UNSUPPORTED_SAMPLING.items():
            value = getattr(params, name, neutral)
            if value not in (neutral, [], {}):
                raise VLLMValidationError(
                    f"sampling parameter '{name}'={value!r} is not supported by "
                    "vllm-neuron-plugin yet; supported: temperature, top_k, top_p, seed, n, "
                    "max_tokens, stop, stop_token_ids, ignore_eos",
                    parameter=name,
                    value=value,
                )
