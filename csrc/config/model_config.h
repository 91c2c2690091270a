// HF config.json → the decoder's shape. Only what the runtime needs, validated once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>
#include <c10/core/ScalarType.h>
#include <nlohmann/json_fwd.hpp>

namespace vnp {

enum class RopeType { kDefault, kLlama3 };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  // llama3 frequency scaling (HF `rope_scaling` / `rope_parameters` with rope_type "llama3").
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  RopeConfig rope;
  c10::ScalarType checkpoint_dtype = c10::ScalarType::Float;

  static absl::StatusOr<ModelConfig> FromJson(const nlohmann::json& j);
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);
};

// "float32" / "bfloat16" / "float16" (and torch.* spellings) → ScalarType.
absl::StatusOr<c10::ScalarType> ParseDtype(std::string_view name);
std::string DtypeName(c10::ScalarType dtype);

}  // namespace vnp
