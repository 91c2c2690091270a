"""Greedy generation through vLLM (offline LLM.generate) equals HF transformers' greedy output,
on a tiny random checkpoint of every supported architecture: fp32, 32 new tokens, prompts
shorter and longer than the sliding windows, batched together."""

from __future__ import annotations

import gc

import pytest
import torch

from hf_reference import hf_greedy
from tests.fixtures.checkpoints import ARCHITECTURES, tiny_model

NEW_TOKENS = 32


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_vllm_greedy_equals_hf(tmp_path, arch):
    from vllm import LLM, SamplingParams

    model_dir = tiny_model(arch, tmp_path / arch)
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(0, 128, (n,), generator=g).tolist() for n in (5, 23, 40, 90)]
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
