// Helpers for C++ tests: write safetensors files and tiny random Llama checkpoints on disk.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace vnp::testing {

// A fresh empty directory under the system temp dir.
std::string TempDir(const std::string& name);

void WriteSafetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors);

struct TinyLlama {
  int64_t vocab = 96, hidden = 32, intermediate = 64, layers = 2, heads = 4, kv_heads = 2;
  bool tied = false;
  std::string rope_json = R"("rope_theta": 10000.0)";
};

// Writes config.json + model.safetensors with random fp32 weights; returns the directory.
std::string WriteTinyLlama(const std::string& name, const TinyLlama& spec, uint64_t seed = 0);

}  // namespace vnp::testing
