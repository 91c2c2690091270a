"""Speculative decoding at batch 1 through vLLM (issue 7): decode tokens/s with and without
speculation, same model, same prompts, same run, and the acceptance vLLM's spec-decode
metrics report. SmolLM2-135M-Instruct (bundled), bf16, greedy, one request at a time.

Workloads (chat-templated):
  grounded - editing text the prompt holds (fix the spelling of a passage, reformat a list):
             the answer repeats the prompt, the case n-gram lookup is for;
  chat     - open questions, whose answers do not repeat the prompt.
Configurations: no speculation; n-gram prompt lookup (k = 3 and 5); the self-speculative
draft (vllm_neuron_plugin.self_draft: the first N of SmolLM2's 30 layers with its final norm and
lm_head, for each N of --draft-layers) at k = 2.

Rate = output tokens / (request time - TTFT), summed over the workload's requests, where TTFT
is the time to the first token of the same request with max_tokens = 1.

Usage: python benchmarks/speculation.py [--new-tokens 128] [--draft-layers 8,16,24]"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSAGE = ("Teh history of the printing press begins in the fiftenth century, when Johannes "
           "Gutenberg develloped a movable type system in Mainz. His press made books cheaper and "
           "faster to produce, and within fifty years printing shops had apeared in more than two "
           "hundred citys across Europe. Literacy rose, ideas spread quicker, and the Reformation "
           "and the scientific revolution both owed much to the new tecnology.")
GROUNDED = [
    f"Correct the spelling mistakes in this text and return the whole corrected text:\n\n{PASSAGE}",
    "Turn this list into a numbered list, one item per line, keeping every word:\n"
    "red apples from the north orchard, green pears from the south orchard, yellow lemons from "
    "the greenhouse, purple plums from the east orchard, orange apricots from the west orchard",
    f"Repeat the following paragraph exactly, then write DONE:\n\n{PASSAGE}",
]
CHAT = [
    "Why is the sky blue? Answer in a short paragraph.",
    "Give three tips for writing clear emails.",
    "What is the difference between a list and a tuple in Python?",
]


def run_config(model: Path, prompts: dict[str, list[str]], new_tokens: int, spec: dict | None) -> dict:
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model), dtype="bfloat16", max_model_len=1024, max_num_seqs=1, seed=0,
              disable_log_stats=False, **({"speculative_config": spec} if spec else {}))
    tok = llm.get_tokenizer()
    result = {}
    try:
        params = SamplingParams(temperature=0.0, max_tokens=new_tokens)
        llm.generate(["Hello"], SamplingParams(max_tokens=8))  # warm-up
        for name, texts in prompts.items():
            before = counters(llm)
            tokens, seconds = 0, 0.0
            for text in texts:
                prompt = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
                llm.reset_prefix_cache()
                t = time.perf_counter()
                llm.generate([prompt], SamplingParams(temperature=0.0, max_tokens=1), use_tqdm=False)
                ttft = time.perf_counter() - t
                llm.reset_prefix_cache()
                t = time.perf_counter()
                out = llm.generate([prompt], params, use_tqdm=False)[0].outputs[0]
                seconds += time.perf_counter() - t - ttft
                tokens += len(out.token_ids) - 1
            after = counters(llm)
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            entry = {"decode_tok_s": round(tokens / seconds, 1), "tokens": tokens}
            if delta.get("num_draft_tokens"):
                entry["acceptance"] = round(delta["num_accepted_tokens"] / delta["num_draft_tokens"], 3)
                entry["mean_accepted_per_step"] = round(1 + delta["num_accepted_tokens"] / delta["num_drafts"], 2)
            result[name] = entry
    finally:
        llm.shutdown() if hasattr(llm, "shutdown") else None
    return result


def counters(llm) -> dict[str, float]:
    return {m.name.removeprefix("vllm:spec_decode_"): m.value for m in llm.get_metrics()
            if m.name.startswith("vllm:spec_decode_num_") and hasattr(m, "value")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--draft-layers", default="8,16,24", help="self-draft depths, comma-separated")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/speculation.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    from tests.fixtures.checkpoints import smollm2
    from vllm_neuron_plugin.self_draft import make_self_draft

    model = smollm2()
    configs = {
        "none": None,
        "ngram k=3": {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_min": 2,
                      "prompt_lookup_max": 4},
        "ngram k=5": {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_min": 2,
                      "prompt_lookup_max": 4},
    }
    for n in map(int, args.draft_layers.split(",")):
        draft = make_self_draft(model, model.parent / f"{model.name}-self-draft-l{n}", n)
        configs[f"self-draft L{n} k=2"] = {"model": str(draft), "num_speculative_tokens": 2}
    prompts = {"grounded": GROUNDED, "chat": CHAT}
    result = {"model": "SmolLM2-135M-Instruct", "dtype": "bfloat16", "threads": os.cpu_count(),
              "new_tokens": args.new_tokens, "configs": {}}
    for name, spec in configs.items():
        result["configs"][name] = run_config(model, prompts, args.new_tokens, spec)
        print(name, result["configs"][name], flush=True)
    base = result["configs"]["none"]
    for r in result["configs"].values():
        for w, entry in r.items():
            entry["speedup"] = round(entry["decode_tok_s"] / base[w]["decode_tok_s"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| configuration | workload | decode tok/s | vs none | acceptance | tokens/step |")
    print("|---|---|---|---|---|---|")
    for name, r in result["configs"].items():
        for w, e in r.items():
            print(f"| {name} | {w} | {e['decode_tok_s']} | {e['speedup']}x | "
                  f"{e.get('acceptance', '-')} | {e.get('mean_accepted_per_step', '-')} |")


if __name__ == "__main__":
    main()
