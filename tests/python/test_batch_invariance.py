"""A row computes the same bits whatever else shares its step: SmolLM2's logits for one
sequence, stepped alone and stepped beside other rows (prompt chunks, decode tokens, verified
drafts), equal bit for bit. The worker's GEMV sums each output in one order whatever the row
count, and a decode token's keys split into chunks by its own length only, so this holds for
steps of up to 128 tokens on the GEMV path: fp32 on any AVX2 CPU, bf16 where that GEMV takes
every row count (no AVX512_BF16). It is what lets a seeded request give the same text alone
and batched (README, Sampling)."""

from __future__ import annotations

import pytest
import torch
from worker_driver import BLOCK, make_worker, step_logits

ROW_BLOCKS = 48  # each row owns 48 blocks: 768 positions
PROMPTS = [[(37 * i + 11) % 40000 + 100 for i in range(n)] for n in (40, 600, 30)]
ROW = 1  # the sequence under test: 600 tokens, so its decode keys split in chunks
CHUNK = 80  # its prompt goes in chunks of 80: every step stays within the GEMV's 128 rows

pytestmark = pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
                                reason="the GEMV path needs an x86 CPU with AVX2")


def schedule(batched: bool):
    """The steps, as lists of (slot, tokens of it in KV, its length after the step, drafts
    among its new tokens): alone, only ROW's entries; batched, the other rows' beside them."""
    n = len(PROMPTS[ROW])
    steps = []
    for s, lo in enumerate(range(0, n, CHUNK)):  # ROW's prompt, chunk by chunk
        others = [(0, 0, 40, 0)] if s == 0 else [(2, 0, 30, 0)] if s == 1 else \
            [(0, 38 + s, 39 + s, 0), (2, 28 + s, 29 + s, 0)]  # the others' prompts, then decodes
        steps.append([(ROW, lo, min(lo + CHUNK, n), 0)] + others)
    steps += [
        # Every row one token: the fused decode step, alone and batched.
        [(0, 46, 47, 0), (ROW, n, n + 1, 0), (2, 36, 37, 0)],
        # ROW decodes beside a verify: op by op batched, fused alone.
        [(0, 47, 48, 0), (ROW, n + 1, n + 2, 0), (2, 37, 40, 2)],
        # ROW verifies three drafts beside decode rows.
        [(ROW, n + 2, n + 6, 3), (0, 48, 49, 0), (2, 39, 40, 0)],
        # One draft kept: the next decode rewrites the position after it.
        [(ROW, n + 4, n + 5, 0), (0, 49, 50, 0)],
    ]
    return [[r for r in st if batched or r[0] == ROW] for st in steps]


def run(model_dir, dtype: str, batched: bool) -> list[torch.Tensor]:
    seqs = {slot: p + [(1000 + 7 * i + slot) % 40000 for i in range(64)]
            for slot, p in enumerate(PROMPTS)}
    w = make_worker(model_dir, dtype, seq_len=ROW_BLOCKS * BLOCK)
    out = []
    for st in schedule(batched):
        slots = [r[0] for r in st]
        logits = step_logits(w, [(seqs[slot][:end], done) for slot, done, end, _ in st],
                             slots=slots, row_blocks=ROW_BLOCKS, drafts=[r[3] for r in st])
        out.append(logits[slots.index(ROW)])
    return out


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_row_computes_alike_alone_and_batched(smollm2_dir, dtype):
    if dtype == "bfloat16" and torch.cpu._is_avx512_bf16_supported():
        pytest.skip("bf16 takes the AVX-512 BF16 dot products from two rows on (other sums)")
    alone = run(smollm2_dir, dtype, batched=False)
    batched = run(smollm2_dir, dtype, batched=True)
    assert len(alone) == len(batched) == 12
    for i, (a, b) in enumerate(zip(alone, batched)):
        assert a.shape == b.shape, i
        assert torch.equal(a, b), f"step {i}: max |diff| {(a - b).abs().max().item():.3g}"
