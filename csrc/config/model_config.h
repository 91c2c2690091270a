// HF config.json → the decoder's shape and per-architecture options. One generic decoder reads
// these flags; nothing else in the runtime branches on the architecture name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <c10/core/ScalarType.h>
#include <nlohmann/json_fwd.hpp>

namespace vnp {

enum class RopeType { kDefault, kLinear, kDynamic, kYarn, kLlama3 };

// HF `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (older files).
struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;  // linear, dynamic, yarn, llama3
  // llama3 frequency bands and yarn's correction range are relative to this length.
  int64_t original_max_position_embeddings = 2048;
  double low_freq_factor = 1.0;  // llama3
  double high_freq_factor = 4.0;
  double beta_fast = 32.0;  // yarn
  double beta_slow = 1.0;
  bool truncate = true;
  double attention_factor = 1.0;  // yarn: scales cos and sin
  // dynamic NTK: sequences longer than this grow the base (HF: max_position_embeddings).
  int64_t dynamic_threshold = 2048;
};

struct MoeConfig {
  int64_t num_experts = 0;  // 0: a dense model
  int64_t top_k = 0;
  int64_t intermediate_size = 0;
  bool normalize_top_k = true;  // Mixtral always; Qwen3-MoE per `norm_topk_prob`
  // Qwen3-MoE casts the top-k affinities to the activation dtype before scaling the expert
  // outputs; Mixtral scales in fp32.
  bool affinities_in_activation_dtype = false;
  // Checkpoint names: "<prefix>.gate.weight", "<prefix>.experts.<e>.<gate|up|down>.weight".
  std::string prefix;
  std::string gate_name, up_name, down_name;
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
  bool qkv_bias = false;  // q/k/v projections (Qwen2: always; Llama/Qwen3/Granite: attention_bias)
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;  // Qwen3: per-head RMSNorm of q and k before RoPE
  // Per layer: attention sees the last `window` keys (HF: kv > q - window); 0 = all keys.
  std::vector<int64_t> sliding_window;
  // Granite's multipliers (1 elsewhere); attention_scale 0 means 1/sqrt(head_dim).
  double embedding_multiplier = 1.0;
  double residual_multiplier = 1.0;
  double attention_scale = 0.0;
  double logits_scaling = 1.0;
  MoeConfig moe;
  std::vector<bool> sparse_layer;  // per layer: MoE block instead of the dense MLP
  RopeConfig rope;
  c10::ScalarType checkpoint_dtype = c10::ScalarType::Float;

  bool is_moe() const { return moe.num_experts > 0; }
  double AttentionScale() const;

  static absl::StatusOr<ModelConfig> FromJson(const nlohmann::json& j);
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);
};

// The architectures (HF `architectures[0]`) this build runs.
const std::vector<std::string>& SupportedArchitectures();

// "float32" / "bfloat16" / "float16" (and torch.* spellings) → ScalarType.
absl::StatusOr<c10::ScalarType> ParseDtype(std::string_view name);
std::string DtypeName(c10::ScalarType dtype);

}  // namespace vnp
