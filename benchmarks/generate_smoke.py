"""Smoke throughput of the bundled model through vLLM (LLM.generate): output tokens/s at
batch 1 and batch 16, greedy. A sanity figure for the walking skeleton; the comparisons
against peers (llama.cpp, HF transformers) live in the performance benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generate_smoke.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.fixtures.checkpoints import smollm2
    from vllm import LLM, SamplingParams

    model = smollm2()
    llm = LLM(model=str(model), dtype=args.dtype, max_model_len=1024, max_num_seqs=16, seed=0)
    params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, ignore_eos=True)
    prompt = "Write a short story about a lighthouse keeper."
    llm.generate([prompt], params)  # warm-up
    rows = []
    for batch in (1, 16):
        t = time.perf_counter()
        outs = llm.generate([f"{prompt} Variant {i}." for i in range(batch)], params)
        dt = time.perf_counter() - t
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        rows.append({"batch": batch, "output_tokens": tokens, "seconds": round(dt, 3),
                     "output_tokens_per_s": round(tokens / dt, 1)})
    result = {"model": "SmolLM2-135M-Instruct", "dtype": args.dtype, "new_tokens": args.new_tokens,
              "cpu": platform.processor() or platform.machine(), "threads": os.cpu_count(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| batch | output tokens/s |\n|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['output_tokens_per_s']} |")


if __name__ == "__main__":
    main()
