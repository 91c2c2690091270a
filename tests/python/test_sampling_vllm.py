"""Sampling through vLLM (LLM.generate on SmolLM2, fp32): seeded requests reproduce across runs
and batch mixes on both sampling paths; logprobs and prompt logprobs (with chunked prefill)
equal HF transformers' log-softmax; NxDI's on-device mode serves greedy as HF does and refuses
what NxDI's sampler cannot do."""

from __future__ import annotations

import gc

import pytest
import torch
from transformers import AutoTokenizer

from hf_reference import hf_incremental

PROMPTS = ["The capital of France is", "Once upon a time, in a small village,",
           "def fibonacci(n):", "The three primary colours are"]


def make_llm(model_dir, **kw):
    from vllm import LLM

    return LLM(model=str(model_dir), dtype="float32", max_model_len=512, max_num_seqs=8, seed=0, **kw)


def close(llm):
    llm.shutdown() if hasattr(llm, "shutdown") else None
    del llm
    gc.collect()


def seeded_params():
    from vllm import SamplingParams

    return [SamplingParams(temperature=0.9, top_p=0.9, seed=42, max_tokens=24),  # C++ sampler
            SamplingParams(temperature=0.9, min_p=0.05, seed=43, max_tokens=24)]  # vLLM's sampler


def texts(outs):
    return [o.outputs[0].text for o in outs]


def texts_of(out):
    return [c.text for c in out.outputs]


@pytest.mark.slow
def test_seeds_logprobs_and_prompt_logprobs(smollm2_dir):
    from vllm import SamplingParams

    llm = make_llm(smollm2_dir, max_num_batched_tokens=32)  # prompts below arrive in chunks
    try:
        alone = texts(llm.generate(PROMPTS[:2], seeded_params()))
        # The same two seeded requests among others, in another order.
        noise = SamplingParams(temperature=1.0, max_tokens=30)
        mixed = llm.generate([PROMPTS[2], PROMPTS[1], PROMPTS[3], PROMPTS[0]],
                             [noise, seeded_params()[1], noise, seeded_params()[0]])
        assert [mixed[3].outputs[0].text, mixed[1].outputs[0].text] == alone
        assert alone[0] != texts(llm.generate(PROMPTS[:1], SamplingParams(
            temperature=0.9, top_p=0.9, seed=44, max_tokens=24)))[0]  # the seed matters

        # bad_words: the greedy continuation's first word is banned, so another comes first.
        greedy = llm.generate(PROMPTS[:1], SamplingParams(temperature=0, max_tokens=4))[0]
        banned = llm.generate(PROMPTS[:1], SamplingParams(temperature=0, max_tokens=4,
                                                          bad_words=[" Paris"]))[0]
        assert greedy.outputs[0].text.startswith(" Paris")
        assert "Paris" not in banned.outputs[0].text
        # n > 1 with a seed: distinct samples, the same set on a second run.
        n4 = SamplingParams(temperature=1.0, n=4, seed=5, max_tokens=12)
        first = sorted(texts_of(llm.generate(PROMPTS[1:2], n4)[0]))
        assert len(set(first)) > 1 and sorted(texts_of(llm.generate(PROMPTS[1:2], n4)[0])) == first

        long_prompt = " ".join(["The history of computing is a story of abstraction."] * 6)
        out = llm.generate([long_prompt], SamplingParams(temperature=0, max_tokens=8, logprobs=5,
                                                         prompt_logprobs=5))[0]
    finally:
        close(llm)

    prompt_ids, gen = list(out.prompt_token_ids), list(out.outputs[0].token_ids)
    assert len(prompt_ids) > 32  # more than one chunk
    ref = hf_incremental(smollm2_dir, torch.float32, [prompt_ids + gen]).log_softmax(-1)
    # Sampled tokens: their logprob and the top 5.
    for i, (token, lps) in enumerate(zip(gen, out.outputs[0].logprobs)):
        row = ref[len(prompt_ids) - 1 + i]
        assert abs(lps[token].logprob - row[token].item()) < 1e-4
        top = row.topk(5)
        for t, v in zip(top.indices.tolist(), top.values.tolist()):
            assert abs(lps[t].logprob - v) < 1e-4
    # Prompt logprobs: None for the first token, then each prompt token given its prefix.
    assert out.prompt_logprobs[0] is None and len(out.prompt_logprobs) == len(prompt_ids)
    for pos in range(1, len(prompt_ids)):
        token = prompt_ids[pos]
        assert abs(out.prompt_logprobs[pos][token].logprob - ref[pos - 1, token].item()) < 1e-4

    # Another engine (another process): the seeded requests give the same text again.
    llm = make_llm(smollm2_dir)
    try:
        assert texts(llm.generate(PROMPTS[:2], seeded_params())) == alone
    finally:
        close(llm)


@pytest.mark.slow
def test_nxdi_on_device_mode(smollm2_dir):
    from vllm import SamplingParams

    from hf_reference import hf_greedy

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    ids = [tok(p).input_ids for p in PROMPTS]
    want = hf_greedy(smollm2_dir, ids, 12)
    ods = {"on_device_sampling_config": {"do_sample": True, "dynamic": True, "global_topk": 64},
           "output_logits": True}
    llm = make_llm(smollm2_dir, additional_config={"override_neuron_config": ods})
    try:
        # temperature 0 → top_k 1: NxDI's greedy is HF's greedy.
        outs = llm.generate([{"prompt_token_ids": p} for p in ids],
                            SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))
        assert [list(o.outputs[0].token_ids) for o in outs] == want
        # output_logits: the logits of the last step's rows; greedy picked their argmax.
        (last,) = llm.collective_rpc("last_logits")
        assert last and all(len(v) == 49152 for v in last.values())  # SmolLM2's vocabulary
        finals = {o.outputs[0].token_ids[-1] for o in outs}
        assert {int(torch.tensor(v).argmax()) for v in last.values()} <= finals
        sampled = llm.generate(PROMPTS, SamplingParams(temperature=1.0, top_k=10, top_p=0.9,
                                                       max_tokens=8, seed=3))
        assert all(o.outputs[0].token_ids for o in sampled)
        with pytest.raises(Exception, match="sampling parameter 'min_p' is not available with "
                                            "on_device_sampling_config"):
            llm.generate(PROMPTS[:1], SamplingParams(temperature=1.0, min_p=0.1, max_tokens=4))
        with pytest.raises(Exception, match="top_k=100 is above "
                                            "on_device_sampling_config.global_topk=64"):
            llm.generate(PROMPTS[:1], SamplingParams(temperature=1.0, top_k=100, max_tokens=4))
        # The engine keeps serving after refusals.
        assert llm.generate(PROMPTS[:1], SamplingParams(temperature=0, max_tokens=4))[0].outputs[0].text
    finally:
        close(llm)
