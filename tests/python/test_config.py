"""override_neuron_config merge with vLLM's arguments, checked through vLLM's own config path."""

from __future__ import annotations

import pytest

from tests.fixtures.checkpoints import tiny_llama


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("cfg"))


def engine_config(model_dir, overrides=None, key="override_neuron_config", **args):
    from vllm.engine.arg_utils import EngineArgs

    extra = {} if overrides is None else {key: overrides}
    return EngineArgs(model=str(model_dir), skip_tokenizer_init=True, max_model_len=256,
                      max_num_seqs=4, additional_config=extra, **args).create_engine_config()


def resolved(vllm_config):
    from vllm_neuron_plugin import config

    return config.resolve(vllm_config)


def test_defaults_follow_vllm(model_dir):
    r = resolved(engine_config(model_dir, dtype="float32", block_size=32))
    assert r["seq_len"] == 256 and r["max_context_length"] == 256
    assert r["batch_size"] == 4 and r["pa_block_size"] == 32 and r["torch_dtype"] == "float32"


@pytest.mark.parametrize("key", ["override_neuron_config", "override-neuron-config"])
def test_both_spellings_are_honoured(model_dir, key):
    vc = engine_config(model_dir, {"seq-len": 128, "batch_size": 2}, key=key)
    r = resolved(vc)
    assert r["seq_len"] == 128 and r["batch_size"] == 2
    assert vc.model_config.max_model_len == 128  # vLLM refuses longer prompts up front


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"seq_len": 1024}, "seq_len=1024 contradicts vLLM's --max-model-len (which gives 256)"),
        ({"batch_size": 8}, "batch_size=8 contradicts vLLM's --max-num-seqs (which gives 4)"),
        ({"tp_degree": 2}, "tp_degree=2 contradicts vLLM's --tensor-parallel-size"),
        ({"pa_num_blocks": 10}, "needs vLLM's --num-gpu-blocks-override"),
        ({"max_batch_size": 8}, "max_batch_size=8 contradicts vLLM's --max-num-seqs (which gives 4)"),
        ({"max_context_length": 512}, "max_context_length=512 contradicts vLLM's --max-model-len"),
        ({"speculation_length": 4}, "speculation_length=4 contradicts vLLM's --speculative-config"),
        ({"enable_fused_speculation": True}, "enable_fused_speculation=true contradicts vLLM's "
                                             "--speculative-config model (a draft model)"),
        ({"chunked_prefill_config": None}, "chunked_prefill_config=null contradicts vLLM's "
                                           "--enable-chunked-prefill=True"),
        ({"is_chunked_prefill": False}, "is_chunked_prefill=false contradicts vLLM's "
                                        "--enable-chunked-prefill (which gives true)"),
        ({"sequence_len": 64}, "unknown key 'sequence_len' (did you mean 'seq_len'?)"),
        ({"batch_size": "two"}, "'batch_size' must be an integer >= 1, got \"two\""),
        ({"quantized": True}, "'quantized'=true is not supported by this backend yet (weight "
                              "quantization); supported: false"),
        ("{not json", "malformed JSON"),
        ([1], "must be a JSON object"),
    ],
)
def test_bad_overrides_stop_startup_with_a_reason(model_dir, overrides, message):
    with pytest.raises(Exception) as e:
        engine_config(model_dir, overrides)
    assert message in str(e.value)


NGRAM = {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3}


def test_speculation_follows_vllm(model_dir):
    r = resolved(engine_config(model_dir, speculative_config=NGRAM))
    assert r["speculation_length"] == 3 and r["enable_fused_speculation"] is False
    r = resolved(engine_config(model_dir, speculative_config={"model": str(model_dir),
                                                              "num_speculative_tokens": 2}))
    assert r["speculation_length"] == 2 and r["enable_fused_speculation"] is True


@pytest.mark.parametrize("overrides, spec, message", [
    ({"speculation_length": 2}, NGRAM, "speculation_length=2 contradicts vLLM's --speculative-config "
                                       "num_speculative_tokens (which gives 3)"),
    ({"enable_fused_speculation": True}, NGRAM, "enable_fused_speculation=true contradicts"),
    ({"on_device_sampling_config": {}}, NGRAM, "cannot be combined with on_device_sampling_config"),
    ({"token_generation_buckets": [4, 256], "enable_bucketing": True},
     {"method": "ngram", "num_speculative_tokens": 300, "prompt_lookup_max": 3},
     "leaves no room in the largest token-generation bucket (256)"),
])
def test_bad_speculation_stops_startup_with_a_reason(model_dir, overrides, spec, message):
    with pytest.raises(Exception) as e:
        engine_config(model_dir, overrides, speculative_config=spec)
    assert message in str(e.value)


def test_both_spellings_at_once_is_an_error(model_dir):
    from vllm.engine.arg_utils import EngineArgs

    args = EngineArgs(model=str(model_dir), skip_tokenizer_init=True, max_model_len=256,
                      additional_config={"override_neuron_config": {}, "override-neuron-config": {}})
    with pytest.raises(Exception, match="give one of them"):
        args.create_engine_config()


def test_buckets_bound_the_sequence_and_prompt_lengths(model_dir):
    from vllm_neuron_plugin.platform import NeuronPlatform

    vc = engine_config(model_dir, {"enable_bucketing": True, "context_encoding_buckets": [32, 64],
                                   "token_generation_buckets": [64, 128]})
    assert vc.model_config.max_model_len == 128  # the largest token-generation bucket
    assert NeuronPlatform.max_prompt_len == 64  # the largest context-encoding bucket


def test_torch_dtype_override_sets_vllms_dtype(model_dir):
    import torch

    vc = engine_config(model_dir, {"torch_dtype": "float16"}, dtype="float32")
    assert vc.model_config.dtype == torch.float16
    assert resolved(vc)["torch_dtype"] == "float16"


def test_every_api_reference_key_is_known():
    """Each top-level NeuronConfig attribute of the NxD Inference API reference is in the schema."""
    import re
    from pathlib import Path

    from vllm_neuron_plugin.core import known_neuron_config_keys

    seed = Path(__file__).parents[3] / "shared/seeds/004_14c33813ed785513.txt"
    if not seed.exists():
        pytest.skip(f"{seed} is not beside the checkout")
    text = seed.read_text()
    section = text[text.index("NeuronConfig contains"):text.index("InferenceConfig\n~~~")]
    documented = set(re.findall(r"^  - ``([a-z_0-9]+)``", section, flags=re.M))
    assert len(documented) > 40
    assert documented - set(known_neuron_config_keys()) == set()


def test_readme_table_lists_every_key():
    from pathlib import Path

    from vllm_neuron_plugin.config_table import markdown_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme, "README's NeuronConfig table is stale: run " \
        "python -m vllm_neuron_plugin.config_table --write"


def test_unsupported_architecture_stops_startup_with_the_supported_list(model_dir, tmp_path):
    """Phi-3 is in vLLM's registry but not in this build: refused up front, naming ours."""
    import json
    import shutil

    d = tmp_path / "phi3"
    shutil.copytree(model_dir, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["Phi3ForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception) as e:
        engine_config(d)
    assert ("architecture 'Phi3ForCausalLM' is not supported; supported: LlamaForCausalLM, "
            "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GraniteForCausalLM, "
            "MixtralForCausalLM, Qwen3MoeForCausalLM") in str(e.value)


def test_moe_keys_are_checked_against_the_model(model_dir, tmp_path):
    from tests.fixtures.checkpoints import tiny_model

    with pytest.raises(Exception, match="'capacity_factor' applies to mixture-of-experts models "
                                        r"\(MixtralForCausalLM, Qwen3MoeForCausalLM\); "
                                        "LlamaForCausalLM has no experts"):
        engine_config(model_dir, {"capacity_factor": 1.0})
    qwen = tiny_model("qwen3_moe", tmp_path / "qwen3_moe")  # norm_topk_prob: true
    with pytest.raises(Exception, match="normalize_top_k_affinities=false contradicts the "
                                        "checkpoint: Qwen3MoeForCausalLM takes it from "
                                        "config.json norm_topk_prob, which gives true"):
        engine_config(qwen, {"normalize_top_k_affinities": False})
    r = resolved(engine_config(qwen, {"capacity_factor": 1.0, "normalize_top_k_affinities": True}))
    assert r["capacity_factor"] == 1.0


def test_checkpoint_tensor_errors_name_the_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    from tests.fixtures.checkpoints import tiny_model
    from vllm_neuron_plugin.core import Worker

    d = tiny_model("mixtral", tmp_path / "mixtral")
    tensors = load_file(d / "model.safetensors")
    missing = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
    save_file({k: v for k, v in tensors.items() if k != missing}, d / "model.safetensors")
    with pytest.raises(ValueError, match=f"checkpoint has no tensor '{missing}'"):
        Worker(str(d), '{"torch_dtype": "float32"}')
    save_file({**tensors, "model.layers.0.mlp.shared_expert.weight": tensors[missing].clone()},
              d / "model.safetensors")
    with pytest.raises(ValueError, match="checkpoint has 1 tensor.s. that MixtralForCausalLM does "
                                         r"not use: model\.layers\.0\.mlp\.shared_expert\.weight"):
        Worker(str(d), '{"torch_dtype": "float32"}')


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_vllm_dtype_reaches_the_worker(model_dir, dtype):
    assert resolved(engine_config(model_dir, dtype=dtype))["torch_dtype"] == dtype


def test_unknown_heap_policy_stops_the_worker_naming_the_allowed_ones(model_dir):
    """VNP_HEAP_POLICY is read once per process, so each value gets a fresh one."""
    import os
    import subprocess
    import sys

    code = ("from vllm_neuron_plugin.core import Worker\n"
            f"Worker({str(model_dir)!r}, '{{\"torch_dtype\": \"float32\"}}')\n"
            "print('created')\n")
    for policy, ok in (("glibc", True), ("heap", True), ("glibcc", False)):
        env = {**os.environ, "VNP_HEAP_POLICY": policy}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=300)
        if ok:
            assert r.returncode == 0 and "created" in r.stdout, r.stderr
        else:
            assert r.returncode != 0
            assert ("ValueError: VNP_HEAP_POLICY='glibcc' is not a heap policy; allowed: heap "
                    "(the default), glibc") in r.stderr, r.stderr
