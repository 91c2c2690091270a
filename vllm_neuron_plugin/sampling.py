"""Host-side sampling with vLLM's own Sampler, for the rows the C++ sampler does not cover.

The C++ step samples every row with temperature / top-k / top-p / seed. A request that also asks
for penalties, min_p, logit_bias, allowed_token_ids, bad_words, min_tokens, logprobs or a
structured output is a "host" request: the step returns its last-token logits, and this module
runs vLLM's Sampler on them (the same code vLLM's GPU runner runs, so the candidate sets,
penalties and logprobs are vLLM's). Which path a request takes depends on its own parameters
only, so a seeded request gives the same tokens whatever else is in the batch.

vLLM's CPU sampler calls kernels from vllm._C, which this platform does not build; the sampler
here uses vLLM's PyTorch-native paths instead (the same maths)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from vllm.v1.outputs import LogprobsTensors
from vllm.v1.sample.logits_processor import LogitsProcessors
from vllm.v1.sample.logits_processor.builtin import (
    LogitBiasLogitsProcessor,
    MinPLogitsProcessor,
    MinTokensLogitsProcessor,
)
from vllm.v1.sample.logits_processor.interface import BatchUpdate
from vllm.v1.sample.metadata import SamplingMetadata
from vllm.v1.sample.sampler import Sampler

if TYPE_CHECKING:
    from vllm.sampling_params import SamplingParams

_SAMPLING_EPS = 1e-5  # vLLM: temperatures below this are greedy


def host_params(sp: SamplingParams) -> list[str]:
    """The parameters of a request that the C++ sampler does not apply."""
    checks = {
        "presence_penalty": sp.presence_penalty != 0.0,
        "frequency_penalty": sp.frequency_penalty != 0.0,
        "repetition_penalty": sp.repetition_penalty != 1.0,
        "min_p": sp.min_p > _SAMPLING_EPS,
        "logit_bias": bool(sp.logit_bias),
        "allowed_token_ids": bool(sp.allowed_token_ids),
        "bad_words": bool(sp.bad_words_token_ids or sp.bad_words),
        "min_tokens": bool(sp.min_tokens and sp.min_tokens > 0),
        "logprobs": sp.logprobs is not None,
        "prompt_logprobs": sp.prompt_logprobs is not None,
        "structured_outputs": sp.structured_outputs is not None,
    }
    return [name for name, used in checks.items() if used]


def needs_host(sp: SamplingParams) -> bool:
    """Whether a request's tokens are sampled by vLLM's sampler rather than the C++ one.
    (prompt_logprobs alone does not change how its tokens are sampled.)"""
    return any(name != "prompt_logprobs" for name in host_params(sp))


def _native_greedy(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1).view(-1)


class HostSampler:
    def __init__(self, vllm_config: Any, vocab_size: int):
        self.vllm_config = vllm_config
        self.vocab_size = vocab_size
        self.sampler = Sampler(logprobs_mode=vllm_config.model_config.logprobs_mode)
        tks = self.sampler.topk_topp_sampler
        tks.forward = tks.forward_native
        self.sampler.greedy_sample = _native_greedy

    def num_logprobs(self, n: int | None) -> int | None:
        return None if n is None else (self.vocab_size if n == -1 else n)

    def sample(self, logits: torch.Tensor, rows: list[Any]) -> tuple[torch.Tensor, LogprobsTensors | None]:
        """logits [n, vocab] float32, one row per request state in `rows` (each with
        .params, .generator, .token_ids, .num_prompt_tokens). Returns tokens [n] and the
        logprobs tensors (None when no row asked for logprobs)."""
        n = len(rows)
        params = [r.params for r in rows]
        temperature = torch.tensor([sp.temperature for sp in params], dtype=torch.float32)
        greedy = temperature < _SAMPLING_EPS
        top_p = torch.tensor([sp.top_p for sp in params], dtype=torch.float32)
        top_k = torch.tensor([sp.top_k if sp.top_k > 0 else self.vocab_size for sp in params],
                             dtype=torch.int64)
        outputs = [r.token_ids[r.num_prompt_tokens:] for r in rows]
        no_penalties = all(sp.presence_penalty == 0.0 and sp.frequency_penalty == 0.0
                           and sp.repetition_penalty == 1.0 for sp in params)
        prompt_ids = None  # only penalties read the prompt (vLLM's InputBatch builds it then too)
        if not no_penalties:
            prompts = [r.token_ids[: r.num_prompt_tokens] for r in rows]
            prompt_ids = torch.full((n, max(len(p) for p in prompts)), self.vocab_size,
                                    dtype=torch.int64)
            for i, p in enumerate(prompts):
                prompt_ids[i, : len(p)] = torch.tensor(p, dtype=torch.int64)
        allowed = None
        if any(sp.allowed_token_ids for sp in params):
            allowed = torch.zeros((n, self.vocab_size), dtype=torch.bool)
            for i, sp in enumerate(params):
                if sp.allowed_token_ids:
                    allowed[i] = True  # True = masked out, as vLLM's InputBatch builds it
                    allowed[i, sp.allowed_token_ids] = False
        logprobs = [self.num_logprobs(sp.logprobs) for sp in params]
        requested = [k for k in logprobs if k is not None]
        metadata = SamplingMetadata(
            temperature=temperature,
            all_greedy=bool(greedy.all()),
            all_random=not bool(greedy.any()),
            top_p=None if bool((top_p == 1.0).all()) else top_p,
            top_k=None if bool((top_k == self.vocab_size).all()) else top_k,
            generators={i: r.generator for i, r in enumerate(rows) if r.generator is not None},
            max_num_logprobs=max(requested) if requested else None,
            no_penalties=no_penalties,
            prompt_token_ids=prompt_ids,
            frequency_penalties=torch.tensor([sp.frequency_penalty for sp in params]),
            presence_penalties=torch.tensor([sp.presence_penalty for sp in params]),
            repetition_penalties=torch.tensor([sp.repetition_penalty for sp in params]),
            output_token_ids=outputs,
            allowed_token_ids_mask=allowed,
            bad_words_token_ids={i: sp.bad_words_token_ids for i, sp in enumerate(params)
                                 if sp.bad_words_token_ids},
            logitsprocs=self._logitsprocs(rows, outputs),
        )
        out = self.sampler(logits, metadata)
        return out.sampled_token_ids.view(-1).long(), out.logprobs_tensors

    def _logitsprocs(self, rows: list[Any], outputs: list[list[int]]) -> LogitsProcessors:
        """vLLM's built-in min_p / logit_bias / min_tokens processors, given this step's rows
        as one fresh batch (they keep per-index state vLLM would carry across steps)."""
        procs = [cls(self.vllm_config, torch.device("cpu"), False)
                 for cls in (MinPLogitsProcessor, LogitBiasLogitsProcessor, MinTokensLogitsProcessor)]
        update = BatchUpdate(
            batch_size=len(rows),
            removed=[],
            added=[(i, r.params, r.token_ids[: r.num_prompt_tokens], outputs[i])
                   for i, r in enumerate(rows)],
            moved=[],
        )
        for p in procs:
            p.update_state(update)
        return LogitsProcessors(procs)

    def prompt_logprobs(self, logits: torch.Tensor, targets: list[int], k: int) -> LogprobsTensors:
        """Logprobs of `targets` (the next prompt token at each position) and the top k."""
        if self.vllm_config.model_config.logprobs_mode in ("raw_logits", "processed_logits"):
            scores = logits.to(torch.float32)
        else:
            scores = self.sampler.compute_logprobs(logits)
        token_ids, lps, ranks, *_ = self.sampler.gather_logprobs(
            scores, self.num_logprobs(k), torch.tensor(targets, dtype=torch.int64))
        return LogprobsTensors(token_ids, lps, ranks)


def apply_grammar_bitmask(logits: torch.Tensor, rows: list[int], bitmask: Any) -> None:
    """Masks, in place, the tokens a structured-output grammar forbids in logits[rows]. `bitmask`
    is vLLM's int32 array, one row per entry of `rows`, ceil(vocab / 32) words; bit j of word w
    allows token 32 * w + j."""
    words = torch.from_numpy(bitmask).to(torch.int64)
    bits = (words.unsqueeze(-1) >> torch.arange(32)) & 1
    allowed = bits.view(words.shape[0], -1)[:, : logits.shape[1]].bool()
    index = torch.tensor(rows)
    logits[index] = logits[index].masked_fill(~allowed, float("-inf"))
