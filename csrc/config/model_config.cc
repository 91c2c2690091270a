#include "config/model_config.h"

#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

namespace vnp {
namespace {

using nlohmann::json;

constexpr const char* kSupportedArchitectures[] = {"LlamaForCausalLM"};

absl::StatusOr<int64_t> RequireInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: '", key, "' must be a positive integer"));
  }
  return it->get<int64_t>();
}

template <typename T>
T Get(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

absl::Status ParseRope(const json& j, RopeConfig& rope) {
  // transformers 5 writes `rope_parameters` (theta inside); older files use `rope_theta` and
  // an optional `rope_scaling` dict. Accept both.
  rope.theta = Get<double>(j, "rope_theta", 10000.0);
  const json* params = nullptr;
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) params = &*it;
  if (auto it = j.find("rope_scaling"); it != j.end() && it->is_object()) params = &*it;
  if (params == nullptr) return absl::OkStatus();
  rope.theta = Get<double>(*params, "rope_theta", rope.theta);
  std::string type = Get<std::string>(*params, "rope_type", Get<std::string>(*params, "type", "default"));
  if (type == "default") return absl::OkStatus();
  if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    rope.factor = Get<double>(*params, "factor", 8.0);
    rope.low_freq_factor = Get<double>(*params, "low_freq_factor", 1.0);
    rope.high_freq_factor = Get<double>(*params, "high_freq_factor", 4.0);
    rope.original_max_position_embeddings =
        Get<int64_t>(*params, "original_max_position_embeddings", 8192);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "config.json: rope type '", type, "' is not supported yet; supported: default, llama3"));
}

}  // namespace

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
  if (!j.is_object()) return absl::InvalidArgumentError("config.json: not a JSON object");
  ModelConfig c;
  auto archs = j.find("architectures");
  if (archs == j.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return absl::InvalidArgumentError("config.json: missing 'architectures'");
  }
  c.architecture = (*archs)[0].get<std::string>();
  bool supported = false;
  for (const char* a : kSupportedArchitectures) supported |= c.architecture == a;
  if (!supported) {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", c.architecture,
                     "' is not supported; supported: ", absl::StrJoin(kSupportedArchitectures, ", ")));
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
    c.attention_bias = Get<bool>(j, "attention_bias", false);
    c.mlp_bias = Get<bool>(j, "mlp_bias", false);
    std::string act = Get<std::string>(j, "hidden_act", "silu");
    if (act != "silu") {
      return absl::InvalidArgumentError(
          absl::StrCat("config.json: hidden_act '", act, "' is not supported; supported: silu"));
    }
    std::string dtype = Get<std::string>(j, "torch_dtype", Get<std::string>(j, "dtype", "float32"));
    auto parsed = ParseDtype(dtype);
    if (!parsed.ok()) return parsed.status();
    c.checkpoint_dtype = *parsed;
    if (auto s = ParseRope(j, c.rope); !s.ok()) return s;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: ", e.what()));
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: num_attention_heads (", c.num_heads,
        ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")"));
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: head_dim must be a positive even number, got ", c.head_dim));
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
