"""Draft proposal for speculative decoding, between two steps.

vLLM's scheduler verifies drafts it got from `take_draft_token_ids()` after the previous step:
it schedules each row's last token plus its drafts, and the C++ worker verifies them (greedy
prefix match or rejection sampling, Sampler::Verify) and returns 1..k+1 tokens a row. This
module makes those drafts once a step's tokens are known:
- "ngram": prompt lookup in C++ (`core.propose_ngram`, vLLM's rule);
- "draft_model": NxDI's fused speculation. The draft model lives in the C++ worker, with its
  own KV in the target's block ids; `Worker.propose` first feeds it the tokens its KV has not
  seen (the prompt on the first step, then the newly accepted tokens), then drafts greedily.

Rows sampled on the host (sampling.py: logprobs, penalties, structured output, ...) get no
drafts: their tokens come from vLLM's Sampler, one a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vllm_neuron_plugin.core import block_table, propose_ngram

METHODS = ("ngram", "draft_model")


@dataclass
class SpecConfig:
    method: str
    k: int  # num_speculative_tokens
    min_n: int = 0  # n-gram window (prompt_lookup_min / max)
    max_n: int = 0
    draft_dir: str | None = None


def spec_config(vllm_config: Any) -> SpecConfig | None:
    """The speculation vLLM's --speculative-config asks for; None when off. Raises ValueError,
    naming what is supported, for what this worker does not run."""
    spec = getattr(vllm_config, "speculative_config", None)
    if spec is None or not spec.num_speculative_tokens:
        return None
    if spec.method not in METHODS:
        raise ValueError(
            f"speculative method '{spec.method}' is not supported by vllm-neuron-plugin; "
            f"supported: {', '.join(METHODS)} (--speculative-config '{{\"method\": \"ngram\", ...}}' "
            "or '{\"model\": DRAFT_DIR, ...}')")
    if getattr(spec, "rejection_sample_method", "standard") != "standard":
        raise ValueError(f"rejection_sample_method '{spec.rejection_sample_method}' is not "
                         "supported; supported: standard")
    if spec.method == "draft_model":
        if getattr(spec, "draft_sample_method", "greedy") != "greedy":
            raise ValueError(f"draft_sample_method '{spec.draft_sample_method}' is not supported: "
                             "the fused draft model drafts greedily, as NxDI's does; supported: greedy")
        return SpecConfig("draft_model", spec.num_speculative_tokens,
                          draft_dir=spec.draft_model_config.model)
    return SpecConfig("ngram", spec.num_speculative_tokens, spec.prompt_lookup_min, spec.prompt_lookup_max)


@dataclass
class DraftState:
    """What the draft model's KV holds for one request (draft_model only)."""
    computed: int = 0  # positions [0, computed) hold the request's real tokens
    # The last proposal: its drafts, written from position `at` (all but the last draft).
    at: int = 0
    proposal: list[int] = field(default_factory=list)

    def settle(self, tokens: list[int]) -> None:
        """Counts the proposal's drafts the request kept: their draft KV is now real."""
        kept = 0
        while (kept < len(self.proposal) - 1 and self.at + kept < len(tokens)
               and tokens[self.at + kept] == self.proposal[kept]):
            kept += 1
        if self.proposal:
            self.computed = max(self.computed, self.at + kept)
        self.proposal = []


class Proposer:
    def __init__(self, core: Any, config: SpecConfig, block_size: int, max_model_len: int):
        self.core = core
        self.config = config
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.drafts: dict[str, DraftState] = {}

    def room(self, num_tokens: int, num_blocks: int) -> int:
        """Drafts a row of `num_tokens` may get: k, within max_model_len, and (draft model)
        with every draft KV write inside the blocks vLLM allocated (its lookahead is k)."""
        n = min(self.config.k, self.max_model_len - num_tokens)
        if self.config.method == "draft_model":
            n = min(n, num_blocks * self.block_size - num_tokens + 1)
        return max(n, 0)

    def forget(self, req_id: str) -> None:
        self.drafts.pop(req_id, None)

    def restart(self, req_id: str, num_computed: int) -> None:
        """A new or resumed request: the draft KV is trusted up to the target's (cached) prefix."""
        self.drafts[req_id] = DraftState(computed=num_computed)

    def propose(self, rows: list[tuple[str, Any, int, bool]]) -> list[list[int]]:
        """rows: (req_id, RequestState, tokens the target computed through, may draft) for each
        row of the step, in order. Returns each row's drafts."""
        wants = [self.room(len(st.token_ids), len(st.block_ids)) if ok else 0 for _, st, _, ok in rows]
        if self.config.method == "ngram":  # only the rows that draft cross into C++
            drafting = [i for i, n in enumerate(wants) if n > 0]
            found = propose_ngram([rows[i][1].token_ids for i in drafting], self.config.min_n,
                                  self.config.max_n, [wants[i] for i in drafting])
            out: list[list[int]] = [[] for _ in rows]
            for i, d in zip(drafting, found):
                out[i] = d
            return out
        tokens, qlens, ctx, tables = [], [], [], []
        for (req_id, st, end, ok), n in zip(rows, wants):
            d = self.drafts.setdefault(req_id, DraftState())
            d.settle(st.token_ids)
            # A drafting row has every known token fed; the others only what the target saw.
            stop = len(st.token_ids) if n > 0 else min(end, len(st.token_ids))
            start = min(d.computed, stop)
            tokens.extend(st.token_ids[start:stop])
            qlens.append(stop - start)
            ctx.append(start)
            tables.append(st.block_ids)
            d.computed = stop
        if not any(qlens):
            return [[] for _ in rows]
        wants = [n if q > 0 else 0 for n, q in zip(wants, qlens)]
        out = self.core.propose(torch.tensor(tokens, dtype=torch.int64),
                                torch.tensor(qlens, dtype=torch.int64),
                                torch.tensor(ctx, dtype=torch.int64), block_table(tables),
                                torch.tensor(wants, dtype=torch.int64))
        drafts = []
        for (req_id, st, _, _), n, row in zip(rows, wants, out.tolist()):
            proposal = row[:n]
            self.drafts[req_id].at, self.drafts[req_id].proposal = len(st.token_ids), proposal
            drafts.append(proposal)
        return drafts
