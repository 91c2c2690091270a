"""SchedulerOutput → one StepInput of flat tensors → C++ → ModelRunnerOutput.

The runner keeps what vLLM does not resend each step: every request's tokens (prompt plus what
the worker sampled), its block table and its sampling parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from vllm.v1.outputs import EMPTY_MODEL_RUNNER_OUTPUT, ModelRunnerOutput

from vllm_neuron_plugin.core import LOGITS_NONE, Worker


@dataclass
class RequestState:
    token_ids: list[int]  # prompt, then every token sampled so far
    num_prompt_tokens: int
    block_ids: list[int]
    num_computed_tokens: int
    temperature: float
    top_k: int
    top_p: float
    seed: int  # -1 = unseeded
    num_output_tokens: int = field(default=0)


def _state_from_new(req: Any) -> RequestState:
    sp = req.sampling_params
    # prefill_token_ids (model runner V2) carries prompt + outputs of a resumed request.
    tokens = list(req.prefill_token_ids or req.prompt_token_ids or [])
    num_prompt = len(req.prompt_token_ids or tokens)
    return RequestState(
        token_ids=tokens,
        num_prompt_tokens=num_prompt,
        block_ids=list(req.block_ids[0]),
        num_computed_tokens=req.num_computed_tokens,
        temperature=float(sp.temperature),
        top_k=int(sp.top_k) if sp.top_k and sp.top_k > 0 else 0,
        top_p=float(sp.top_p),
        seed=-1 if sp.seed is None else int(sp.seed) & 0x7FFFFFFFFFFFFFFF,
        num_output_tokens=len(tokens) - num_prompt,
    )


class NeuronModelRunner:
    def __init__(self, core: Worker, block_size: int):
        self.core = core
        self.block_size = block_size
        self.requests: dict[str, RequestState] = {}

    def _update_states(self, so: Any) -> None:
        for req_id in so.finished_req_ids:
            self.requests.pop(req_id, None)
        for req in so.scheduled_new_reqs:
            self.requests[req.req_id] = _state_from_new(req)
        cached = so.scheduled_cached_reqs
        for i, req_id in enumerate(cached.req_ids):
            st = self.requests[req_id]
            st.num_computed_tokens = cached.num_computed_tokens[i]
            new_blocks = cached.new_block_ids[i]
            if req_id in cached.resumed_req_ids:
                st.block_ids = list(new_blocks[0]) if new_blocks is not None else []
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
        block_lists: list[list[int]] = []
        for req_id in req_ids:
            st = self.requests[req_id]
            n = so.num_scheduled_tokens[req_id]
            start = st.num_computed_tokens
            end = start + n
            tokens.extend(st.token_ids[start:end])
            positions.extend(range(start, end))
            blocks = st.block_ids
            slots.extend(blocks[p // bs] * bs + p % bs for p in range(start, end))
            query_lens.append(n)
            context_lens.append(start)
            # A row emits a token once it has computed every token it knows of; a partial
            # prefill chunk emits nothing.
            sample_rows.append(end >= len(st.token_ids))
            sampling.append((st.temperature, float(st.top_k), st.top_p))
            seeds.append(st.seed)
            offsets.append(st.num_output_tokens)
            block_lists.append(blocks)
        # Rows padded with vLLM's null block 0; the worker reads only each row's own length.
        tables = torch.zeros((len(req_ids), max(map(len, block_lists))), dtype=torch.int64)
        for i, blocks in enumerate(block_lists):
            tables[i, : len(blocks)] = torch.tensor(blocks, dtype=torch.int64)
        sampled, _ = self.core.step(
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
            LOGITS_NONE,
        )
        out_tokens: list[list[int]] = []
        for req_id, token in zip(req_ids, sampled.tolist()):
            st = self.requests[req_id]
            if token >= 0:
                st.token_ids.append(token)
                st.num_output_tokens += 1
                out_tokens.append([token])
            else:
                out_tokens.append([])
        return ModelRunnerOutput(
            req_ids=req_ids,
            req_id_to_index={r: i for i, r in enumerate(req_ids)},
            sampled_token_ids=out_tokens,
        )
