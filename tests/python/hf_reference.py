"""HF transformers as the reference: incremental logits and greedy continuations, run the way
HF's generate runs them (one fresh model, its own KV cache, one chunk or token at a time)."""

from __future__ import annotations

import gc

import torch
from transformers import AutoModelForCausalLM


def hf_incremental(model_dir, dtype, chunks: list[list[int]], attn: str = "sdpa") -> torch.Tensor:
    """Logits of every token of `chunks`, fed to one fresh HF model one chunk at a time. A fresh
    model per sequence matters: dynamic NTK RoPE keeps state between calls."""
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn)
    past, out = None, []
    with torch.no_grad():
        for chunk in chunks:
            r = hf(torch.tensor([chunk]), past_key_values=past, use_cache=True)
            past = r.past_key_values
            out.append(r.logits[0].float())
    return torch.cat(out)


def hf_greedy(model_dir, prompts: list[list[int]], new_tokens: int,
              dtype: torch.dtype = torch.float32) -> list[list[int]]:
    """HF greedy continuation of each prompt, EOS ignored (vLLM runs with ignore_eos too)."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    out = []
    with torch.no_grad():
        for ids in prompts:
            res = model(torch.tensor([ids]), use_cache=True)
            past, toks = res.past_key_values, [int(res.logits[0, -1].argmax())]
            for _ in range(new_tokens - 1):
                res = model(torch.tensor([[toks[-1]]]), past_key_values=past, use_cache=True)
                past = res.past_key_values
                toks.append(int(res.logits[0, -1].argmax()))
            out.append(toks)
    del model
    gc.collect()
    return out
