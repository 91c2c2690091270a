"""vLLM settings → NeuronConfig: NxDI defaults, then values derived from vLLM, then the user's
`override_neuron_config`. Validation happens once, in C++; this module only merges and checks
the override against vLLM's own arguments, which C++ never sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OVERRIDE_KEYS = ("override_neuron_config", "override-neuron-config")


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def user_overrides(additional_config: Any) -> dict[str, Any]:
    """The user's override_neuron_config (either spelling), keys normalised to underscores."""
    cfg = additional_config if isinstance(additional_config, dict) else {}
    given = [k for k in OVERRIDE_KEYS if k in cfg]
    if len(given) > 1:
        raise ValueError(
            "additional_config has both 'override_neuron_config' and 'override-neuron-config'; "
            "give one of them"
        )
    if not given:
        return {}
    value = cfg[given[0]]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{given[0]}: malformed JSON: {e}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{given[0]} must be a JSON object, got {type(value).__name__}")
    return {k.replace("-", "_"): v for k, v in value.items()}


def vllm_derived(vllm_config: Any) -> dict[str, Any]:
    """NeuronConfig values that follow from vLLM's arguments (nxdi-semantics, vllm-neuron)."""
    mc, cc = vllm_config.model_config, vllm_config.cache_config
    sc, pc = vllm_config.scheduler_config, vllm_config.parallel_config
    derived = {
        "tp_degree": pc.tensor_parallel_size,
        "batch_size": sc.max_num_seqs,
        "seq_len": mc.max_model_len,
        "torch_dtype": dtype_name(mc.dtype),
        # vLLM owns paged blocks, so the block layout is the only one this path uses.
        "is_block_kv_layout": True,
        "pa_block_size": cc.block_size,
        "is_prefix_caching": bool(cc.enable_prefix_caching),
        # NxDI derives is_chunked_prefill from the presence of this object.
        "chunked_prefill_config": {} if sc.enable_chunked_prefill else None,
    }
    if cc.num_gpu_blocks_override is not None:
        derived["pa_num_blocks"] = cc.num_gpu_blocks_override
    from vllm_neuron_plugin.speculation import spec_config

    if spec := spec_config(vllm_config):
        derived["speculation_length"] = spec.k
        # NxDI's fused speculation is a draft model in the worker; n-gram drafts are not fused.
        derived["enable_fused_speculation"] = spec.method == "draft_model"
    return derived


def check_against_vllm(overrides: dict[str, Any], derived: dict[str, Any]) -> None:
    """A user override that contradicts vLLM's own arguments stops start-up, naming both."""
    rules = [
        # (key, vLLM argument, how the two may relate)
        ("tp_degree", "--tensor-parallel-size", lambda o, v: o == v),
        ("batch_size", "--max-num-seqs", lambda o, v: o <= v),
        ("max_batch_size", "--max-num-seqs", lambda o, v: o <= v),
        ("ctx_batch_size", "--max-num-seqs", lambda o, v: o <= v),
        ("tkg_batch_size", "--max-num-seqs", lambda o, v: o <= v),
        ("seq_len", "--max-model-len", lambda o, v: o <= v),
        ("max_context_length", "--max-model-len", lambda o, v: o <= v),
        ("max_length", "--max-model-len", lambda o, v: o <= v),
        ("speculation_length", "--speculative-config num_speculative_tokens", lambda o, v: o == v),
        ("enable_fused_speculation", "--speculative-config model (a draft model)", lambda o, v: o == v),
        ("pa_block_size", "--block-size", lambda o, v: o == v),
        ("is_prefix_caching", "--enable-prefix-caching", lambda o, v: o == v),
        ("is_chunked_prefill", "--enable-chunked-prefill", lambda o, v: o == v),
    ]
    vllm_values = {**derived, "max_batch_size": derived["batch_size"],
                   "ctx_batch_size": derived["batch_size"], "tkg_batch_size": derived["batch_size"],
                   "max_context_length": derived["seq_len"], "max_length": derived["seq_len"],
                   "speculation_length": derived.get("speculation_length", 0),
                   "enable_fused_speculation": derived.get("enable_fused_speculation", False),
                   "is_chunked_prefill": derived["chunked_prefill_config"] is not None}
    for key, arg, ok in rules:
        if key in overrides and isinstance(overrides[key], (int, bool)):
            if not ok(overrides[key], vllm_values[key]):
                raise ValueError(
                    f"override_neuron_config {key}={json.dumps(overrides[key])} contradicts vLLM's "
                    f"{arg} (which gives {json.dumps(vllm_values[key])}); change one of them"
                )
    if "chunked_prefill_config" in overrides:
        if (overrides["chunked_prefill_config"] is None) != (derived["chunked_prefill_config"] is None):
            raise ValueError(
                "override_neuron_config chunked_prefill_config="
                f"{json.dumps(overrides['chunked_prefill_config'])} contradicts vLLM's "
                f"--enable-chunked-prefill={derived['chunked_prefill_config'] is not None}; "
                "an object needs chunked prefill on, null needs it off"
            )
    if "pa_num_blocks" in overrides:
        if "pa_num_blocks" not in derived:
            raise ValueError(
                "override_neuron_config pa_num_blocks needs vLLM's --num-gpu-blocks-override "
                "with the same value (vLLM allocates the KV blocks)"
            )
        if overrides["pa_num_blocks"] != derived["pa_num_blocks"]:
            raise ValueError(
                f"override_neuron_config pa_num_blocks={overrides['pa_num_blocks']} contradicts "
                f"vLLM's --num-gpu-blocks-override={derived['pa_num_blocks']}"
            )


def merged_json(vllm_config: Any) -> str:
    """NxDI defaults (applied in C++) ← vLLM-derived values ← the user's overrides, as JSON."""
    overrides = user_overrides(vllm_config.additional_config)
    derived = vllm_derived(vllm_config)
    check_against_vllm(overrides, derived)
    return json.dumps({**derived, **overrides})


def summary(vllm_config: Any) -> dict[str, Any]:
    """The resolved config (`resolved` dict), its bucket lists and the keys that have no effect
    here; raises ValueError naming the problem."""
    from vllm_neuron_plugin.core import neuron_config_summary

    # A local checkpoint is checked here, in the front-end, so that an architecture this build
    # does not run stops `vllm serve` before the engine starts (with the supported list).
    model = Path(vllm_config.model_config.model) / "config.json"
    s = neuron_config_summary(merged_json(vllm_config), str(model) if model.is_file() else "")
    s["resolved"] = json.loads(s["resolved_json"])
    return s


def resolve(vllm_config: Any) -> dict[str, Any]:
    """The resolved NeuronConfig as a dict; raises ValueError naming the problem."""
    return summary(vllm_config)["resolved"]
