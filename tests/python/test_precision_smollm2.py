"""bf16 accuracy on the real SmolLM2-135M-Instruct, in aggregate: teacher-forced logits of the
worker in bf16 (a prompt step, then one-token decode steps) are held against HF's fp32 logits,
beside HF's own bf16 run on the same tokens. Our bf16 must be about as close to fp32 as HF's.

Per-prompt greedy text is no test of this: on the README's chat prompt two first tokens are
within bf16 rounding of each other, and summing RMSNorm's squares in eight lanes instead of one
flipped our answer there while moving the mean error below HF's. A kernel that loses precision
(accumulating or rounding in 16 bits where fp32 is due) moves the aggregate, which this sees."""

from __future__ import annotations

import pytest
import torch
from hf_reference import hf_incremental
from transformers import AutoTokenizer
from worker_driver import make_worker, step_logits

DECODE_STEPS = 4


@pytest.fixture(scope="module")
def sequences(smollm2_dir) -> list[list[int]]:
    tok = AutoTokenizer.from_pretrained(smollm2_dir)

    def chat(question: str, answer: str) -> list[int]:
        msgs = [{"role": "user", "content": question}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)
        return list(ids["input_ids"]) + tok(answer).input_ids

    return [
        chat("What is the capital of France?", "The capital of France is Paris."),
        chat("Write a haiku about the sea.", "Waves fold into foam"),
        tok("The history of computing is a story of abstraction. Early machines were "
            "programmed by rewiring panels, and later stored programs let one machine run "
            "many tasks.").input_ids,
    ]


def test_bf16_logits_are_as_close_to_fp32_as_hf_bf16(smollm2_dir, sequences):
    w = make_worker(smollm2_dir, "bfloat16")
    ours_err, hf_err, ours_top1, hf_top1, rows = 0.0, 0.0, 0, 0, 0
    for ids in sequences:
        n = len(ids) - DECODE_STEPS
        ours = [step_logits(w, [(ids[:n], 0)])[0]]
        ours += [step_logits(w, [(ids[:i + 1], i)])[0] for i in range(n, len(ids))]
        ours = torch.cat(ours)
        hf_bf16 = hf_incremental(smollm2_dir, torch.bfloat16, [ids[:n]] + [[t] for t in ids[n:]])
        truth = hf_incremental(smollm2_dir, torch.float32, [ids])
        assert ours.shape == truth.shape
        ours_err += (ours - truth).abs().mean(-1).sum().item()
        hf_err += (hf_bf16 - truth).abs().mean(-1).sum().item()
        ours_top1 += (ours.argmax(-1) == truth.argmax(-1)).sum().item()
        hf_top1 += (hf_bf16.argmax(-1) == truth.argmax(-1)).sum().item()
        rows += len(ids)
    # Measured: mean |logit - fp32| 0.188 for ours, 0.171 for HF's bf16; top-1 agreement with
    # fp32 at 112 and 113 of 117 positions. Accumulating RMSNorm's sum of squares in bf16 gives
    # 1.31 and 83.
    ours_err, hf_err = ours_err / rows, hf_err / rows
    assert ours_err <= 1.25 * hf_err, f"mean |logit - fp32| {ours_err:.4f}, HF bf16's {hf_err:.4f}"
    assert ours_top1 >= hf_top1 - 0.03 * rows, f"top-1 agreement {ours_top1}/{rows}, HF's {hf_top1}"
