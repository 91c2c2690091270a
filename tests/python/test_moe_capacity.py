"""NxDI's capacity_factor on a MoE model: each context-encoding row's experts take at most
C = min(ceil(bucket * top_k * capacity_factor / E), bucket) of its tokens, in token order;
a token routed to a full expert loses that expert, and its remaining affinities are
renormalised (NxDI `ExpertMLPs.forward_capacity_factor`). Checked against HF Mixtral whose MoE
blocks are replaced by a Python rendering of that rule."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from tests.fixtures.checkpoints import tiny_model
from worker_driver import make_worker, step_logits

BUCKET, CAPACITY_FACTOR = 64, 0.25


def capacity_forward(block, capacity: int):
    """Forward of a Mixtral MoE block with NxDI's expert capacity."""
    experts = block.experts
    E, k = experts.num_experts, block.top_k

    def forward(hidden_states):
        b, s, h = hidden_states.shape
        x = hidden_states.view(-1, h)
        probs = F.softmax(F.linear(x, block.gate.weight).float(), dim=-1)
        _, chosen = torch.topk(probs, k, dim=-1)
        mask = torch.zeros(x.shape[0], E, dtype=torch.float64)
        for j in range(k):
            mask += F.one_hot(chosen[:, j], E).double()
        mask[torch.cumsum(mask, 0) > capacity] = 0  # past capacity: dropped
        affinity = F.normalize(probs.masked_fill(mask == 0, 0), p=1.0, dim=1)
        out = torch.zeros_like(x)
        for e in range(E):
            tokens = mask[:, e].nonzero().flatten()
            if tokens.numel() == 0:
                continue
            gate, up = F.linear(x[tokens], experts.gate_up_proj[e]).chunk(2, dim=-1)
            y = F.linear(experts.act_fn(gate) * up, experts.down_proj[e])
            out.index_add_(0, tokens, (y * affinity[tokens, e, None]).to(x.dtype))
        return out.view(b, s, h)

    return forward


def test_capacity_factor_drops_tokens_as_nxdi(tmp_path):
    model_dir = tiny_model("mixtral", tmp_path / "mixtral")
    g = torch.Generator().manual_seed(4)
    a = torch.randint(0, 128, (37,), generator=g).tolist()
    b = torch.randint(0, 128, (50,), generator=g).tolist()

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    capacity = min(math.ceil(BUCKET * 2 * CAPACITY_FACTOR / 4), BUCKET)  # E = 4, top_k = 2
    with torch.no_grad():
        full = [hf(torch.tensor([ids])).logits[0] for ids in (a, b)]
        for layer in hf.model.layers:
            layer.mlp.forward = capacity_forward(layer.mlp, capacity)
        dropped = [hf(torch.tensor([ids])).logits[0] for ids in (a, b)]
    # The capacity really drops tokens here (else this test would prove nothing).
    assert (dropped[1] - full[1]).abs().max() > 0.1

    w = make_worker(model_dir, "float32", enable_bucketing=True, context_encoding_buckets=[BUCKET],
                    token_generation_buckets=[512], capacity_factor=CAPACITY_FACTOR)
    got_a, got_b = step_logits(w, [(a, 0), (b, 0)])  # two rows: each has its own capacity
    assert (got_a - dropped[0]).abs().max() <= 1e-4
    assert (got_b - dropped[1]).abs().max() <= 1e-4

    # Full capacity (capacity_factor >= E / top_k) drops nothing: HF's own numbers.
    w = make_worker(model_dir, "float32", capacity_factor=2.0)
    got_a, got_b = step_logits(w, [(a, 0), (b, 0)])
    assert (got_a - full[0]).abs().max() <= 1e-4
    assert (got_b - full[1]).abs().max() <= 1e-4
