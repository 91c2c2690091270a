"""SchedulerOutput → one StepInput of flat tensors → C++ → ModelRunnerOutput.

The runner keeps what vLLM does not resend each step: every request's tokens (prompt plus what
the worker sampled), its block table and its sampling parameters. Rows whose sampling needs
more than the C++ sampler (see sampling.py) are re-sampled here by vLLM's Sampler on the step's
logits; prompt logprobs are gathered from the prompt positions' logits. A step with a
structured-output request returns None from execute_model and samples in sample_tokens, once
vLLM has the grammar bitmask (vLLM's two-phase step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from vllm.v1.outputs import EMPTY_MODEL_RUNNER_OUTPUT, DraftTokenIds, LogprobsTensors, ModelRunnerOutput

from vllm_neuron_plugin.core import LOGITS_ALL, LOGITS_LAST, LOGITS_NONE, Worker, block_table
from vllm_neuron_plugin.sampling import HostSampler, apply_grammar_bitmask, needs_host
from vllm_neuron_plugin.speculation import Proposer


@dataclass
class RequestState:
    token_ids: list[int]  # prompt, then every token sampled so far
    num_prompt_tokens: int
    block_ids: list[int]
    num_computed_tokens: int
    params: Any  # vLLM SamplingParams
    temperature: float
    top_k: int
    top_p: float
    seed: int  # -1 = unseeded
    host: bool  # sampled by vLLM's Sampler (sampling.py), not the C++ one
    generator: torch.Generator | None  # the host path's per-request RNG, seeded as vLLM does
    num_output_tokens: int = field(default=0)
    prompt_logprobs: LogprobsTensors | None = None  # filled chunk by chunk
    prompt_logprobs_done: bool = False  # returned once; a resumed request does not redo them


def _state_from_new(req: Any) -> RequestState:
    sp = req.sampling_params
    # prefill_token_ids (model runner V2) carries prompt + outputs of a resumed request.
    tokens = list(req.prefill_token_ids or req.prompt_token_ids or [])
    num_prompt = len(req.prompt_token_ids or tokens)
    generator = None
    if sp.seed is not None:
        generator = torch.Generator()
        generator.manual_seed(sp.seed)
    return RequestState(
        token_ids=tokens,
        num_prompt_tokens=num_prompt,
        block_ids=list(req.block_ids[0]),
        num_computed_tokens=req.num_computed_tokens,
        params=sp,
        host=needs_host(sp),
        generator=generator,
        temperature=float(sp.temperature),
        top_k=int(sp.top_k) if sp.top_k and sp.top_k > 0 else 0,
        top_p=float(sp.top_p),
        seed=-1 if sp.seed is None else int(sp.seed) & 0x7FFFFFFFFFFFFFFF,
        num_output_tokens=len(tokens) - num_prompt,
    )


@dataclass
class PendingStep:
    """A computed step waiting for its sampling (execute_model → sample_tokens)."""
    req_ids: list[str]
    sampled: torch.Tensor  # [B, 1 + max drafts] from the C++ sampler/verifier, -1 padded
    logits: torch.Tensor | None  # [B, V] (LOGITS_LAST) or [T, V] (LOGITS_ALL)
    query_lens: list[int]
    context_lens: list[int]
    prompt_logits: torch.Tensor | None = None  # [T, V] when a row wants prompt logprobs


class NeuronModelRunner:
    def __init__(self, core: Worker, block_size: int, host_sampler: HostSampler,
                 output_logits: bool = False, proposer: Proposer | None = None):
        self.core = core
        self.proposer = proposer  # speculative decoding: drafts for the next step
        self.draft_token_ids: DraftTokenIds | None = None
        self.block_size = block_size
        self.host = host_sampler
        self.output_logits = output_logits  # NeuronConfig: keep the sampled rows' logits
        self.last_logits: dict[str, torch.Tensor] = {}
        self.requests: dict[str, RequestState] = {}
        self.pending: PendingStep | None = None

    def _update_states(self, so: Any) -> None:
        for req_id in so.finished_req_ids:
            self.requests.pop(req_id, None)
            if self.proposer:
                self.proposer.forget(req_id)
        for req in so.scheduled_new_reqs:
            self.requests[req.req_id] = _state_from_new(req)
            if self.proposer:
                self.proposer.restart(req.req_id, req.num_computed_tokens)
        cached = so.scheduled_cached_reqs
        for i, req_id in enumerate(cached.req_ids):
            st = self.requests[req_id]
            st.num_computed_tokens = cached.num_computed_tokens[i]
            new_blocks = cached.new_block_ids[i]
            if req_id in cached.resumed_req_ids:
                st.block_ids = list(new_blocks[0]) if new_blocks is not None else []
                if self.proposer:
                    self.proposer.restart(req_id, st.num_computed_tokens)
            elif new_blocks is not None:
                st.block_ids.extend(new_blocks[0])
            tokens = cached.all_token_ids.get(req_id)
            if tokens is not None:  # requests not scheduled last step: vLLM resends them
                st.token_ids = list(tokens)
                st.num_output_tokens = len(tokens) - st.num_prompt_tokens

    def execute_model(self, so: Any) -> ModelRunnerOutput:
        self._update_states(so)
        if so.total_num_scheduled_tokens == 0:
            return EMPTY_MODEL_RUNNER_OUTPUT
        req_ids = list(so.num_scheduled_tokens)
        bs = self.block_size
        tokens: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        query_lens, context_lens, sample_rows, sampling, seeds, offsets = [], [], [], [], [], []
        draft_lens: list[int] = []
        block_lists: list[list[int]] = []
        spec = so.scheduled_spec_decode_tokens or {}
        for req_id in req_ids:
            st = self.requests[req_id]
            drafts = list(spec.get(req_id, ()))
            if -1 in drafts:  # vLLM pads drafts it invalidated with -1: verify the rest
                drafts = drafts[: drafts.index(-1)]
            n = so.num_scheduled_tokens[req_id] - (len(spec.get(req_id, ())) - len(drafts))
            start = st.num_computed_tokens
            end = start + n
            known = end - len(drafts)  # drafts follow the row's known tokens
            tokens.extend(st.token_ids[start:known] + drafts)
            positions.extend(range(start, end))
            blocks = st.block_ids
            slots.extend(blocks[p // bs] * bs + p % bs for p in range(start, end))
            query_lens.append(n)
            context_lens.append(start)
            draft_lens.append(len(drafts))
            # A row emits a token once it has computed every token it knows of; a partial
            # prefill chunk emits nothing.
            sample_rows.append(known >= len(st.token_ids))
            sampling.append((st.temperature, float(st.top_k), st.top_p))
            seeds.append(st.seed)
            offsets.append(st.num_output_tokens)
            block_lists.append(blocks)
        tables = block_table(block_lists)
        states = [self.requests[r] for r in req_ids]
        wants_prompt_logprobs = any(
            st.params.prompt_logprobs is not None and not st.prompt_logprobs_done
            and c < st.num_prompt_tokens - 1 for st, c in zip(states, context_lens))
        wants_logits = self.output_logits or any(st.host and row for st, row in zip(states, sample_rows))
        mode = LOGITS_ALL if wants_prompt_logprobs else LOGITS_LAST if wants_logits else LOGITS_NONE
        sampled, logits = self.core.step(
            torch.tensor(tokens, dtype=torch.int64),
            torch.tensor(positions, dtype=torch.int64),
            torch.tensor(query_lens, dtype=torch.int64),
            torch.tensor(context_lens, dtype=torch.int64),
            tables,
            torch.tensor(slots, dtype=torch.int64),
            torch.tensor(sample_rows, dtype=torch.bool),
            torch.tensor(sampling, dtype=torch.float32).view(len(req_ids), 3),
            torch.tensor(seeds, dtype=torch.int64),
            torch.tensor(offsets, dtype=torch.int64),
            mode,
            torch.tensor(draft_lens, dtype=torch.int64) if any(draft_lens) else None,
        )
        prompt_logits = None
        if mode == LOGITS_ALL:  # keep each row's last-token logits beside the prompt ones
            prompt_logits = logits
            ends = torch.tensor(query_lens).cumsum(0) - 1
            logits = logits.index_select(0, ends.clamp_min(0))
        self.pending = PendingStep(req_ids, sampled, logits, query_lens, context_lens, prompt_logits)
        if so.has_structured_output_requests:
            return None  # vLLM calls sample_tokens with the grammar bitmask
        return self.sample_tokens(None)

    def sample_tokens(self, grammar_output: Any) -> ModelRunnerOutput:
        step, self.pending = self.pending, None
        assert step is not None, "sample_tokens without a computed step"
        sampled = step.sampled.clone()
        states = [self.requests[r] for r in step.req_ids]
        host_rows = [i for i, st in enumerate(states) if st.host and int(sampled[i, 0]) >= 0]
        logprobs = None
        if host_rows:
            logits = step.logits.index_select(0, torch.tensor(host_rows))
            if grammar_output is not None:
                where = {step.req_ids[i]: j for j, i in enumerate(host_rows)}
                ids = grammar_output.structured_output_request_ids
                rows = [where.get(r, -1) for r in ids]
                keep = [k for k, j in enumerate(rows) if j >= 0]
                if keep:
                    apply_grammar_bitmask(logits, [rows[k] for k in keep],
                                          grammar_output.grammar_bitmask[keep])
            tokens, lp = self.host.sample(logits, [states[i] for i in host_rows])
            sampled[host_rows, 0] = tokens
            if lp is not None:
                logprobs = self._full_batch_logprobs(lp, host_rows, len(step.req_ids))
        if self.output_logits:
            self.last_logits = {step.req_ids[i]: step.logits[i].clone()
                                for i in range(len(states)) if int(step.sampled[i, 0]) >= 0}
        prompt_logprobs = self._prompt_logprobs(step, states)
        out_tokens: list[list[int]] = []
        for st, row in zip(states, sampled.tolist()):
            emitted = [t for t in row if t >= 0]  # 1..k+1 tokens, or none (a partial chunk)
            st.token_ids.extend(emitted)
            st.num_output_tokens += len(emitted)
            out_tokens.append(emitted)
        if self.proposer:
            rows = [(r, st, c + n, bool(toks) and not st.host) for r, st, c, n, toks
                    in zip(step.req_ids, states, step.context_lens, step.query_lens, out_tokens)]
            self.draft_token_ids = DraftTokenIds(step.req_ids, self.proposer.propose(rows))
        return ModelRunnerOutput(
            req_ids=step.req_ids,
            req_id_to_index={r: i for i, r in enumerate(step.req_ids)},
            sampled_token_ids=out_tokens,
            logprobs=logprobs.tolists() if logprobs is not None else None,
            prompt_logprobs_dict=prompt_logprobs,
        )

    def take_draft_token_ids(self) -> DraftTokenIds | None:
        drafts, self.draft_token_ids = self.draft_token_ids, None
        return drafts

    @staticmethod
    def _full_batch_logprobs(lp: LogprobsTensors, rows: list[int], batch: int) -> LogprobsTensors:
        """The host rows' logprobs placed at their batch rows (others: zeros, never read)."""
        width = lp.logprob_token_ids.shape[1]
        ids = torch.zeros((batch, width), dtype=lp.logprob_token_ids.dtype)
        vals = torch.zeros((batch, width), dtype=lp.logprobs.dtype)
        ranks = torch.zeros(batch, dtype=lp.selected_token_ranks.dtype)
        index = torch.tensor(rows)
        ids[index], vals[index], ranks[index] = lp.logprob_token_ids, lp.logprobs, lp.selected_token_ranks
        return LogprobsTensors(ids, vals, ranks)

    def _prompt_logprobs(self, step: PendingStep, states: list[RequestState]) -> dict[str, Any]:
        """vLLM's prompt logprobs: for each prompt position, the logprob of the next prompt
        token and the top k, gathered chunk by chunk and returned once the prompt is done."""
        out: dict[str, Any] = {}
        offset = 0
        for req_id, st, n, start in zip(step.req_ids, states, step.query_lens, step.context_lens):
            k = st.params.prompt_logprobs
            first = offset
            offset += n
            if k is None or st.prompt_logprobs_done or start >= st.num_prompt_tokens:
                continue
            if st.prompt_logprobs is None:
                st.prompt_logprobs = LogprobsTensors.empty_cpu(
                    st.num_prompt_tokens - 1, (self.host.num_logprobs(k) or 0) + 1)
            remaining = st.num_prompt_tokens - (start + 1)
            count = min(n, remaining)
            if count > 0:
                targets = st.token_ids[start + 1: start + 1 + count]
                lp = self.host.prompt_logprobs(step.prompt_logits[first: first + count], targets, k)
                for dst, src in zip(st.prompt_logprobs[:3], lp[:3]):
                    dst[start: start + count].copy_(src)
            if n > remaining:  # the prompt's last token was in this step: complete
                out[req_id], st.prompt_logprobs = st.prompt_logprobs, None
                st.prompt_logprobs_done = True
        return out
