"""Limits of this machine, and the roofline they put on each workload (issue 6's yardstick).

Measured, with torch's intra-op threads (default: every core):
  - memory read bandwidth: the faster of two readers of a buffer far larger than the
    last-level cache, torch's sum and the worker's batch-1 GEMV (read_bandwidths);
  - peak matmul FLOP/s: x @ W^T (a linear layer's GEMM) in fp32 and bf16, the best of square
    sizes 1024, 2048 and 4096 and of each model's MLP up-projection at 512 tokens (MKL's rate
    depends on the shape, and a peak must not sit below what the models' own GEMMs reach).
Derived, per model (SmolLM2-135M from its config.json; the 1B-class Llama shape that
tests/fixtures builds and peers.py --model llama-1b-shape runs):
  - batch-1 decode: each token reads every weight once (plus its KV), so
    tokens/s <= bandwidth / (weight bytes + KV bytes per token at the given context);
  - prefill: 2 FLOPs per decoder-layer weight per token (the embedding is a lookup, and the
    lm_head runs for the prompt's last token only; attention's own FLOPs are left out, a few %
    at these lengths), so tokens/s <= peak FLOP/s / (2 * layer params), at the
    better of the dtype's own GEMM peak and fp32's: our kernels widen 16-bit weights and run
    fp32 GEMM (kernels/linear.h), so on a host without bf16 FMA units fp32's peak is the bound.
Writes JSON; prints a table."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import median_seconds  # noqa: E402
from tests.fixtures.checkpoints import LLAMA_1B_SHAPE, smollm2  # noqa: E402


def read_bandwidths(gib: float, runs: int) -> dict[str, float]:
    """Bytes/s read by two readers, each over `gib` GiB (far larger than the last-level cache):
    torch's sum over fp32, and the worker's batch-1 GEMV (`linear` on one bf16 row, the decode
    step's own reader) over bf16 weight rows. Since the GEMV reads two weight streams per
    thread, it read faster than the sum on the Zen 3 host, so a bound from the sum alone put
    the 1B shape's decode above 100% of its roofline."""
    x = torch.ones(int(gib * 2**30) // 4, dtype=torch.float32)
    out = {"sum": x.numel() * 4 / median_seconds(lambda: x.sum(), runs)}
    del x
    try:
        from vllm_neuron_plugin.core import linear
    except ImportError:  # the plugin not built: the sum alone
        return out
    k = 2048
    w = torch.ones(int(gib * 2**30) // (2 * k), k, dtype=torch.bfloat16)
    row = torch.ones(1, k, dtype=torch.bfloat16)
    out["gemv"] = w.numel() * 2 / median_seconds(lambda: linear(row, w), runs)
    return out


def matmul_flops(dtype: torch.dtype, m: int, k: int, n: int, runs: int) -> float:
    """x [m, k] @ W^T with W stored [n, k], as every linear layer runs. (On this AVX2 host a bf16
    torch.mm with an untransposed right operand takes a reference path 60x slower: 0.3 GFLOP/s
    against 19 for linear; fp32 is the same either way.)"""
    x = torch.randn(m, k).to(dtype)
    w = torch.randn(n, k).to(dtype)
    seconds = median_seconds(lambda: torch.nn.functional.linear(x, w), runs)
    return 2 * m * k * n / seconds


def shape_of(cfg: dict) -> dict:
    """Parameter count, and KV elements per token, of a Llama-shaped config."""
    h, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    d = cfg.get("head_dim") or h // heads
    per_layer = h * heads * d + 2 * h * kv * d + heads * d * h + 3 * h * i + 2 * h
    embed = cfg["vocab_size"] * h
    lm_head = 0 if cfg.get("tie_word_embeddings") else embed
    return {"params": layers * per_layer + embed + lm_head + h,
            "prefill_params": layers * per_layer,
            # decode reads the whole lm_head but only one embedding row
            "decode_params": layers * per_layer + cfg["vocab_size"] * h + h,
            "kv_per_token": 2 * layers * kv * d}


def decode_bound(shape: dict, context: int, elem_bytes: int, bandwidth: float) -> float:
    """Batch-1 decode tokens/s at `bandwidth` bytes/s: every weight the step reads, plus the KV
    of `context` tokens, once per token."""
    return bandwidth / ((shape["decode_params"] + shape["kv_per_token"] * context) * elem_bytes)


def offline_flop_per_request(cfg: dict, prompt: int, new: int) -> float:
    """GEMM FLOPs of one request of `prompt` tokens in and `new` out: every prompt token and
    every fed-back output token through the decoder layers, and the lm_head once per output
    token (attention's own FLOPs left out, as for the prefill bound)."""
    layers = shape_of(cfg)["prefill_params"]
    return 2 * ((prompt + new - 1) * layers + new * cfg["vocab_size"] * cfg["hidden_size"])


def matmul_peaks(cfgs: list[dict], runs: int) -> dict[str, float]:
    """FLOP/s of x @ W^T in fp32 and bf16, each the best over square sizes 1024-4096 and each
    model's MLP up-projection at 512 tokens."""
    shapes = [(n, n, n) for n in (1024, 2048, 4096)]
    shapes += [(512, cfg["hidden_size"], cfg["intermediate_size"]) for cfg in cfgs]
    return {name: max(matmul_flops(dt, *shape, runs) for shape in shapes)
            for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gib", type=float, default=2.0, help="bandwidth test size")
    ap.add_argument("--context", type=int, default=512, help="tokens in KV for the decode bound")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "machine_limits.json")
    args = ap.parse_args()
    readers = read_bandwidths(args.gib, args.runs)
    bandwidth = max(readers.values())
    models = {"SmolLM2-135M": json.loads((smollm2() / "config.json").read_text()), "Llama-1B-shape": LLAMA_1B_SHAPE}
    flops = matmul_peaks(list(models.values()), args.runs)
    bounds = {}
    for name, cfg in models.items():
        s = shape_of(cfg)
        for dtype, size in (("float32", 4), ("bfloat16", 2)):
            bounds[f"{name}/{dtype}"] = {
                "params": s["params"],
                "decode_tokens_per_s_bound": round(decode_bound(s, args.context, size, bandwidth), 1),
                "prefill_tokens_per_s_bound": round(max(flops[dtype], flops["float32"]) / (2 * s["prefill_params"]), 1),
            }
    out = {"machine": platform.machine(), "processor": platform.processor(),
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "read_bandwidth_gb_s": round(bandwidth / 1e9, 2),
           "read_bandwidth_by_reader_gb_s": {k: round(v / 1e9, 2) for k, v in readers.items()},
           "matmul_gflop_s": {k: round(v / 1e9, 1) for k, v in flops.items()},
           "decode_context_tokens": args.context, "roofline": bounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"read bandwidth {out['read_bandwidth_gb_s']} GB/s; matmul GFLOP/s {out['matmul_gflop_s']}")
    print("| model / dtype | params | batch-1 decode bound (tok/s) | prefill bound (tok/s) |")
    print("|---|---|---|---|")
    for k, v in bounds.items():
        print(f"| {k} | {v['params'] / 1e6:.0f}M | {v['decode_tokens_per_s_bound']} | "
              f"{v['prefill_tokens_per_s_bound']} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
