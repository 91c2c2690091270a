#!/usr/bin/env bash
# Sets everything up (idempotent), then runs every test: the C++ units (ctest) and the Python
# suite (parity against HF transformers, vLLM offline and `vllm serve` end to end).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$VNP_ROOT"
BUILD_DIR=$(ls -d build/cp3*/ | head -n 1)
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2
export HF_HUB_OFFLINE=1 VLLM_WORKER_MULTIPROC_METHOD=spawn
python -m pytest -q -ra tests/python "$@"
