"""Start-up on a prepared artifact vs preparing it: the C++ worker's load time for the bundled
model, in one run. Three ways to start, each in a fresh process so nothing is shared in memory:
  prepare   — empty artifact directory: read the checkpoint, cast/fuse, write the artifact;
  reuse     — the same config again: read the prepared weights as they are, no conversion;
  in-memory — save_sharded_checkpoint=false: convert on every start, write nothing.
The files are in the page cache for all three (the checkpoint was read by the first start).
Writes JSON with the medians and the reuse/prepare and reuse/in-memory ratios."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
import vllm_neuron_plugin.core as core
t = time.perf_counter()
w = core.Worker(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - t, "reused": w.artifact_reused,
                  "dir": w.artifact_dir}))
"""


def start(model: Path, config: dict, artifacts: Path | None) -> dict:
    env = dict(os.environ)
    env.pop("NEURON_COMPILED_ARTIFACTS", None)
    if artifacts is not None:
        env["NEURON_COMPILED_ARTIFACTS"] = str(artifacts)
    out = subprocess.run([sys.executable, "-c", CHILD, str(model), json.dumps(config)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "benchmarks" / "results" / "startup_artifacts.json")
    args = ap.parse_args()
    from tests.fixtures.checkpoints import smollm2

    model = smollm2()
    config = {"seq_len": 2048, "torch_dtype": args.dtype, "fused_qkv": True}
    times: dict[str, list[float]] = {"prepare": [], "reuse": [], "in_memory": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            artifacts = Path(tmp) / f"run{i}"
            first = start(model, config, artifacts)
            second = start(model, config, artifacts)
            assert not first["reused"] and second["reused"], (first, second)
            times["prepare"].append(first["seconds"])
            times["reuse"].append(second["seconds"])
            plain = start(model, {**config, "save_sharded_checkpoint": False}, None)
            times["in_memory"].append(plain["seconds"])
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "startup_artifacts",
        "model": "SmolLM2-135M-Instruct",
        "config": config,
        "runs": args.runs,
        "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "median_seconds": {k: round(v, 4) for k, v in med.items()},
        "reuse_over_prepare": round(med["reuse"] / med["prepare"], 3),
        "reuse_over_in_memory": round(med["reuse"] / med["in_memory"], 3),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
