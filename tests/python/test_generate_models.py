"""Greedy generation through vLLM (offline LLM.generate), and through the worker's own C++
loop without vLLM, equals HF transformers' greedy output, on a tiny random checkpoint of every
supported architecture: fp32, 32 new tokens, prompts shorter and longer than the sliding
windows, batched together."""

from __future__ import annotations

import gc
import json

import pytest
import torch

from hf_reference import hf_greedy
from tests.fixtures.checkpoints import ARCHITECTURES, tiny_model

NEW_TOKENS = 32


def prompts_for_test() -> list[list[int]]:
    g = torch.Generator().manual_seed(2)
    return [torch.randint(0, 128, (n,), generator=g).tolist() for n in (5, 23, 40, 90)]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_worker_generate_loop_equals_hf(tmp_path, arch):
    """Worker.generate: the C++ continuous-batching loop the worker-alone benchmark times."""
    from vllm_neuron_plugin.core import Worker

    model_dir = tiny_model(arch, tmp_path / arch)
    prompts = prompts_for_test()
    want = hf_greedy(model_dir, prompts, NEW_TOKENS)
    w = Worker(str(model_dir), json.dumps({"seq_len": 256, "torch_dtype": "float32"}))
    tokens, step_seconds = w.generate(prompts, NEW_TOKENS, block_size=8, num_blocks=64,
                                      prefill_chunk=32)
    assert tokens == want, arch
    # The 90-token prompt takes three 32-token chunks: two steps before its first token.
    assert len(step_seconds) == NEW_TOKENS + 2 and min(step_seconds) > 0


def test_worker_generate_bad_input_is_a_clear_error(tmp_path):
    from vllm_neuron_plugin.core import Worker

    model_dir = tiny_model("llama", tmp_path / "m")
    w = Worker(str(model_dir), json.dumps({"seq_len": 256, "torch_dtype": "float32"}))
    with pytest.raises(ValueError, match="empty prompt"):
        w.generate([[1, 2], []], 4)
    with pytest.raises(RuntimeError, match="KV cache full: need 5 blocks, 2 free"):
        w.generate([list(range(40))], 4, block_size=8, num_blocks=3)
    tokens, _ = w.generate([[1, 2, 3]], 4)  # the worker still runs
    assert len(tokens[0]) == 4


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_vllm_greedy_equals_hf(tmp_path, arch):
    from vllm import LLM, SamplingParams

    model_dir = tiny_model(arch, tmp_path / arch)
    prompts = prompts_for_test()
    want = hf_greedy(model_dir, prompts, NEW_TOKENS)

    # The tiny models have no tokenizer: token ids in, token ids out. A small token budget makes
    # the 90-token prompt arrive in chunks, so chunked prefill runs on every architecture too.
    llm = LLM(model=str(model_dir), dtype="float32", skip_tokenizer_init=True, max_model_len=256,
              max_num_seqs=4, max_num_batched_tokens=64, seed=0)
    try:
        params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, ignore_eos=True,
                                detokenize=False)
        outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params)
        for i, (o, w) in enumerate(zip(outs, want)):
            assert list(o.outputs[0].token_ids) == w, f"{arch}: prompt {i} ({len(prompts[i])} tokens)"
    finally:
        llm.shutdown() if hasattr(llm, "shutdown") else None
        del llm
        gc.collect()
