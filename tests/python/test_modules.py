"""Module by module against HF transformers, on random weights and random activations: the
embedding, every RMSNorm, every RoPE variant, attention (prefill, prefill after a cached prefix,
decode, sliding window), the dense MLP, the MoE router and experts, and the lm_head. Each C++
piece is the runtime's own code, reached through the ModuleProbe binding.

fp32 must agree to 1e-5 (NxDI's attention unit tests use atol 5e-5). bf16 uses Optimum's module
tolerance (rtol 0.1, atol = bf16 resolution — nxdi-semantics §12) with the atol taken relative
to the tensor's largest magnitude: one bf16 step there. An absolute 2^-7 fails on elements near
zero that come out of a 64-term bf16 sum (an attention output's o_proj), where HF's eager
kernel and ours round the sum differently."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.fixtures.checkpoints import tiny_model
from test_parity_models import VARIANTS
from vllm_neuron_plugin.core import ModuleProbe

T = 37  # tokens of the test sequence; longer than every tiny model's sliding window (16)


def close(got: torch.Tensor, want: torch.Tensor, dtype: str) -> None:
    got, want = got.float(), want.float()
    if dtype == "float32":
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    else:
        scale = want.abs().max().item()
        torch.testing.assert_close(got, want, atol=torch.finfo(torch.bfloat16).resolution * scale,
                                   rtol=0.1)


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, tmp_path_factory):
    arch, overrides = VARIANTS[request.param]
    d = tiny_model(arch, tmp_path_factory.mktemp(request.param), **overrides)
    return request.param, d


def load(model_dir, dtype: str):
    torch_dtype = getattr(torch, dtype)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype, attn_implementation="eager")
    return hf, ModuleProbe(str(model_dir), dtype), torch_dtype


def hidden(n: int, size: int, dtype, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, size, generator=torch.Generator().manual_seed(seed)).to(dtype)


def layer_window(layer, cfg) -> int | None:
    """The layer's sliding window: an attribute of Qwen attention layers, the config's for
    Mistral and Mixtral (every layer)."""
    if hasattr(layer.self_attn, "sliding_window"):
        return layer.self_attn.sliding_window
    return getattr(cfg, "sliding_window", None)


def causal_mask(n: int, window: int | None, dtype) -> torch.Tensor:
    """HF's additive mask for one sequence: key k visible to query q iff k <= q (and, with a
    sliding window, k > q - window)."""
    q, k = torch.arange(n).unsqueeze(1), torch.arange(n).unsqueeze(0)
    visible = k <= q
    if window:
        visible &= k > q - window
    return torch.zeros(n, n, dtype=dtype).masked_fill(~visible, torch.finfo(dtype).min)[None, None]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embedding_norms_and_lm_head(variant, dtype):
    _, model_dir = variant
    hf, probe, td = load(model_dir, dtype)
    cfg = hf.config
    ids = torch.randint(0, cfg.vocab_size, (T,), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = hf.model.embed_tokens(ids) * getattr(cfg, "embedding_multiplier", 1.0)
        close(probe.embed(ids), want, dtype)
        x = hidden(T, cfg.hidden_size, td)
        for i, layer in enumerate(hf.model.layers):
            close(probe.norm(i, "input", x), layer.input_layernorm(x), dtype)
            close(probe.norm(i, "post_attention", x), layer.post_attention_layernorm(x), dtype)
            if hasattr(layer.self_attn, "q_norm"):  # Qwen3: over head_dim, per head
                heads = hidden(T * cfg.num_attention_heads, cfg.head_dim, td).view(T, -1, cfg.head_dim)
                close(probe.norm(i, "q", heads), layer.self_attn.q_norm(heads), dtype)
                close(probe.norm(i, "k", heads), layer.self_attn.k_norm(heads), dtype)
        close(probe.norm(0, "final", x), hf.model.norm(x), dtype)
        want = hf.lm_head(hf.model.norm(x)) / getattr(cfg, "logits_scaling", 1.0)
        close(probe.logits(x), want, dtype)


@pytest.mark.parametrize("seq_len", [20, 50])  # below and above rope_dynamic's threshold (32)
def test_rope_tables(variant, seq_len):
    _, model_dir = variant
    hf, probe, _ = load(model_dir, "float32")
    positions = torch.arange(seq_len)
    x = torch.zeros(1, seq_len, hf.config.hidden_size)
    with torch.no_grad():
        cos, sin = hf.model.rotary_emb(x, positions[None])  # a fresh model: no cached growth
    got_cos, got_sin = probe.rope(positions, seq_len, "float32")
    torch.testing.assert_close(got_cos, cos[0], atol=0, rtol=0)
    torch.testing.assert_close(got_sin, sin[0], atol=0, rtol=0)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_prefill_cached_prefix_and_decode(variant, dtype):
    name, model_dir = variant
    hf, _, td = load(model_dir, dtype)
    cfg = hf.config
    x = hidden(T, cfg.hidden_size, td, seed=5)
    positions = torch.arange(T)[None]
    with torch.no_grad():
        cos_sin = hf.model.rotary_emb(x[None], positions)
        for i, layer in enumerate(hf.model.layers):
            window = layer_window(layer, cfg)
            want = layer.self_attn(hidden_states=x[None], position_embeddings=cos_sin,
                                   attention_mask=causal_mask(T, window, td))[0][0]
            # A whole prompt.
            close(ModuleProbe(str(model_dir), dtype).attention(i, x, 0), want, dtype)
            if name == "rope_dynamic":
                # Dynamic NTK rotates each chunk by its own length, as HF does with a KV cache;
                # this one-shot HF call rotates all 37 by 37. test_parity_models holds the
                # chunked case against HF's cache.
                continue
            # 20 tokens, then 16 more after them (a cached prefix / second chunk), then a decode.
            probe = ModuleProbe(str(model_dir), dtype)
            first = probe.attention(i, x[:20], 0)
            chunk = probe.attention(i, x[20:36], 20)
            decode = probe.attention(i, x[36:], 36)
            close(torch.cat([first, chunk, decode]), want, dtype)


def test_sliding_window_is_exercised(variant):
    """The windowed variants really have a window shorter than the test sequence."""
    name, model_dir = variant
    hf, _, _ = load(model_dir, "float32")
    windows = [layer_window(layer, hf.config) for layer in hf.model.layers]
    if name in ("mistral", "qwen2"):
        assert any(w and w < T for w in windows), windows
    else:
        assert not any(windows), windows


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_mlp_router_and_experts(variant, dtype):
    _, model_dir = variant
    hf, probe, td = load(model_dir, dtype)
    x = hidden(T, hf.config.hidden_size, td, seed=7)
    with torch.no_grad():
        for i, layer in enumerate(hf.model.layers):
            close(probe.mlp(i, x), layer.mlp(x[None])[0], dtype)
            if not hasattr(layer.mlp, "gate") or not hasattr(layer.mlp, "experts"):
                continue  # a dense layer
            _, scores, indices = layer.mlp.gate(x)
            experts, weights = probe.route(i, x)
            assert torch.equal(experts, indices)
            close(weights, scores, dtype)
            # The experts alone, on HF's routing.
            close(probe.experts(i, x, indices, scores), layer.mlp.experts(x, indices, scores), dtype)
