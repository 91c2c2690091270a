"""Drives the C++ worker directly (no vLLM) for parity tests: one sequence per row, contiguous
block ids, every token's logits."""

from __future__ import annotations

import json

import torch

from vllm_neuron_plugin.core import LOGITS_ALL, Worker

BLOCK = 16


def make_worker(model_dir, dtype: str, seq_len: int = 512, **overrides) -> Worker:
    w = Worker(str(model_dir), json.dumps({"seq_len": seq_len, "torch_dtype": dtype, **overrides}))
    w.allocate_kv(1 + 4 * seq_len // BLOCK, BLOCK)
    return w


def step_logits(w: Worker, rows: list[tuple[list[int], int]], *, slots: list[int] | None = None,
                row_blocks: int = 32, drafts: list[int] | None = None) -> list[torch.Tensor]:
    """rows: (token_ids of the whole sequence, number of them already in KV). Row r is slot
    slots[r] (default r), which owns `row_blocks` blocks from 1 + slot * row_blocks; drafts[r]
    of its new tokens are drafts to verify (a speculative step). Returns each row's logits for
    the tokens computed in this step."""
    tokens, positions, slot_mapping, qlens, ctx = [], [], [], [], []
    tables = []
    for r, (ids, done) in enumerate(rows):
        first = 1 + (slots[r] if slots else r) * row_blocks
        tables.append(list(range(first, first + row_blocks)))
        tokens += ids[done:]
        positions += list(range(done, len(ids)))
        slot_mapping += [first * BLOCK + p for p in range(done, len(ids))]
        qlens.append(len(ids) - done)
        ctx.append(done)
    b = len(rows)
    _, logits = w.step(
        torch.tensor(tokens), torch.tensor(positions), torch.tensor(qlens), torch.tensor(ctx),
        torch.tensor(tables), torch.tensor(slot_mapping), torch.ones(b, dtype=torch.bool),
        torch.tensor([[0.0, 0.0, 1.0]] * b), torch.full((b,), -1), torch.zeros(b, dtype=torch.long),
        LOGITS_ALL, torch.tensor(drafts) if drafts and any(drafts) else None,
    )
    return list(torch.split(logits, qlens))
