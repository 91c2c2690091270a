"""Speculative decoding in the C++ worker, without vLLM: verification of drafts (NxDI's greedy
prefix match; rejection sampling whose output follows the target's distribution, checked by a
chi-square test on a tiny model), the fused draft model's proposals, n-gram lookup, and the
config errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.fixtures.checkpoints import tiny_llama, tiny_model
from vllm_neuron_plugin import core

BS = 16
BLOCKS_PER_ROW = 4


def make_worker(model_dir, draft_dir: str = "", rows: int = 4, **nc):
    w = core.Worker(str(model_dir), json.dumps({"seq_len": 64, "torch_dtype": "float32", **nc}), 0,
                    draft_dir)
    w.allocate_kv(1 + rows * BLOCKS_PER_ROW, BS)
    return w


def table(rows: int) -> torch.Tensor:
    return torch.arange(1, 1 + rows * BLOCKS_PER_ROW).view(rows, BLOCKS_PER_ROW)


def step(w, seqs, done, drafts=None, params=(0.0, 0.0, 1.0), seeds=None, offsets=None,
         emit=True, mode=core.LOGITS_NONE):
    """Row r computes seqs[r][done[r]:] followed by drafts[r]; returns (tokens, logits)."""
    b = len(seqs)
    drafts = drafts or [[] for _ in seqs]
    tokens, positions, slots, qlens = [], [], [], []
    tab = table(b)
    for r, (ids, d) in enumerate(zip(seqs, drafts)):
        row = ids[done[r]:] + d
        pos = list(range(done[r], done[r] + len(row)))
        tokens += row
        positions += pos
        slots += [int(tab[r, p // BS]) * BS + p % BS for p in pos]
        qlens.append(len(row))
    return w.step(torch.tensor(tokens), torch.tensor(positions), torch.tensor(qlens),
                  torch.tensor(done), tab, torch.tensor(slots), torch.full((b,), emit),
                  torch.tensor([list(params)] * b, dtype=torch.float32),
                  torch.tensor(seeds if seeds is not None else [-1] * b),
                  torch.tensor(offsets if offsets is not None else [0] * b), mode,
                  torch.tensor([len(d) for d in drafts]) if any(drafts) else None)


def greedy_continuation(w, prompt: list[int], n: int) -> list[int]:
    seq = list(prompt)
    done = 0
    for _ in range(n):
        tokens, _ = step(w, [seq], [done])
        done = len(seq)
        seq.append(int(tokens[0, 0]))
    return seq[len(prompt):]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("spec") / "target", seed=3)


PROMPT = [5, 17, 99, 3, 42, 8, 77, 21, 64, 9]


def test_greedy_prefix_match_and_no_rollback(model):
    g = greedy_continuation(make_worker(model), PROMPT, 7)
    w = make_worker(model)
    tokens, _ = step(w, [PROMPT], [0])
    assert int(tokens[0, 0]) == g[0]
    seq = PROMPT + [g[0]]
    # All three drafts right: three kept plus the target's bonus token.
    tokens, _ = step(w, [seq], [len(seq) - 1], [g[1:4]])
    assert tokens[0].tolist() == g[1:5]
    assert any(k.startswith("speculation/") for k in w.bucket_counts), w.bucket_counts
    seq += g[1:5]
    # The second draft wrong: the first kept, then the target's token where it differs. The
    # rejected draft's KV (and the third's) stays in the cache, past the sequence.
    wrong = (g[6] + 1) % 128
    tokens, _ = step(w, [seq], [len(seq) - 1], [[g[5], wrong, g[6]]])
    assert tokens[0].tolist() == [g[5], g[6], -1, -1]
    seq += [g[5], g[6]]
    # The next step overwrites those positions; greedy stays on the reference.
    tokens, _ = step(w, [seq], [len(seq) - 1])
    assert int(tokens[0, 0]) == greedy_continuation(make_worker(model), seq, 1)[0]


@pytest.mark.parametrize("arch", ["llama", "mistral"])  # mistral: a 16-token sliding window
def test_verified_tokens_compute_as_their_decode_steps(tmp_path, arch):
    m = tiny_model(arch, tmp_path / arch, seed=5)
    prompt = [(7 * i + 3) % 128 for i in range(30)]
    drafts = [11, 12, 13, 14]
    w = make_worker(m)
    step(w, [prompt], [0], emit=False)
    _, verify = step(w, [prompt], [len(prompt) - 1], [drafts], mode=core.LOGITS_ALL)
    w = make_worker(m)
    step(w, [prompt], [0], emit=False)
    seq, decode = list(prompt), []
    for d in [None] + drafts:
        if d is not None:
            seq.append(d)
        _, logits = step(w, [seq], [len(seq) - 1], emit=False, mode=core.LOGITS_ALL)
        decode.append(logits[-1])
    torch.testing.assert_close(verify, torch.stack(decode), rtol=0, atol=0)


def test_rows_with_and_without_drafts_in_one_step(model):
    g = greedy_continuation(make_worker(model), PROMPT, 4)
    other = [7, 7, 1, 2, 3]
    g_other = greedy_continuation(make_worker(model), other, 2)
    w = make_worker(model)
    step(w, [PROMPT, other], [0, 0], emit=False)  # both prefills, nothing emitted
    tokens, _ = step(w, [PROMPT + [g[0]], other + [g_other[0]]],
                     [len(PROMPT), len(other)], [g[1:3], []])
    assert tokens.tolist() == [g[1:4], [g_other[1], -1, -1]]


def filtered_probs(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """vLLM's rule: temperature, top-k, then top-p over the top-k renormalised, keeping the token
    that crosses top_p."""
    scaled = logits.double() / temperature
    k = top_k if top_k > 0 else scaled.numel()
    values, ids = scaled.topk(k)
    probs = torch.softmax(values, 0)
    before = torch.cumsum(probs, 0) - probs
    keep = before < top_p if top_p < 1 else torch.ones_like(probs, dtype=torch.bool)
    p = torch.zeros_like(scaled)
    p[ids[keep]] = probs[keep]
    return p / p.sum()


def chi_square_ok(counts: torch.Tensor, probs: torch.Tensor) -> tuple[bool, float, float]:
    """Pearson's test at p = 1e-4: cells with expected count >= 5, the rest pooled."""
    n = counts.sum().item()
    expected = probs * n
    big = expected >= 5
    obs = torch.cat([counts[big].double(), counts[~big].double().sum().view(1)])
    exp = torch.cat([expected[big], expected[~big].sum().view(1)])
    if exp[-1] < 5:  # pool too small to stand alone: merge it into the smallest cell
        obs, exp = obs[:-1].clone(), exp[:-1].clone()
        obs[exp.argmin()] += counts[~big].sum()
        exp[exp.argmin()] += expected[~big].sum()
    if (counts[probs == 0] > 0).any():
        return False, math.inf, 0.0
    stat = float(((obs - exp) ** 2 / exp).sum())
    df = len(obs) - 1
    z = 3.719  # upper 1e-4 normal quantile; Wilson-Hilferty for the chi-square quantile
    critical = df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
    return stat < critical, stat, critical


@pytest.mark.parametrize("params", [(1.0, 0, 1.0), (0.7, 6, 0.8)], ids=["plain", "topk-topp"])
def test_rejection_sampling_follows_the_target(model, params):
    rows, repeats = 128, 24
    w = make_worker(model, rows=rows, batch_size=rows)
    seqs = [list(PROMPT) for _ in range(rows)]
    _, logits = step(w, seqs, [0] * rows, emit=False, mode=core.LOGITS_ALL)
    p0 = filtered_probs(logits[len(PROMPT) - 1], *params)
    d1 = int(p0.argmax())  # a likely draft: mostly kept
    d2 = int(p0.argsort()[len(p0) // 2])  # an unlikely one: mostly rejected
    _, logits = step(w, [PROMPT + [d1]], [len(PROMPT)], emit=False, mode=core.LOGITS_ALL)
    p1 = filtered_probs(logits[0], *params)
    first = torch.zeros(128, dtype=torch.long)
    second = torch.zeros(128, dtype=torch.long)
    for _ in range(repeats):  # the same context each time: the verify rewrites the same KV
        tokens, _ = step(w, seqs, [len(PROMPT) - 1] * rows, [[d1, d2]] * rows, params=params)
        first += torch.bincount(tokens[:, 0], minlength=128)
        kept = tokens[:, 0] == d1
        second += torch.bincount(tokens[kept, 1], minlength=128)
    for counts, probs in ((first, p0), (second, p1)):
        ok, stat, critical = chi_square_ok(counts, probs)
        assert ok, f"chi-square {stat:.1f} >= {critical:.1f}: {counts.tolist()}"


def test_seeded_verification_reproduces(model):
    w = make_worker(model)
    step(w, [PROMPT], [0], emit=False)
    runs = [step(w, [PROMPT], [len(PROMPT) - 1], [[1, 2, 3]], params=(1.0, 0, 1.0), seeds=[7],
                 offsets=[4])[0].tolist() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_draft_model_proposes_its_greedy_continuation(model, tmp_path):
    draft = tiny_llama(tmp_path / "draft", seed=11)
    g_target = greedy_continuation(make_worker(model), PROMPT, 4)
    g_draft = greedy_continuation(make_worker(draft), PROMPT, 4)
    assert g_target != g_draft
    for d, expected in ((model, g_target), (draft, g_draft)):
        w = make_worker(model, draft_dir=str(d))
        assert w.has_draft and w.draft_kv_bytes_per_block(BS) > 0
        out = w.propose(torch.tensor(PROMPT), torch.tensor([len(PROMPT)]), torch.tensor([0]),
                        table(1), torch.tensor([4]))
        assert out[0].tolist() == expected
        # Catch up on one more token (the first draft accepted) and propose again.
        out = w.propose(torch.tensor([expected[0]]), torch.tensor([1]), torch.tensor([len(PROMPT)]),
                        table(1), torch.tensor([3]))
        assert out[0].tolist() == expected[1:4]


def test_draft_model_errors(model, tmp_path):
    w = make_worker(model, draft_dir=str(model))
    with pytest.raises(ValueError, match="past its block table"):
        w.propose(torch.tensor(PROMPT), torch.tensor([len(PROMPT)]), torch.tensor([0]),
                  table(1)[:, :1], torch.tensor([10]))
    with pytest.raises(RuntimeError, match="needs a draft model"):
        make_worker(model).propose(torch.tensor([1]), torch.tensor([1]), torch.tensor([0]),
                                   table(1), torch.tensor([1]))
    other_vocab = tiny_llama(tmp_path / "v", vocab_size=96)
    with pytest.raises(ValueError, match="vocabulary"):
        make_worker(model, draft_dir=str(other_vocab))


def test_step_rejects_bad_drafts(model):
    w = make_worker(model)
    with pytest.raises(ValueError, match="only rows that emit"):
        step(w, [PROMPT], [0], [[1, 2]], emit=False)


@pytest.mark.parametrize("tokens,min_n,max_n,k,expected", [
    ([1, 2, 3, 4, 1, 2, 3], 1, 3, 2, [4, 1]),  # the longest suffix (3 tokens) matches at 0
    ([5, 1, 9, 1, 7, 1], 1, 1, 2, [9, 1]),  # several matches: the earliest, as vLLM picks
    ([1, 2, 3, 9, 2, 3], 2, 3, 3, [9, 2, 3]),  # only the 2-gram [2, 3] matches
    ([1, 2, 3, 4], 1, 2, 3, []),  # no match
    ([4, 4, 4, 4], 2, 2, 5, [4, 4]),  # overlapping match; fewer than k tokens follow it
    ([1, 2, 1, 2], 3, 4, 2, []),  # the suffix [2, 1, 2] has no earlier occurrence
])
def test_ngram_lookup(tokens, min_n, max_n, k, expected):
    assert core.propose_ngram([tokens], min_n, max_n, [k]) == [expected]


@pytest.mark.parametrize("config,message", [
    ({"speculation_length": 4, "on_device_sampling_config": {}}, "on_device_sampling_config"),
    ({"seq_len": 64, "speculation_length": 64}, "no room in the largest token-generation bucket"),
    ({"enable_fused_speculation": True}, "needs speculation_length >= 1"),
    ({"enable_eagle_speculation": True, "speculation_length": 2}, "not supported"),
])
def test_config_errors(config, message):
    with pytest.raises(ValueError, match=message):
        core.neuron_config_summary(json.dumps(config))
