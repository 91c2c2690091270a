"""Sampling: the C++ sampler's candidate sets and distributions against vLLM's reference
sampler, NxDI's on-device mode, and the host path (vLLM's Sampler on the step's logits) for
penalties, logit_bias, min_p and logprobs.

Distribution tests draw many times from a fixed small distribution and run a chi-square
test against the expected truncated, renormalised distribution (fixed seeds; p-value > 1e-3)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

from vllm_neuron_plugin.core import sample
from vllm_neuron_plugin.sampling import HostSampler

N = 20000
VOCAB = 12
LOGITS = torch.tensor([2.0, 1.6, 1.5, 1.0, 0.7, 0.5, 0.2, 0.0, -0.5, -1.0, -2.0, -3.0])
NXDI = {"on_device_sampling_config": {"do_sample": True, "dynamic": True, "global_topk": 8}}


def draw(temperature: float, top_k: int, top_p: float, config: dict | None = None,
         logits: torch.Tensor = LOGITS) -> torch.Tensor:
    """N unseeded draws from the C++ sampler on one fixed row of logits."""
    params = torch.tensor([[temperature, float(top_k), top_p]]).repeat(N, 1)
    return sample(logits.repeat(N, 1), params, torch.full((N,), -1), torch.zeros(N, dtype=torch.long),
                  json.dumps(config or {}), 1234)


def chi_square_p(tokens: torch.Tensor, expected: torch.Tensor) -> float:
    """p-value of the observed counts against `expected` probabilities (support only)."""
    counts = torch.bincount(tokens, minlength=VOCAB).double()
    support = expected > 0
    assert counts[~support].sum() == 0, f"draws outside the support: {counts[~support]}"
    e = expected[support].double() * counts.sum()
    chi2 = ((counts[support] - e) ** 2 / e).sum()
    dof = int(support.sum()) - 1
    if dof == 0:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(dof / 2), chi2 / 2))


def vllm_distribution(temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """vLLM's reference: temperature, then its top-k / top-p mask, then softmax."""
    logits = (LOGITS / temperature).unsqueeze(0).clone()
    k = torch.tensor([top_k if top_k > 0 else VOCAB])
    p = torch.tensor([top_p])
    return apply_top_k_top_p_pytorch(logits, k, p).softmax(-1)[0]


def nxdi_distribution(temperature: float, top_k: int, top_p: float, global_topk: int) -> torch.Tensor:
    """NxDI's rule (nxdi-semantics §8.3): global pool, top-k, temperature, keep inclusive
    cumulative probability <= top_p plus the first candidate."""
    values, index = LOGITS.topk(global_topk)
    k = global_topk if top_k <= 0 else top_k
    values = values / temperature
    values[k:] = -float("inf")
    cum = values.softmax(-1).cumsum(-1)
    keep = cum <= top_p
    keep[0] = True
    values[~keep] = -float("inf")
    out = torch.zeros(VOCAB)
    out[index] = values.softmax(-1)
    return out


CASES = [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.5, 4, 1.0), (1.0, 0, 0.6), (0.8, 5, 0.75), (2.0, 3, 0.9)]


@pytest.mark.parametrize("temperature, top_k, top_p", CASES)
def test_default_mode_matches_vllms_candidates_and_distribution(temperature, top_k, top_p):
    want = vllm_distribution(temperature, top_k, top_p)
    got = draw(temperature, top_k, top_p)
    # The candidate set is vLLM's: every kept token is drawn, nothing else.
    assert set(got.unique().tolist()) == set((want > 0).nonzero().flatten().tolist())
    assert chi_square_p(got, want) > 1e-3


@pytest.mark.parametrize("temperature, top_k, top_p", CASES)
def test_nxdi_mode_follows_nxdis_rule(temperature, top_k, top_p):
    want = nxdi_distribution(temperature, top_k, top_p, global_topk=8)
    got = draw(temperature, top_k, top_p, NXDI)
    assert set(got.unique().tolist()) == set((want > 0).nonzero().flatten().tolist())
    assert chi_square_p(got, want) > 1e-3


def test_top_p_differs_between_the_modes_as_documented():
    """Probabilities 0.5 / 0.3 / 0.2 and top_p 0.6: vLLM keeps two tokens, NxDI one."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2] + [1e-12] * (VOCAB - 3)))
    assert set(draw(1.0, 0, 0.6, logits=logits).unique().tolist()) == {0, 1}
    assert set(draw(1.0, 0, 0.6, NXDI, logits=logits).unique().tolist()) == {0}


def test_nxdi_deterministic_mode_draws_at_one_half():
    config = {"on_device_sampling_config": {**NXDI["on_device_sampling_config"], "deterministic": True}}
    # cdf over the pool [0.4, 0.7, 1.0]: count(cdf < 0.5) = 1, the second candidate, every time.
    logits = torch.log(torch.tensor([0.3, 0.4, 0.3] + [1e-12] * (VOCAB - 3)))
    got = draw(1.0, 0, 1.0, config, logits=logits)
    assert got.unique().tolist() in ([0], [2])  # 0.3 / 0.3: either tie order, always the same


def test_seeded_draws_depend_on_seed_and_position_only():
    logits = torch.randn(6, 50)
    logits[4] = logits[0]
    params = torch.tensor([[1.0, 0.0, 1.0]]).repeat(6, 1)
    seeds, offsets = torch.tensor([7, 7, 9, 9, 7, 9]), torch.tensor([0, 1, 0, 1, 0, 1])
    a = sample(logits, params, seeds, offsets, "{}", 1)
    b = sample(logits, params, seeds, offsets, "{}", 2)  # another worker seed: same tokens
    assert torch.equal(a, b)
    assert a[0] == a[4]  # same (seed, position, logits) → same token
    # A row's token does not depend on the rows around it.
    assert torch.equal(sample(logits[2:4], params[2:4], seeds[2:4], offsets[2:4], "{}", 3), a[2:4])


# ---- the host path: vLLM's Sampler on the step's logits ----

def host_sampler() -> HostSampler:
    config = SimpleNamespace(model_config=SimpleNamespace(logprobs_mode="raw_logprobs"),
                             scheduler_config=SimpleNamespace(max_num_seqs=4096))
    return HostSampler(config, VOCAB)


def row(params: SamplingParams, prompt: list[int], output: list[int], seed: int | None = None):
    gen = None
    if seed is not None:
        gen = torch.Generator()
        gen.manual_seed(seed)
    return SimpleNamespace(params=params, generator=gen, token_ids=prompt + output,
                           num_prompt_tokens=len(prompt))


def test_penalties_and_logit_bias_are_vllms():
    """Greedy after repetition / presence / frequency penalties and logit_bias, against the rules
    written out: repetition divides positive logits (multiplies negative) of every token seen in
    prompt or output; presence subtracts once per output token kind, frequency per occurrence;
    the bias is added."""
    logits = torch.tensor([[3.0, 2.9, 2.8, -1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2]])
    prompt, output = [0, 3], [1, 1, 2]
    cases = [
        (SamplingParams(temperature=0, repetition_penalty=2.0), [0, 1, 2, 3]),
        (SamplingParams(temperature=0, presence_penalty=1.0, frequency_penalty=0.5), [1, 2]),
        (SamplingParams(temperature=0, logit_bias={11: 10.0}), []),
    ]
    for sp, _ in cases:
        want = logits[0].clone()
        if sp.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(prompt + output)))
            want[seen] = torch.where(want[seen] > 0, want[seen] / sp.repetition_penalty,
                                     want[seen] * sp.repetition_penalty)
        counts = torch.bincount(torch.tensor(output), minlength=VOCAB).float()
        want -= sp.frequency_penalty * counts + sp.presence_penalty * (counts > 0).float()
        for t, b in (sp.logit_bias or {}).items():
            want[t] += b
        tokens, _ = host_sampler().sample(logits.clone(), [row(sp, prompt, output)])
        assert tokens.tolist() == [int(want.argmax())], sp


def test_min_p_distribution_and_logprobs():
    sp = SamplingParams(temperature=1.0, min_p=0.3, logprobs=3, seed=5)
    probs = LOGITS.softmax(-1)
    want = torch.where(probs >= 0.3 * probs.max(), probs, torch.zeros_like(probs))
    want /= want.sum()
    rows = [row(sp, [1], [], seed=i) for i in range(4000)]
    tokens, lp = host_sampler().sample(LOGITS.repeat(4000, 1), rows)
    assert set(tokens.unique().tolist()) == set((want > 0).nonzero().flatten().tolist())
    assert chi_square_p(tokens, want) > 1e-3
    # Logprobs are of the raw logits (vLLM's default logprobs_mode), top 3 plus the sampled one.
    raw = LOGITS.log_softmax(-1)
    assert torch.allclose(lp.logprobs[:, 1:], raw.topk(3).values.repeat(4000, 1), atol=1e-5)
    assert torch.allclose(lp.logprobs[:, 0], raw[tokens], atol=1e-5)
    assert torch.equal(lp.logprob_token_ids[:, 0].long(), tokens)


def test_allowed_tokens_and_min_tokens():
    sp = SamplingParams(temperature=0, allowed_token_ids=[4, 5, 6], min_tokens=3, stop_token_ids=[5])
    # Output of 1 token < min_tokens: the stop token 5 is masked; 4 beats 6.
    logits = torch.zeros(1, VOCAB)
    logits[0, 5], logits[0, 4], logits[0, 6], logits[0, 0] = 3.0, 2.0, 1.0, 9.0
    tokens, _ = host_sampler().sample(logits.clone(), [row(sp, [1], [4])])
    assert tokens.tolist() == [4]
    tokens, _ = host_sampler().sample(logits.clone(), [row(sp, [1], [4, 4, 4])])
    assert tokens.tolist() == [5]  # min_tokens reached: the stop token is allowed again


def test_seeded_host_draws_are_per_request():
    sp = SamplingParams(temperature=1.0, min_p=0.01, seed=11)
    alone, _ = host_sampler().sample(LOGITS.repeat(1, 1), [row(sp, [1], [], seed=11)])
    other = SamplingParams(temperature=1.0, min_p=0.01)
    mixed, _ = host_sampler().sample(LOGITS.repeat(3, 1), [row(other, [2], []), row(sp, [1], [], seed=11),
                                                          row(other, [3], [])])
    assert mixed[1] == alone[0]
