"""Sampling cost per step, on SmolLM2's vocabulary (49152), at batch 1 and 32, in one run:
  cpp_vllm    — the C++ sampler, vLLM's semantics (temperature 0.8, top_k 50, top_p 0.9);
  cpp_nxdi    — the C++ sampler, NxDI's on-device algorithm (dynamic, global_topk 256);
  host_vllm   — vLLM's own Sampler on the step's logits (what requests with penalties, min_p,
                logit_bias, logprobs, ... take): the same parameters plus min_p 0.05 and
                logprobs 5;
  cpp_greedy  — the C++ sampler at temperature 0 (argmax), for scale.
Median of --iters calls after a warm-up, on fixed random logits. Writes JSON with the medians
and each path's ratio to cpp_vllm."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import median_seconds  # noqa: E402

VOCAB = 49152


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sampling_cost.json")
    args = ap.parse_args()
    from vllm.sampling_params import SamplingParams

    from vllm_neuron_plugin.core import sample
    from vllm_neuron_plugin.sampling import HostSampler

    nxdi = json.dumps({"on_device_sampling_config": {"do_sample": True, "dynamic": True}})
    config = SimpleNamespace(model_config=SimpleNamespace(logprobs_mode="raw_logprobs"),
                             scheduler_config=SimpleNamespace(max_num_seqs=64))
    host = HostSampler(config, VOCAB)
    results = {}
    for batch in (1, 32):
        logits = torch.randn(batch, VOCAB, generator=torch.Generator().manual_seed(0)) * 3
        params = torch.tensor([[0.8, 50.0, 0.9]]).repeat(batch, 1)
        greedy = torch.tensor([[0.0, 0.0, 1.0]]).repeat(batch, 1)
        seeds, offsets = torch.full((batch,), -1), torch.zeros(batch, dtype=torch.long)
        sp = SamplingParams(temperature=0.8, top_k=50, top_p=0.9, min_p=0.05, logprobs=5)
        rows = [SimpleNamespace(params=sp, generator=None, token_ids=[1, 2, 3, 4], num_prompt_tokens=4)
                for _ in range(batch)]
        paths = {
            "cpp_vllm": lambda: sample(logits, params, seeds, offsets, "{}", 0),
            "cpp_nxdi": lambda: sample(logits, params, seeds, offsets, nxdi, 0),
            "host_vllm": lambda: host.sample(logits.clone(), rows),
            "cpp_greedy": lambda: sample(logits, greedy, seeds, offsets, "{}", 0),
        }
        ms = {name: median_seconds(fn, args.iters) * 1e3 for name, fn in paths.items()}
        results[f"batch_{batch}"] = {
            "ms_per_step": {k: round(v, 3) for k, v in ms.items()},
            "ratio_to_cpp_vllm": {k: round(v / ms["cpp_vllm"], 2) for k, v in ms.items()},
        }
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items()))
    out = {"vocab": VOCAB, "threads": torch.get_num_threads(), "machine": platform.machine(),
           "torch": torch.__version__, "iters": args.iters, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
