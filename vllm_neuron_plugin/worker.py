"""The vLLM worker: lifecycle, memory and KV spec around the C++ worker."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import torch
from vllm.logger import init_logger
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheSpec
from vllm.v1.worker.worker_base import CompilationTimes, WorkerBase

from vllm_neuron_plugin import config
from vllm_neuron_plugin.core import Worker
from vllm_neuron_plugin.model_runner import NeuronModelRunner
from vllm_neuron_plugin.sampling import HostSampler
from vllm_neuron_plugin.speculation import Proposer, spec_config

logger = init_logger(f"vllm.{__name__}")  # under "vllm", whose handler vLLM configures

# Default KV budget when vLLM is not given --kv-cache-memory-bytes: a host shares its memory
# with everything else, so take at most this much, and at most half of what is available.
DEFAULT_KV_BYTES = 4 << 30


def _model_dir(model: str) -> str:
    if os.path.isdir(model):
        return model
    from huggingface_hub import snapshot_download

    try:  # an HF id already in the local cache; never downloads
        return snapshot_download(model, local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means "not available locally"
        raise ValueError(
            f"model '{model}' is neither a local directory nor in the local HF cache "
            "(vllm-neuron-plugin loads safetensors checkpoints from disk)"
        ) from e


class NeuronWorker(WorkerBase):
    def init_device(self) -> None:
        self.device = torch.device("cpu")

    def load_model(self, *, load_dummy_weights: bool = False) -> None:
        if load_dummy_weights:
            raise ValueError("vllm-neuron-plugin loads real checkpoints only (no dummy weights)")
        model_dir = _model_dir(self.model_config.model)
        start = time.perf_counter()
        spec = spec_config(self.vllm_config)
        draft_dir = _model_dir(spec.draft_dir) if spec and spec.draft_dir else ""
        self.core = Worker(model_dir, config.merged_json(self.vllm_config), self.model_config.seed or 0,
                           draft_dir)
        seconds = time.perf_counter() - start
        # Report the config the worker parsed and runs, not a second resolution of it.
        summary = self.core.config_summary
        resolved = json.loads(summary["resolved_json"])
        logger.info("vllm-neuron-plugin: NeuronConfig %s", json.dumps(resolved, sort_keys=True))
        logger.info("vllm-neuron-plugin: buckets %s", summary["buckets"])
        if summary["no_effect_keys"]:
            logger.info("vllm-neuron-plugin: no effect on this backend (Neuron hardware or "
                        "static-graph knobs): %s", ", ".join(summary["no_effect_keys"]))
        logger.info("vllm-neuron-plugin: weights loaded in %.2f s from %s artifact %s", seconds,
                    "the prepared" if self.core.artifact_reused else "a new",
                    self.core.artifact_dir or "(save_sharded_checkpoint is false)")
        self.skip_warmup = resolved["skip_warmup"]
        self.shape = self.core.model_config
        self.kv_dtype = getattr(torch, resolved["torch_dtype"])
        proposer = None
        if spec:
            proposer = Proposer(self.core, spec, self.cache_config.block_size, self.model_config.max_model_len)
            logger.info("vllm-neuron-plugin: speculative decoding, %s, %d drafts a step%s", spec.method,
                        spec.k, f", draft model {draft_dir}" if draft_dir else
                        f", n-gram {spec.min_n}..{spec.max_n}")
        self.model_runner = NeuronModelRunner(
            self.core, self.cache_config.block_size,
            HostSampler(self.vllm_config, self.shape["vocab_size"]), resolved["output_logits"],
            proposer)

    def get_kv_cache_spec(self) -> dict[str, KVCacheSpec]:
        spec = FullAttentionSpec(
            block_size=self.cache_config.block_size,
            num_kv_heads=self.shape["num_kv_heads"],
            head_size=self.shape["head_dim"],
            dtype=self.kv_dtype,
        )
        return {f"model.layers.{i}.self_attn": spec for i in range(self.shape["num_layers"])}

    def get_supported_kv_cache_layouts(self) -> list[str]:
        # Our KV tensors are per layer [num_blocks, kv_heads, block_size, head_dim]; there is
        # no vLLM attention backend to ask.
        return ["LBNHC"]

    def determine_available_memory(self) -> int:
        if self.cache_config.kv_cache_memory_bytes:
            return int(self.cache_config.kv_cache_memory_bytes * self._target_kv_share())
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        block_bytes = self.get_cache_block_size_bytes()
        # Enough for max_num_seqs full-length sequences (+ vLLM's null block), but no more.
        blocks_for_all = self.scheduler_config.max_num_seqs * math.ceil(
            self.model_config.max_model_len / self.cache_config.block_size
        ) + 1
        budget = min(DEFAULT_KV_BYTES, available // 2, blocks_for_all * (block_bytes + self._draft_block_bytes()))
        return int(budget * self._target_kv_share())

    def _draft_block_bytes(self) -> int:
        return self.core.draft_kv_bytes_per_block(self.cache_config.block_size)

    def _target_kv_share(self) -> float:
        """vLLM sizes blocks by the target's layers only; a draft model's KV takes the same
        blocks, so it gets its share of the budget."""
        target = self.get_cache_block_size_bytes()
        return target / (target + self._draft_block_bytes())

    def initialize_from_config(self, kv_cache_config: Any) -> None:
        self.core.allocate_kv(kv_cache_config.num_blocks, self.cache_config.block_size)
        logger.info(
            "vllm-neuron-plugin: KV cache %d blocks x %d tokens (%.1f MiB%s)",
            kv_cache_config.num_blocks, self.cache_config.block_size,
            kv_cache_config.num_blocks * self.get_cache_block_size_bytes() / 2**20,
            f", draft model {kv_cache_config.num_blocks * self._draft_block_bytes() / 2**20:.1f} MiB"
            if self._draft_block_bytes() else "",
        )

    def initialize_cache(self, num_gpu_blocks: int, num_cpu_blocks: int) -> None:
        self.cache_config.num_gpu_blocks = num_gpu_blocks
        self.cache_config.num_cpu_blocks = num_cpu_blocks

    def compile_or_warm_up_model(self) -> CompilationTimes:
        if not self.skip_warmup:
            logger.info("vllm-neuron-plugin: warm-up took %.2f s", self.core.warm_up())
        return CompilationTimes(language_model=0.0, encoder=0.0)

    def bucket_counts(self) -> dict[str, int]:
        """Steps routed to each bucket since start (LLM.collective_rpc("bucket_counts"))."""
        return dict(self.core.bucket_counts)

    def last_logits(self) -> dict[str, list[float]]:
        """With output_logits: the fp32 logits each request sampled from in the last step
        (LLM.collective_rpc("last_logits")), before any sampling parameter was applied."""
        return {r: t.tolist() for r, t in self.model_runner.last_logits.items()}

    def get_supported_tasks(self) -> tuple[str, ...]:
        return ("generate",)

    def get_cache_block_size_bytes(self) -> int:
        return self.core.kv_bytes_per_block(self.cache_config.block_size)

    def execute_model(self, scheduler_output: Any) -> Any:
        return self.model_runner.execute_model(scheduler_output)

    def sample_tokens(self, grammar_output: Any) -> Any:
        # vLLM calls this only when execute_model returned None (a structured-output step).
        return self.model_runner.sample_tokens(grammar_output)

    def take_draft_token_ids(self) -> Any:
        """Drafts for the next step (speculative decoding), made after this step's tokens."""
        return self.model_runner.take_draft_token_ids()

    def get_model_inspection(self) -> str:
        return f"vllm-neuron-plugin C++ worker: {self.shape}"

    def check_health(self) -> None:
        return None

    def shutdown(self) -> None:
        self.model_runner = None
        self.core = None
