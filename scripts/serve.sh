#!/usr/bin/env bash
# Sets everything up (idempotent) and serves the bundled SmolLM2-135M-Instruct with
# `vllm serve` on 127.0.0.1:8000. Extra arguments go to `vllm serve`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cat >&2 <<TXT

Serving $VNP_MODEL on http://127.0.0.1:8000 (model name "smollm2"). Try:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "smollm2", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}'

TXT
export HF_HUB_OFFLINE=1
exec vllm serve "$VNP_MODEL" --host 127.0.0.1 --port 8000 --served-model-name smollm2 "$@"
