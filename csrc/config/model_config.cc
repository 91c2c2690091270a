#include "config/model_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

namespace vnp {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: ", what));
}

absl::StatusOr<int64_t> RequireInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    return Bad(absl::StrCat("'", key, "' must be a positive integer"));
  }
  return it->get<int64_t>();
}

template <typename T>
T Get(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

// transformers' yarn attention factor: 0.1 * mscale * ln(scale) + 1 for scale > 1.
double YarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

absl::Status ParseRope(const json& j, RopeConfig& rope, int64_t max_positions) {
  // transformers 5 writes `rope_parameters` (theta inside); older files use `rope_theta` and
  // an optional `rope_scaling` dict. Accept both.
  rope.theta = Get<double>(j, "rope_theta", 10000.0);
  rope.original_max_position_embeddings = max_positions;
  rope.dynamic_threshold = max_positions;
  const json* params = nullptr;
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) params = &*it;
  if (auto it = j.find("rope_scaling"); it != j.end() && it->is_object()) params = &*it;
  if (params == nullptr) return absl::OkStatus();
  const json& p = *params;
  rope.theta = Get<double>(p, "rope_theta", rope.theta);
  const std::string type = Get<std::string>(p, "rope_type", Get<std::string>(p, "type", "default"));
  // As transformers: a top-level original_max_position_embeddings (Phi-3 style) wins, then the
  // one inside the rope dict, then max_position_embeddings.
  rope.original_max_position_embeddings = Get<int64_t>(
      j, "original_max_position_embeddings",
      Get<int64_t>(p, "original_max_position_embeddings", max_positions));
  auto factor = [&]() -> absl::StatusOr<double> {
    auto it = p.find("factor");
    if (it == p.end() || !it->is_number() || it->get<double>() < 1.0) {
      return Bad(absl::StrCat("rope type '", type, "' needs a numeric 'factor' >= 1"));
    }
    return it->get<double>();
  };
  if (type == "default") return absl::OkStatus();
  if (type == "linear" || type == "dynamic" || type == "llama3") {
    auto f = factor();
    if (!f.ok()) return f.status();
    rope.factor = *f;
    if (type == "linear") rope.type = RopeType::kLinear;
    if (type == "dynamic") rope.type = RopeType::kDynamic;
    if (type == "llama3") {
      rope.type = RopeType::kLlama3;
      rope.low_freq_factor = Get<double>(p, "low_freq_factor", 1.0);
      rope.high_freq_factor = Get<double>(p, "high_freq_factor", 4.0);
      if (rope.high_freq_factor <= rope.low_freq_factor) {
        return Bad("llama3 rope needs high_freq_factor > low_freq_factor");
      }
    }
    return absl::OkStatus();
  }
  if (type == "yarn") {
    rope.type = RopeType::kYarn;
    // transformers: a missing factor is max_position_embeddings / original_max_position_embeddings.
    rope.factor = p.contains("factor") && !p["factor"].is_null()
                      ? p["factor"].get<double>()
                      : static_cast<double>(max_positions) / rope.original_max_position_embeddings;
    // `x or default` in transformers: 0 and null both mean the default.
    rope.beta_fast = Get<double>(p, "beta_fast", 0.0);
    rope.beta_slow = Get<double>(p, "beta_slow", 0.0);
    if (rope.beta_fast == 0) rope.beta_fast = 32.0;
    if (rope.beta_slow == 0) rope.beta_slow = 1.0;
    rope.truncate = Get<bool>(p, "truncate", true);
    const double mscale = Get<double>(p, "mscale", 0.0);
    const double mscale_all_dim = Get<double>(p, "mscale_all_dim", 0.0);
    if (p.contains("attention_factor") && !p["attention_factor"].is_null()) {
      rope.attention_factor = p["attention_factor"].get<double>();
    } else if (mscale != 0 && mscale_all_dim != 0) {
      rope.attention_factor = YarnMscale(rope.factor, mscale) / YarnMscale(rope.factor, mscale_all_dim);
    } else {
      rope.attention_factor = YarnMscale(rope.factor, 1.0);
    }
    return absl::OkStatus();
  }
  return Bad(absl::StrCat("rope type '", type,
                          "' is not supported; supported: default, linear, dynamic, yarn, llama3"));
}

// Which layers use a sliding window, following each model's transformers code.
absl::Status ParseSlidingWindow(const json& j, ModelConfig& c, bool qwen_style) {
  c.sliding_window.assign(c.num_layers, 0);
  const int64_t window = Get<int64_t>(j, "sliding_window", 0);
  if (window < 0) return Bad("'sliding_window' must be positive or null");
  if (!qwen_style) {  // Mistral / Mixtral: every layer, whenever sliding_window is set
    if (window > 0) c.sliding_window.assign(c.num_layers, window);
    return absl::OkStatus();
  }
  // Qwen2 / Qwen3: only with use_sliding_window, on layer_types' "sliding_attention" layers
  // (older files: layers from max_window_layers on).
  if (!Get<bool>(j, "use_sliding_window", false) || window == 0) return absl::OkStatus();
  auto types = j.find("layer_types");
  if (types != j.end() && types->is_array()) {
    if (static_cast<int64_t>(types->size()) != c.num_layers) {
      return Bad(absl::StrCat("'layer_types' has ", types->size(), " entries for ", c.num_layers,
                              " layers"));
    }
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string t = (*types)[i].is_string() ? (*types)[i].get<std::string>() : "";
      if (t == "sliding_attention") c.sliding_window[i] = window;
      else if (t != "full_attention") {
        return Bad(absl::StrCat("layer_types[", i, "] is '", t,
                                "'; allowed: full_attention, sliding_attention"));
      }
    }
    return absl::OkStatus();
  }
  const int64_t first = Get<int64_t>(j, "max_window_layers", 28);
  for (int64_t i = first; i < c.num_layers; ++i) c.sliding_window[i] = window;
  return absl::OkStatus();
}

absl::Status ParseMoe(const json& j, ModelConfig& c, bool qwen3_moe) {
  MoeConfig& m = c.moe;
  c.sparse_layer.assign(c.num_layers, false);
  if (qwen3_moe) {
    // transformers 5 saves `num_local_experts`; Hub checkpoints say `num_experts`.
    m.num_experts = Get<int64_t>(j, "num_experts", Get<int64_t>(j, "num_local_experts", 0));
    m.intermediate_size = Get<int64_t>(j, "moe_intermediate_size", 0);
    m.normalize_top_k = Get<bool>(j, "norm_topk_prob", false);
    m.affinities_in_activation_dtype = true;
    m.prefix = "mlp", m.gate_name = "gate_proj", m.up_name = "up_proj", m.down_name = "down_proj";
    const int64_t step = Get<int64_t>(j, "decoder_sparse_step", 1);
    if (step < 1) return Bad("'decoder_sparse_step' must be >= 1");
    std::vector<int64_t> dense = Get<std::vector<int64_t>>(j, "mlp_only_layers", {});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      c.sparse_layer[i] = m.num_experts > 0 && (i + 1) % step == 0 &&
                          std::find(dense.begin(), dense.end(), i) == dense.end();
    }
  } else {  // Mixtral
    m.num_experts = Get<int64_t>(j, "num_local_experts", 0);
    m.intermediate_size = c.intermediate_size;
    m.normalize_top_k = true;
    m.prefix = "block_sparse_moe", m.gate_name = "w1", m.up_name = "w3", m.down_name = "w2";
    c.sparse_layer.assign(c.num_layers, true);
  }
  m.top_k = Get<int64_t>(j, "num_experts_per_tok", 0);
  if (m.num_experts < 1 || m.top_k < 1 || m.top_k > m.num_experts || m.intermediate_size < 1) {
    return Bad(absl::StrCat("MoE needs num_experts >= 1, 1 <= num_experts_per_tok <= num_experts and ",
                            "a positive expert intermediate size; got ", m.num_experts, ", ",
                            m.top_k, ", ", m.intermediate_size));
  }
  return absl::OkStatus();
}

// Per-architecture options on top of the common Llama-shaped fields.
absl::Status ApplyArchitecture(const json& j, ModelConfig& c) {
  const std::string& a = c.architecture;
  const bool attention_bias = Get<bool>(j, "attention_bias", false);
  c.sparse_layer.assign(c.num_layers, false);
  c.sliding_window.assign(c.num_layers, 0);
  if (a == "LlamaForCausalLM" || a == "GraniteForCausalLM") {
    c.qkv_bias = c.o_bias = attention_bias;
    c.mlp_bias = Get<bool>(j, "mlp_bias", false);
    if (a == "GraniteForCausalLM") {
      c.embedding_multiplier = Get<double>(j, "embedding_multiplier", 1.0);
      c.residual_multiplier = Get<double>(j, "residual_multiplier", 1.0);
      c.attention_scale = Get<double>(j, "attention_multiplier", 1.0);
      c.logits_scaling = Get<double>(j, "logits_scaling", 1.0);
      if (c.logits_scaling == 0) return Bad("'logits_scaling' must not be 0");
    }
    return absl::OkStatus();
  }
  if (a == "MistralForCausalLM" || a == "MixtralForCausalLM") {
    if (auto s = ParseSlidingWindow(j, c, /*qwen_style=*/false); !s.ok()) return s;
    return a == "MixtralForCausalLM" ? ParseMoe(j, c, /*qwen3_moe=*/false) : absl::OkStatus();
  }
  if (a == "Qwen2ForCausalLM") {
    c.qkv_bias = true;  // Qwen2: q/k/v bias, none on o_proj
    return ParseSlidingWindow(j, c, /*qwen_style=*/true);
  }
  if (a == "Qwen3ForCausalLM" || a == "Qwen3MoeForCausalLM") {
    c.qkv_bias = c.o_bias = attention_bias;
    c.qk_norm = true;
    if (auto s = ParseSlidingWindow(j, c, /*qwen_style=*/true); !s.ok()) return s;
    return a == "Qwen3MoeForCausalLM" ? ParseMoe(j, c, /*qwen3_moe=*/true) : absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("architecture '", a, "' is not supported; supported: ",
                   absl::StrJoin(SupportedArchitectures(), ", ")));
}

}  // namespace

const std::vector<std::string>& SupportedArchitectures() {
  static const auto* archs = new std::vector<std::string>{
      "LlamaForCausalLM",    "MistralForCausalLM",  "Qwen2ForCausalLM",    "Qwen3ForCausalLM",
      "GraniteForCausalLM",  "MixtralForCausalLM",  "Qwen3MoeForCausalLM"};
  return *archs;
}

double ModelConfig::AttentionScale() const {
  return attention_scale != 0 ? attention_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

absl::StatusOr<c10::ScalarType> ParseDtype(std::string_view name) {
  if (name.starts_with("torch.")) name.remove_prefix(6);
  if (name == "float32" || name == "float" || name == "fp32") return c10::ScalarType::Float;
  if (name == "bfloat16" || name == "bf16") return c10::ScalarType::BFloat16;
  if (name == "float16" || name == "half" || name == "fp16") return c10::ScalarType::Half;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype '", std::string(name), "'; allowed: float32, bfloat16, float16"));
}

std::string DtypeName(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Half: return "float16";
    default: return c10::toString(dtype);
  }
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const json& j) {
  if (!j.is_object()) return Bad("not a JSON object");
  ModelConfig c;
  auto archs = j.find("architectures");
  if (archs == j.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return Bad(absl::StrCat("missing 'architectures'; supported: ",
                            absl::StrJoin(SupportedArchitectures(), ", ")));
  }
  c.architecture = (*archs)[0].get<std::string>();
  const auto& supported = SupportedArchitectures();
  if (std::find(supported.begin(), supported.end(), c.architecture) == supported.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", c.architecture,
                     "' is not supported; supported: ", absl::StrJoin(supported, ", ")));
  }
  try {
#define VNP_REQUIRE(field, key)        \
  {                                    \
    auto v = RequireInt(j, key);       \
    if (!v.ok()) return v.status();    \
    c.field = *v;                      \
  }
    VNP_REQUIRE(vocab_size, "vocab_size");
    VNP_REQUIRE(hidden_size, "hidden_size");
    VNP_REQUIRE(intermediate_size, "intermediate_size");
    VNP_REQUIRE(num_layers, "num_hidden_layers");
    VNP_REQUIRE(num_heads, "num_attention_heads");
#undef VNP_REQUIRE
    c.num_kv_heads = Get<int64_t>(j, "num_key_value_heads", c.num_heads);
    c.head_dim = Get<int64_t>(j, "head_dim", c.hidden_size / c.num_heads);
    c.max_position_embeddings = Get<int64_t>(j, "max_position_embeddings", 2048);
    c.rms_norm_eps = Get<double>(j, "rms_norm_eps", 1e-6);
    c.tie_word_embeddings = Get<bool>(j, "tie_word_embeddings", false);
    std::string act = Get<std::string>(j, "hidden_act", "silu");
    if (act != "silu") {
      return Bad(absl::StrCat("hidden_act '", act, "' is not supported; supported: silu"));
    }
    std::string dtype = Get<std::string>(j, "torch_dtype", Get<std::string>(j, "dtype", "float32"));
    auto parsed = ParseDtype(dtype);
    if (!parsed.ok()) return parsed.status();
    c.checkpoint_dtype = *parsed;
    if (auto s = ParseRope(j, c.rope, c.max_position_embeddings); !s.ok()) return s;
    if (auto s = ApplyArchitecture(j, c); !s.ok()) return s;
  } catch (const json::exception& e) {
    return Bad(e.what());
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return Bad(absl::StrCat("num_attention_heads (", c.num_heads,
                            ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")"));
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return Bad(absl::StrCat("head_dim must be a positive even number, got ", c.head_dim));
  }
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON"));
  return FromJson(j);
}

}  // namespace vnp
