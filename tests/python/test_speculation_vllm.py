"""Speculative decoding through vLLM (LLM.generate on SmolLM2, fp32, prefix caching on): greedy
output with speculation equals greedy output without it, token for token, for n-gram drafts,
the target as its own draft (every draft accepted) and the self-speculative draft (its first
layers); vLLM's spec-decode metrics count the drafts; rows on vLLM's sampler and sampled rows
share steps with verified ones; an unsupported method stops start-up with the supported list."""

from __future__ import annotations

import gc

import pytest

from vllm_neuron_plugin.self_draft import make_self_draft

# Prompts whose continuations repeat their own text, so n-gram lookup finds drafts.
PROMPTS = [
    "Repeat exactly: the quick brown fox jumps over the lazy dog. The quick brown fox jumps over",
    "List: apple, banana, cherry, apple, banana, cherry, apple, banana,",
    "def add(a, b):\n    return a + b\n\ndef add(a, b):\n    return",
    "The capital of France is",
]


def make_llm(model_dir, **kw):
    from vllm import LLM

    return LLM(model=str(model_dir), dtype="float32", max_model_len=512, max_num_seqs=8, seed=0,
               enable_prefix_caching=True, disable_log_stats=False, **kw)


def close(llm):
    llm.shutdown() if hasattr(llm, "shutdown") else None
    del llm
    gc.collect()


def greedy(llm, prompts=PROMPTS, max_tokens=40):
    from vllm import SamplingParams

    outs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens, ignore_eos=True))
    return [list(o.outputs[0].token_ids) for o in outs]


def spec_counts(llm) -> dict:
    """vLLM's spec-decode counters: drafts, draft tokens, accepted tokens, and accepted tokens
    per draft position (a list)."""
    out = {}
    for m in llm.get_metrics():
        if m.name.startswith("vllm:spec_decode_num_"):
            out[m.name.removeprefix("vllm:spec_decode_")] = getattr(m, "value", getattr(m, "values", None))
    return out


@pytest.fixture(scope="module")
def reference(smollm2_dir):
    llm = make_llm(smollm2_dir)
    try:
        yield greedy(llm) + greedy(llm)  # twice: the second pass hits the prefix cache
    finally:
        close(llm)


@pytest.fixture(scope="module")
def self_draft_dir(smollm2_dir, tmp_path_factory):
    return make_self_draft(smollm2_dir, tmp_path_factory.mktemp("draft") / "smollm2-l8", 8)


@pytest.mark.slow
def test_ngram_greedy_equals_plain(smollm2_dir, reference):
    from vllm import SamplingParams

    llm = make_llm(smollm2_dir, speculative_config={
        "method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2, "prompt_lookup_max": 4})
    try:
        assert greedy(llm) + greedy(llm) == reference
        counts = spec_counts(llm)
        assert counts["num_draft_tokens"] > 0 and counts["num_accepted_tokens"] > 0, counts
        # A row on vLLM's sampler (logprobs) and a seeded sampled row beside verified rows.
        mixed = llm.generate(PROMPTS[:3], [
            SamplingParams(temperature=0.0, max_tokens=40, ignore_eos=True, logprobs=2),
            SamplingParams(temperature=0.8, seed=5, max_tokens=40, ignore_eos=True),
            SamplingParams(temperature=0.0, max_tokens=40, ignore_eos=True)])
        assert list(mixed[0].outputs[0].token_ids) == reference[0]
        assert len(mixed[0].outputs[0].logprobs) == 40
        assert list(mixed[2].outputs[0].token_ids) == reference[2]
        # The same seeded row alone: the same draws from the same logits (a row computes the
        # same bits alone and batched: test_batch_invariance.py), so the same tokens.
        again = llm.generate(PROMPTS[1:2], SamplingParams(temperature=0.8, seed=5, max_tokens=40,
                                                          ignore_eos=True))
        assert again[0].outputs[0].token_ids == mixed[1].outputs[0].token_ids
    finally:
        close(llm)


@pytest.mark.slow
def test_target_as_draft_accepts_every_draft(smollm2_dir, reference):
    llm = make_llm(smollm2_dir, speculative_config={"model": str(smollm2_dir), "num_speculative_tokens": 3})
    try:
        assert greedy(llm) + greedy(llm) == reference
        counts = spec_counts(llm)
        assert counts["num_draft_tokens"] > 0
        assert counts["num_accepted_tokens"] == counts["num_draft_tokens"], counts
        # Every position of every draft kept (near the end of a request fewer are proposed).
        per_pos = counts["num_accepted_tokens_per_pos"]
        assert len(per_pos) == 3 and sum(per_pos) == counts["num_accepted_tokens"], counts
        assert per_pos[0] == counts["num_drafts"], counts
    finally:
        close(llm)


@pytest.mark.slow
def test_self_draft_greedy_equals_plain(smollm2_dir, self_draft_dir, reference):
    llm = make_llm(smollm2_dir, speculative_config={"model": str(self_draft_dir), "num_speculative_tokens": 2},
                   max_num_batched_tokens=64)  # prompts arrive in chunks: the draft catches up per chunk
    try:
        assert greedy(llm) + greedy(llm) == reference
        counts = spec_counts(llm)
        assert 0 < counts["num_accepted_tokens"] < counts["num_draft_tokens"], counts
    finally:
        close(llm)


def test_unsupported_method_is_a_start_up_error(smollm2_dir):
    from vllm.engine.arg_utils import EngineArgs

    args = EngineArgs(model=str(smollm2_dir), max_model_len=512,
                      speculative_config={"method": "ngram_gpu", "num_speculative_tokens": 2})
    with pytest.raises(ValueError, match="supported: ngram, draft_model"):
        args.create_engine_config()
