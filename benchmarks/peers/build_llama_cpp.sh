#!/usr/bin/env bash
# Builds llama.cpp's llama-server and llama-bench for the performance peers, offline: the
# source is the copy vendored in the llama-cpp-python sdist on PyPI. Native CPU flags, no curl,
# no GPU. Idempotent; prints the bin folder. Usage: build_llama_cpp.sh [VERSION]
set -euo pipefail
VERSION=${1:-0.3.36}
CACHE=${VNP_CACHE:-$HOME/.cache/vllm-neuron-plugin}/llama.cpp-$VERSION
BIN=$CACHE/build/bin
if [ -x "$BIN/llama-server" ] && [ -x "$BIN/llama-bench" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$CACHE"
cd "$CACHE"
[ -f sdist.tar.gz ] || { python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python \
  "llama-cpp-python==$VERSION" -d dl >&2 && mv dl/llama_cpp_python-*.tar.gz sdist.tar.gz; }
rm -rf src && mkdir src && tar -xzf sdist.tar.gz -C src --strip-components=1
cmake -S src/vendor/llama.cpp -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >&2
cmake --build build -j"${JOBS:-2}" --target llama-server llama-bench >&2
echo "$BIN"
