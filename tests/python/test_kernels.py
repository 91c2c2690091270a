"""The CPU projection kernel (core.linear) against an fp32 reference rounded to the activation
dtype, across its paths (the AVX2 GEMV up to linear_gemv_max_rows(w) rows; beyond, the
block-widened fp32 GEMM, or torch's bf16 linear for bf16 on a CPU with bf16 units) and their
edges: row counts around the 4-row groups and the thresholds, K not a multiple of the 8/16/32-wide loops, N not a multiple of a block or of the
3-row register tile (remainders 0, 1, 2), bias, and
bf16 / fp16 / fp32 weights. A wrong tail, block edge or bias shows as an element off by far more
than one rounding step of the output dtype."""

from __future__ import annotations

import pytest
import torch

from vllm_neuron_plugin.core import linear, linear_gemv_max_rows

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def reference(x, w, b, dtype):
    y = x.float() @ w.float().T
    if b is not None:
        y = y + b.float()
    return y.to(dtype)


ROWS = [1, 2, 3, 4, 5, 6, 7, 13, 32, 33, 128, 129, 200]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("k,n", [(64, 128), (77, 131), (576, 1536), (1000, 301)])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_fp32_reference(dtype, rows, k, n, bias):
    g = torch.Generator().manual_seed(rows * 1000 + k + n)
    x = torch.randn(rows, k, generator=g).to(dtype)
    w = (torch.randn(n, k, generator=g) / k**0.5).to(dtype)
    b = torch.randn(n, generator=g).to(dtype) if bias else None
    got = linear(x, w, b)
    want = reference(x, w, b, dtype)
    assert got.dtype == dtype and got.shape == (rows, n)
    # One rounding step of the output dtype (the fp32 sums differ only in order).
    step = {torch.float32: 1e-5, torch.bfloat16: 2**-7, torch.float16: 2**-10}[dtype]
    torch.testing.assert_close(got.float(), want.float(), rtol=step, atol=step * 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rows", [1, 5])
def test_fp64_activations_take_the_gemv_in_fp32(dtype, rows):
    """fp64 x against 16-bit or fp32 weights: the GEMV path, x read in fp32, fp64 results."""
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 77, generator=g, dtype=torch.float64)
    w = (torch.randn(131, 77, generator=g) / 77**0.5).to(dtype)
    b = torch.randn(131, generator=g).to(dtype)
    got = linear(x, w, b)
    assert got.dtype == torch.float64 and got.shape == (rows, 131)
    want = reference(x.float(), w, b, torch.float32).double()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=4e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_threshold_is_inside_tested_rows(dtype):
    """Both paths are covered above for every dtype: bf16 weights switch to torch's bf16 linear
    after 32 rows on a CPU with bf16 units, the rest to the widened GEMM after 128."""
    native_bf16 = dtype == torch.bfloat16 and torch.cpu._is_avx512_bf16_supported()
    t = linear_gemv_max_rows(torch.empty(1, 1, dtype=dtype))
    assert t == (32 if native_bf16 else 128)
    assert min(ROWS) <= t < max(ROWS)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("rows", [1, 5])
def test_output_rounding_is_torchs_cast(dtype, rows):
    """The GEMV rounds its fp32 sums (bias added) to the activation dtype with vector code; it
    must round exactly as torch's cast does: ties to even, NaN, ±inf, overflow and subnormals,
    in the vector body and the tail. With x = 1 and K = 1 each output is exactly w + b in fp32."""
    info = torch.finfo(dtype)
    w = torch.tensor([1.0, 1.0078125, 1.0, 1.0078125, float("nan"), float("inf"), -float("inf"),
                      info.max, -info.max, info.tiny, -info.tiny, 0.0, -0.0, 3.0, 1e-3, 1e3, 7.0,
                      info.max, info.smallest_normal])
    b = torch.tensor([2**-8, 2**-8, 2**-11, 2**-11, 0.0, 0.0, 0.0, info.max, -info.max,
                      info.tiny / 4, 0.0, 0.0, 0.0, 2**-9, 0.0, 0.5, -0.25, -info.max, info.tiny / 2])
    w, b = w.to(dtype).view(-1, 1), b.to(dtype)
    x = torch.ones(rows, 1, dtype=dtype)
    want = (w.float().view(1, -1) + b.float()).to(dtype).expand(rows, -1)
    torch.testing.assert_close(linear(x, w, b), want, rtol=0, atol=0, equal_nan=True)
