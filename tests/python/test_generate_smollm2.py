"""LLM.generate on the real SmolLM2-135M-Instruct (fp32) produces exactly HF transformers'
greedy tokens, under each scheduler feature that changes what a step looks like."""

from __future__ import annotations

import gc

import pytest
from transformers import AutoTokenizer

import hf_reference

NEW_TOKENS = 24

LONG_TEXT = (
    "The history of computing is a story of abstraction. Early machines were programmed by "
    "rewiring panels; later, stored programs let the same hardware run many tasks. Assemblers "
    "gave names to instructions, compilers translated structured languages, and operating "
    "systems shared one machine among many users. Each layer hid the one below it while "
    "exposing something new to build on. Networks then connected machines, and the web "
    "connected documents, so that software could be delivered to anyone with a browser. "
) * 4
CODE = "\n".join(f"def f{i}(x):\n    return x * {i} + {i * i}\n" for i in range(20))


def chat(tok, text: str) -> list[int]:
    msgs = [{"role": "user", "content": text}]
    return list(tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)["input_ids"])


@pytest.fixture(scope="module")
def prompts(smollm2_dir) -> list[list[int]]:
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    plain = ["The capital of France is", "1, 2, 3, 4, 5,", LONG_TEXT + "\nIn summary,", CODE + "\ndef f20(x):"]
    chats = ["What is the tallest mountain on Earth?", "Write a haiku about the sea.",
             "Summarise this text:\n" + LONG_TEXT, "Explain what a compiler does in one sentence."]
    ids = [tok(p).input_ids for p in plain] + [chat(tok, c) for c in chats]
    lens = [len(p) for p in ids]
    assert sum(n > 300 for n in lens) >= 3 and max(lens) + NEW_TOKENS <= 512, lens
    return ids


@pytest.fixture(scope="module")
def hf_greedy(smollm2_dir, prompts) -> list[list[int]]:
    return hf_reference.hf_greedy(smollm2_dir, prompts, NEW_TOKENS)


def counter(llm, name: str) -> float:
    return sum(m.value for m in llm.get_metrics() if m.name == name)


CASES = {
    "default": {},
    "no_prefix_caching": {"enable_prefix_caching": False},
    "prefix_caching": {"enable_prefix_caching": True},
    "chunked_prefill": {"max_num_batched_tokens": 64, "enable_prefix_caching": False},
    # 34 blocks of 16 tokens (one is vLLM's null block) hold 528 tokens: prompts of up to
    # ~420 tokens cannot all stay resident, so the scheduler preempts and resumes requests.
    "preemption": {"num_gpu_blocks_override": 34, "block_size": 16, "max_model_len": 512,
                   "enable_prefix_caching": False},
    # NxDI bucketing and a fused Wqkv (prepared artifact) must not change a single token.
    "bucketing_fused_qkv": {"enable_prefix_caching": False, "additional_config": {
        "override_neuron_config": {"enable_bucketing": True, "fused_qkv": True}}},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_greedy_equals_hf(smollm2_dir, prompts, hf_greedy, case):
    from vllm import LLM, SamplingParams

    args = dict(model=str(smollm2_dir), dtype="float32", max_model_len=1024, max_num_seqs=8,
                disable_log_stats=False, seed=0)
    args.update(CASES[case])
    llm = LLM(**args)
    try:
        params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, ignore_eos=True)
        runs = 2 if case == "prefix_caching" else 1  # the second run reads cached prefixes
        for _ in range(runs):
            outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params)
            for i, (o, want) in enumerate(zip(outs, hf_greedy)):
                assert list(o.outputs[0].token_ids) == want, f"prompt {i} ({len(prompts[i])} tokens)"
        if case == "prefix_caching":
            assert counter(llm, "vllm:prefix_cache_hits") > 0
        if case == "preemption":
            assert counter(llm, "vllm:num_preemptions") > 0
        if case == "bucketing_fused_qkv":
            (counts,) = llm.collective_rpc("bucket_counts")
            # Buckets [128, 256, 512, 1024]; prompts of 6..~420 tokens, first fit.
            prefills = {k: v for k, v in counts.items() if k.startswith("context_encoding/")}
            assert sum(prefills.values()) == len(prompts), counts
            assert {"context_encoding/128", "context_encoding/512"} <= prefills.keys(), counts
            assert any(k.startswith("token_generation/") for k in counts), counts
    finally:
        llm.shutdown() if hasattr(llm, "shutdown") else None
        del llm
        gc.collect()
