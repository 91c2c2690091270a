"""What one worker step costs besides its arithmetic: wall time, CPU time in user and kernel
mode, and minor page faults per step, for the two step shapes of offline serving (a prefill of
8 prompts × 256 tokens in one 2048-token step, and batch-32 decode), with our heap policy
(csrc/runtime/heap.h) against glibc's default in the same run. Each shape is measured after one
unmeasured pass of the same shape, so glibc's adaptive mmap threshold is in its steady state, as
in a server that has been running. Each configuration runs in fresh processes, alternating, so
both see the same host; the table reports medians and ratios.

Usage: python benchmarks/step_costs.py [--runs 3]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, statistics, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from benchmarks.peers import open_worker, prompt_ids
w = open_worker(Path(sys.argv[1]), "bfloat16", 1024)
vocab = w.model_config["vocab_size"]
run = lambda prompts, new: w.generate(prompts, new, block_size=16, num_blocks=800)
run([prompt_ids(64, 1, vocab)], 2)  # warm-up: first touch of weights and KV
def measure(prompts, new):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    steps = run(prompts, new)[1]
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return steps, (r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)
out = {}
prefill = [prompt_ids(256, 10 + i, vocab) for i in range(8)]
decode = [prompt_ids(64, 300 + i, vocab) for i in range(32)]
run(prefill[::-1], 1)  # the same shape once first: glibc's adaptive threshold in steady state
steps, cost = measure(prefill, 1)
out["prefill_8x256"] = {"step_s": steps[0], "user_s_per_step": cost[0], "sys_s_per_step": cost[1],
                        "minor_faults_per_step": cost[2]}
# Decode: the batch's prompts alone, then with 24 decode steps after them; the difference in CPU
# time and faults is the decode steps'.
run(decode, 3)
_, alone = measure(decode, 1)
steps, cost = measure(decode, 25)
out["decode_b32"] = {"step_s": statistics.median(steps[1:]),
                     "user_s_per_step": (cost[0] - alone[0]) / 24,
                     "sys_s_per_step": (cost[1] - alone[1]) / 24,
                     "minor_faults_per_step": (cost[2] - alone[2]) / 24}
print(json.dumps(out))
"""

CONFIGS = {"ours": {}, "glibc_default": {"VNP_HEAP_POLICY": "glibc"}}


def child(model: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(model), str(ROOT)],
                         env={**os.environ, **env}, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"step_costs child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None  # none where ours is zero (no faults at all)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/step_costs.json")
    args = ap.parse_args()
    from tests.fixtures.checkpoints import smollm2

    model = smollm2()
    samples: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for r in range(args.runs):
        order = list(CONFIGS) if r % 2 == 0 else list(CONFIGS)[::-1]
        for name in order:
            samples[name].append(child(model, CONFIGS[name]))
    result: dict = {"model": "SmolLM2-135M-Instruct", "dtype": "bfloat16", "runs": args.runs,
                    "threads": os.cpu_count()}
    for name, runs in samples.items():
        result[name] = {shape: {k: round(statistics.median(r[shape][k] for r in runs), 4)
                                for k in runs[0][shape]} for shape in runs[0]}
    result["ratio_glibc_over_ours"] = {
        shape: {k: ratio(result["glibc_default"][shape][k], result["ours"][shape][k])
                for k in ("step_s", "sys_s_per_step", "minor_faults_per_step")}
        for shape in result["ours"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| step | heap | step (ms) | user CPU (ms/step) | kernel CPU (ms/step) | minor faults/step |")
    print("|---|---|---|---|---|---|")
    for shape in result["ours"]:
        for name in CONFIGS:
            s = result[name][shape]
            print(f"| {shape} | {name} | {s['step_s'] * 1e3:.1f} | {s['user_s_per_step'] * 1e3:.1f} | "
                  f"{s['sys_s_per_step'] * 1e3:.1f} | {s['minor_faults_per_step']:.0f} |")
    print(json.dumps(result["ratio_glibc_over_ours"]))


if __name__ == "__main__":
    main()
