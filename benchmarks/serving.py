"""Serving: vLLM's own `vllm bench serve` (random dataset, same seed, so the same prompts) against
our `vllm serve` and against llama.cpp's server (`--parallel` slots, continuous batching, its
OpenAI /v1/completions endpoint), at each request rate, in one run. Each rate has its own seed
(its index in --rates): both servers keep earlier prompts' KV (vLLM's prefix cache, llama-server's
slot cache), so a rate that repeated an earlier rate's prompts would measure cache hits, not
prefill. SmolLM2-135M-Instruct, bf16, every core. Reports request and output-token throughput
and TTFT / ITL percentiles; writes benchmarks/results/serving.json and prints a table.

Usage: python benchmarks/serving.py [--rates 0.25,0.5,1] [--num-prompts 32]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peers import gguf, llama_bin  # noqa: E402

PORT = 8091
KEEP = ("request_throughput", "output_throughput", "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms",
        "mean_itl_ms", "median_itl_ms", "p99_itl_ms", "completed")


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(1)
    raise TimeoutError(url)


def bench(backend: str, model: Path, rate: float, seed: int, args: argparse.Namespace,
          out_dir: Path) -> dict:
    name = f"{backend}-{rate}.json"
    subprocess.run(["vllm", "bench", "serve", "--backend", "openai",
                    "--base-url", f"http://127.0.0.1:{PORT}", "--endpoint", "/v1/completions",
                    "--model", "smollm2", "--tokenizer", str(model), "--dataset-name", "random",
                    "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_len),
                    "--num-prompts", str(args.num_prompts), "--request-rate", str(rate),
                    "--ignore-eos", "--seed", str(seed), "--disable-tqdm", "--num-warmups", "2", "--percentile-metrics", "ttft,itl",
                    "--metric-percentiles", "50,99", "--save-result", "--result-dir", str(out_dir),
                    "--result-filename", name],
                   check=True, capture_output=True, text=True)
    r = json.loads((out_dir / name).read_text())
    return {k: round(r[k], 2) if isinstance(r.get(k), float) else r.get(k) for k in KEEP}


def run_server(cmd: list[str], health: str, model: Path, backend: str, args, out_dir) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_ready(health, proc)
        return {str(rate): bench(backend, model, rate, seed, args, out_dir)
                for seed, rate in enumerate(args.rates)}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[0.25, 0.5, 1.0])
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--input-len", type=int, default=256)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=8, help="llama-server slots")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serving.json")
    args = ap.parse_args()
    from tests.fixtures.checkpoints import smollm2

    model = smollm2()
    threads = os.cpu_count() or 1
    result = {"model": "SmolLM2-135M-Instruct", "dtype": "bfloat16", "threads": threads,
              "num_prompts": args.num_prompts, "input_len": args.input_len,
              "output_len": args.output_len, "llama_server_parallel": args.parallel,
              "seeds": {str(rate): seed for seed, rate in enumerate(args.rates)}}
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        result["ours"] = run_server(
            ["vllm", "serve", str(model), "--host", "127.0.0.1", "--port", str(PORT),
             "--served-model-name", "smollm2", "--dtype", "bfloat16", "--max-model-len", "1024",
             "--max-num-seqs", "32"],
            f"http://127.0.0.1:{PORT}/health", model, "ours", args, out_dir)
        bin_dir = llama_bin()
        ctx = args.parallel * (args.input_len + args.output_len + 64)
        result["llama_server"] = run_server(
            [str(bin_dir / "llama-server"), "-m", str(gguf(model, bin_dir)), "-t", str(threads),
             "-c", str(ctx), "--parallel", str(args.parallel), "--cont-batching", "--port", str(PORT),
             "--no-webui", "--alias", "smollm2"],
            f"http://127.0.0.1:{PORT}/health", model, "llama", args, out_dir)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| request rate (req/s) | system | output tok/s | mean TTFT (ms) | p99 TTFT (ms) | p99 ITL (ms) |")
    print("|---|---|---|---|---|---|")
    for rate in args.rates:
        for label, key in (("ours (vllm serve)", "ours"), (f"llama-server x{args.parallel}", "llama_server")):
            r = result[key][str(rate)]
            print(f"| {rate} | {label} | {r['output_throughput']} | {r['mean_ttft_ms']} | "
                  f"{r['p99_ttft_ms']} | {r['p99_itl_ms']} |")


if __name__ == "__main__":
    main()
