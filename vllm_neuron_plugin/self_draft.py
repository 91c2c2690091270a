"""A self-speculative draft: the first N decoder layers of a checkpoint with its own final norm
and lm_head, written as a checkpoint of its own (config.json with num_hidden_layers = N,
safetensors, tokenizer files), for `--speculative-config '{"model": OUT_DIR, ...}'`. It needs no
training and no download, so speculation works with the bundled model alone; the acceptance it
gets is measured by benchmarks/speculation.py.

Usage: python -m vllm_neuron_plugin.self_draft MODEL_DIR OUT_DIR --layers N"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja")
_LAYER = re.compile(r"^model\.layers\.(\d+)\.")


def make_self_draft(model_dir: Path, out_dir: Path, layers: int) -> Path:
    """Writes the draft to out_dir (skipped when an identical one is there) and returns it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    config = json.loads((model_dir / "config.json").read_text())
    total = config["num_hidden_layers"]
    if not 1 <= layers < total:
        raise ValueError(f"--layers must be in [1, {total - 1}] for a {total}-layer model, got {layers}")
    config["num_hidden_layers"] = layers
    # Per-layer settings keep those of the first N layers.
    if isinstance(config.get("layer_types"), list):
        config["layer_types"] = config["layer_types"][:layers]
    if isinstance(config.get("mlp_only_layers"), list):
        config["mlp_only_layers"] = [i for i in config["mlp_only_layers"] if i < layers]
    marker = out_dir / "self_draft.json"
    source = {"model": str(model_dir.resolve()), "layers": layers}
    if marker.exists() and json.loads(marker.read_text()) == source:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                m = _LAYER.match(name)
                if m is None or int(m.group(1)) < layers:
                    tensors[name] = f.get_tensor(name)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        if (model_dir / name).exists():
            shutil.copy(model_dir / name, out_dir / name)
    marker.write_text(json.dumps(source) + "\n")
    return out_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--layers", type=int, required=True)
    args = ap.parse_args()
    print(make_self_draft(args.model_dir, args.out_dir, args.layers))


if __name__ == "__main__":
    main()
