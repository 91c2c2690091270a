"""The decoder's projection kernel (core.linear) against torch's own linear on the same bf16
weights and against what our GEMM path does (widen the weight, torch's fp32 GEMM), for
SmolLM2's shapes and the lm_head, at the row counts of decode and verify (our AVX2 register-
tiled GEMV up to core.linear_gemv_max_rows) and prefill (beyond: the widened GEMM, or on a CPU
with bf16 units torch's bf16 linear itself). Reports time, the weight-read rate (GB/s: what
bounds batch-1 decode) and GFLOP/s (what bounds the rest), and the CPU's bf16 support. Writes
benchmarks/results/linear_kernel.json and prints a table; the thresholds in
csrc/kernels/linear.cc are where the widened GEMM column (or, with bf16 units, the torch bf16
column) starts to beat the GEMV.

Usage: python benchmarks/linear_kernel.py"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import median_seconds  # noqa: E402
from vllm_neuron_plugin.core import linear, linear_gemv_max_rows  # noqa: E402

# (name, out features N, in features K): SmolLM2-135M's projections and its lm_head.
SHAPES = [("q/o_proj", 576, 576), ("gate/up_proj", 1536, 576), ("down_proj", 576, 1536),
          ("lm_head", 49152, 576)]
ROWS = [1, 2, 4, 6, 8, 16, 32, 64, 96, 128, 256, 512]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/linear_kernel.json")
    args = ap.parse_args()
    native_bf16 = torch.cpu._is_avx512_bf16_supported()
    beyond = "torch-bf16" if native_bf16 else "widened-gemm"
    rows = []
    for name, n, k in SHAPES:
        w = torch.randn(n, k).to(torch.bfloat16)
        max_rows = linear_gemv_max_rows(w)
        for m in ROWS:
            if name == "lm_head" and m > 32:
                continue  # prefill computes logits for the last token only
            x = torch.randn(m, k).to(torch.bfloat16)
            ours = median_seconds(lambda: linear(x, w), args.runs)
            ref = median_seconds(lambda: torch.nn.functional.linear(x, w), args.runs)
            # What the GEMM path does: widen the weight, then torch's fp32 GEMM.
            widened = median_seconds(lambda: torch.nn.functional.linear(x.float(), w.float()), args.runs)
            rows.append({"shape": name, "N": n, "K": k, "rows": m,
                         "path": "gemv" if m <= max_rows else beyond,
                         "ours_ms": round(ours * 1e3, 3), "torch_bf16_ms": round(ref * 1e3, 3),
                         "widened_fp32_ms": round(widened * 1e3, 3),
                         "ours_weight_gb_s": round(n * k * 2 / ours / 1e9, 1),
                         "ours_gflop_s": round(2 * m * n * k / ours / 1e9, 1),
                         "speedup": round(ref / ours, 2)})
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu_bf16_units": native_bf16,
           "gemv_max_rows": linear_gemv_max_rows(torch.empty(1, 1, dtype=torch.bfloat16)),
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print("| shape | rows | path | ours (ms) | torch bf16 (ms) | widened fp32 (ms) | ours GB/s | "
          "ours GFLOP/s | speed-up vs bf16 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['rows']} | {r['path']} | {r['ours_ms']} | {r['torch_bf16_ms']} | {r['widened_fp32_ms']} | "
              f"{r['ours_weight_gb_s']} | {r['ours_gflop_s']} | {r['speedup']}x |")


if __name__ == "__main__":
    main()
