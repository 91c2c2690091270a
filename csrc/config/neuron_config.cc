#include "config/neuron_config.h"

#include <algorithm>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "config/neuron_config_schema.h"

namespace vnp {
namespace {

using nlohmann::json;

absl::Status Error(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(kConfigError, message));
}

std::vector<std::string> Names(const std::vector<KeySpec>& schema) {
  std::vector<std::string> names;
  for (const KeySpec& k : schema) names.push_back(k.name);
  return names;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The object's keys with hyphens read as underscores; a key given in both spellings is an error.
absl::StatusOr<json> NormaliseKeys(const json& object, const std::string& where) {
  json out = json::object();
  for (const auto& [key, value] : object.items()) {
    std::string name = key;
    std::replace(name.begin(), name.end(), '-', '_');
    if (out.contains(name)) {
      return Error(absl::StrCat("'", name, "' is given twice", where, " (hyphenated and not)"));
    }
    out[name] = value;
  }
  return out;
}

absl::Status Unknown(const std::string& key, const std::string& path,
                     const std::vector<KeySpec>& schema) {
  return Error(absl::StrCat("unknown key '", path, key, "' (did you mean '", path,
                            ClosestKey(key, Names(schema)), "'?); see the NeuronConfig table "
                            "in the README for every key this backend knows"));
}

// Checks one given value against its spec and returns it in canonical form (dtype strings
// without "torch.", nested objects completed with their defaults).
absl::StatusOr<json> Canonical(const KeySpec& spec, const json& value, const std::string& path) {
  if (auto s = CheckValue(spec, value, path); !s.ok()) return s;
  if (spec.kind == Kind::kDtype && value.is_string()) {
    std::string d = value.get<std::string>();
    return json(d.starts_with("torch.") ? d.substr(6) : d);
  }
  if (spec.name.ends_with("_buckets") && value.is_array()) {
    std::vector<int64_t> v = value.get<std::vector<int64_t>>();
    std::sort(v.begin(), v.end());  // NxDI sorts bucket lists in place (not other int lists)
    return json(v);
  }
  if (spec.fields == nullptr || !value.is_object()) return value;
  auto given = NormaliseKeys(value, absl::StrCat(" in ", path));
  if (!given.ok()) return given.status();
  json out = json::object();
  for (const KeySpec& f : *spec.fields) out[f.name] = f.default_value;
  for (const auto& [key, v] : given->items()) {
    const KeySpec* f = FindKey(*spec.fields, key);
    if (f == nullptr) return Unknown(key, path + ".", *spec.fields);
    auto c = Canonical(*f, v, absl::StrCat(path, ".", key));
    if (!c.ok()) return c.status();
    out[key] = *c;
  }
  return out;
}

// NxDI's derived defaults, for keys the input left out.
void Derive(json& v, const json& given) {
  auto fill = [&](const std::string& key, const json& value) {
    if (!given.contains(key)) v[key] = value;
  };
  const int64_t seq_len = v["seq_len"], bs = v["batch_size"];
  fill("max_context_length", seq_len);
  fill("max_length", seq_len);
  const int64_t max_ctx = v["max_context_length"];
  fill("max_new_tokens", seq_len - max_ctx > 0 ? json(seq_len - max_ctx) : json(nullptr));
  fill("n_active_tokens", seq_len);
  fill("n_positions", seq_len);
  for (const char* k : {"max_batch_size", "ctx_batch_size", "tkg_batch_size", "spec_batch_size",
                        "kv_cache_batch_size", "pa_num_blocks"}) {
    fill(k, bs);
  }
  fill("pa_block_size", seq_len);
  fill("overrides_torch_dtype", given.contains("torch_dtype"));
  fill("lm_head_pad", v["logical_nc_config"].get<int64_t>() > 1);
  fill("scratchpad_page_size", max_ctx >= 32768 ? json(1024) : json(nullptr));
}

// Keys that are pure functions of others: computed always; given, they must agree.
json Computed(const json& v) {
  const bool fused = v["enable_fused_speculation"].get<bool>() ||
                     v["enable_eagle_speculation"].get<bool>();
  const int64_t max_length = v["max_length"];
  const int64_t world = v["tp_degree"].get<int64_t>() * v["pp_degree"].get<int64_t>() *
                        v["ep_degree"].get<int64_t>();
  return {
      {"world_size", world},
      {"local_ranks_size", world},
      {"buckets", json::array({v["seq_len"]})},
      {"bucket_n_active_tokens", false},
      {"is_chunked_prefill", !v["chunked_prefill_config"].is_null()},
      {"enable_token_tree", !v["token_tree_config"].is_null()},
      {"trace_tokengen_model", !fused},
      {"kv_cache_tiling", !v["disable_kv_cache_tiling"].get<bool>() && fused && max_length > 128 &&
                              max_length % 128 == 0},
      {"tile_cc", v["seq_len"].get<int64_t>() >= v["seq_len_threshold_for_cc_tiling"].get<int64_t>()},
      {"enable_long_context_mode", v["max_context_length"].get<int64_t>() >= 32768},
  };
}

// The backend runs only some of the valid values of a key.
absl::Status CheckSupported(const KeySpec& spec, const json& value, const std::string& path) {
  const bool feature = spec.support == Support::kUnsupported;
  const std::vector<json> runs = feature ? std::vector<json>{spec.default_value} : spec.supported;
  if (runs.empty() || std::find(runs.begin(), runs.end(), value) != runs.end()) {
    return absl::OkStatus();
  }
  return Error(absl::StrCat(
      "'", path, "'=", value.is_object() ? "{...}" : value.dump(),
      " is not supported by this backend yet",
      feature ? absl::StrCat(" (", spec.note, ")") : "", "; supported: ",
      absl::StrJoin(runs, ", ", [](std::string* o, const json& j) { absl::StrAppend(o, j.dump()); })));
}

// Cross-key rules, as NxDI validates them (its assertions become errors naming both values).
absl::Status Validate(const json& v) {
  auto i = [&](const char* k) { return v[k].get<int64_t>(); };
  auto b = [&](const char* k) { return v[k].get<bool>(); };
  if (const json& cf = v["capacity_factor"]; !cf.is_null() && !(cf.get<double>() > 0)) {
    return Error(absl::StrCat("capacity_factor must be > 0 (or null for no token dropping), got ",
                              cf.dump()));
  }
  if (i("max_context_length") > i("max_length")) {
    return Error(absl::StrCat("max_context_length (", i("max_context_length"),
                              ") must not exceed max_length (", i("max_length"), ")"));
  }
  if (i("max_length") > i("seq_len")) {
    return Error(absl::StrCat("max_length (", i("max_length"), ") must not exceed seq_len (",
                              i("seq_len"), ")"));
  }
  for (const auto& [list, limit] : {std::pair{"context_encoding_buckets", "max_context_length"},
                                    std::pair{"token_generation_buckets", "max_length"},
                                    std::pair{"prefix_buckets", "max_context_length"}}) {
    const json& l = v[list];
    if (l.is_null()) continue;
    if (!b("enable_bucketing")) {
      return Error(absl::StrCat(list, " is set but enable_bucketing is false; set "
                                      "\"enable_bucketing\": true to use it"));
    }
    if (l.empty()) return Error(absl::StrCat(list, " must not be empty"));
    if (l.back().get<int64_t>() > i(limit)) {
      return Error(absl::StrCat("the largest ", list, " entry (", l.back().get<int64_t>(),
                                ") must not exceed ", limit, " (", i(limit), ")"));
    }
  }
  if (!v["prefix_buckets"].is_null() && !b("is_prefix_caching")) {
    return Error("prefix_buckets needs is_prefix_caching=true");
  }
  if (b("is_prefix_caching") && !b("is_block_kv_layout")) {
    return Error("is_prefix_caching requires is_block_kv_layout=true");
  }
  if (const json& cp = v["chunked_prefill_config"]; !cp.is_null()) {
    if (!b("is_block_kv_layout")) {
      return Error("chunked_prefill_config requires is_block_kv_layout=true");
    }
    if (!cp["tkg_model_enabled"].get<bool>() && i("batch_size") != 1) {
      return Error(absl::StrCat("chunked_prefill_config.tkg_model_enabled=false requires "
                                "batch_size 1, got ", i("batch_size")));
    }
  }
  if (b("k_cache_transposed")) {
    for (const char* k : {"flash_decoding_enabled", "is_block_kv_layout"}) {
      if (b(k)) return Error(absl::StrCat("k_cache_transposed cannot be combined with ", k));
    }
    if (!v["chunked_prefill_config"].is_null()) {
      return Error("k_cache_transposed cannot be combined with chunked_prefill_config");
    }
  }
  if (!v["attention_dtype"].is_null() && v["attention_dtype"] != v["torch_dtype"] &&
      v["cast_type"] != "as-declared") {
    return Error(absl::StrCat("attention_dtype ", v["attention_dtype"].dump(),
                              " differs from torch_dtype ", v["torch_dtype"].dump(),
                              ", which needs cast_type \"as-declared\""));
  }
  if (const json& s = v["on_device_sampling_config"]; !s.is_null()) {
    const int64_t top_k = s["top_k"], global = s["global_topk"];
    const double top_p = s["top_p"], t = s["temperature"];
    if (top_k > global) {
      return Error(absl::StrCat("on_device_sampling_config.top_k must be -1 or in [0, global_topk=",
                                global, "], got ", top_k));
    }
    if (!(top_p > 0 && top_p <= 1)) {
      return Error(absl::StrCat("on_device_sampling_config.top_p must be in (0, 1], got ", top_p));
    }
    if (t < 0) {
      return Error(absl::StrCat("on_device_sampling_config.temperature must be >= 0, got ", t));
    }
  }
  if (b("enable_fused_speculation") && i("speculation_length") < 1) {
    return Error("enable_fused_speculation=true needs speculation_length >= 1 and a draft model "
                 "(vLLM's --speculative-config '{\"model\": DRAFT_DIR, \"num_speculative_tokens\": k}')");
  }
  if (i("speculation_length") > 0 && !v["on_device_sampling_config"].is_null()) {
    return Error(absl::StrCat(
        "speculation_length=", i("speculation_length"), " cannot be combined with "
        "on_device_sampling_config: NxDI's on-device sampler has no rejection sampling for drafts "
        "(Optimum Neuron refuses the pair too); drop one of them"));
  }
  // Kernel prerequisites NxDI asserts: a config refused on Neuron is refused here too.
  const std::pair<const char*, const char*> needs[] = {
      {"quantized_mlp_kernel_enabled", "mlp_kernel_enabled"},
      {"rmsnorm_quantize_kernel_enabled", "quantized_mlp_kernel_enabled"},
      {"qkv_kernel_enabled", "fused_qkv"},
      {"qkv_cte_nki_kernel_fuse_rope", "qkv_nki_kernel_enabled"},
      {"qkv_cte_nki_kernel_fuse_rope", "qkv_kernel_enabled"},
      {"attn_block_tkg_nki_kernel_enabled", "qkv_kernel_enabled"},
  };
  for (const auto& [flag, prerequisite] : needs) {
    if (b(flag) && !b(prerequisite)) {
      return Error(absl::StrCat(flag, "=true requires ", prerequisite, "=true"));
    }
  }
  if (b("strided_context_parallel_kernel_enabled") && i("cp_degree") <= 1) {
    return Error("strided_context_parallel_kernel_enabled=true requires cp_degree > 1");
  }
  return absl::OkStatus();
}

std::vector<int64_t> IntList(const json& v) {
  return v.is_null() ? std::vector<int64_t>{} : v.get<std::vector<int64_t>>();
}

}  // namespace

const std::vector<std::string>& KnownNeuronConfigKeys() {
  static const auto* keys = new std::vector<std::string>(Names(NeuronConfigSchema()));
  return *keys;
}

std::string ClosestKey(std::string_view key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& k : known) {
    size_t d = EditDistance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best;
}

absl::StatusOr<NeuronConfig> NeuronConfig::FromJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error("malformed JSON");
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("override_neuron_config must be a JSON object, got ", j.dump()));
  }
  auto given = NormaliseKeys(j, "");
  if (!given.ok()) return given.status();
  const std::vector<KeySpec>& schema = NeuronConfigSchema();

  json v = json::object();
  for (const KeySpec& k : schema) v[k.name] = k.default_value;
  for (auto& [key, value] : given->items()) {
    const KeySpec* spec = FindKey(schema, key);
    if (spec == nullptr) return Unknown(key, "", schema);
    auto c = Canonical(*spec, value, key);
    if (!c.ok()) return c.status();
    value = *c;
    v[key] = *c;
  }
  Derive(v, *given);
  const json computed = Computed(v);
  for (const auto& [key, value] : computed.items()) {
    if (given->contains(key) && (*given)[key] != value) {
      return Error(absl::StrCat("'", key, "' is derived (", FindKey(schema, key)->note,
                                ") and would be ", value.dump(), "; got ", (*given)[key].dump()));
    }
    v[key] = value;
  }
  // NxDI's own rules first (a config Neuron refuses is refused here), then this backend's.
  if (auto s = Validate(v); !s.ok()) return s;
  NeuronConfig c;
  for (const KeySpec& k : schema) {
    if (auto s = CheckSupported(k, v[k.name], k.name); !s.ok()) return s;
    if (k.support == Support::kNoEffect && !k.derived_default && v[k.name] != k.default_value) {
      c.no_effect_keys.push_back(k.name);
    }
  }

  c.tp_degree = v["tp_degree"];
  c.batch_size = v["batch_size"];
  c.seq_len = v["seq_len"];
  c.max_context_length = v["max_context_length"];
  c.max_length = v["max_length"];
  c.torch_dtype = *ParseDtype(v["torch_dtype"].get<std::string>());
  c.fused_qkv = v["fused_qkv"];
  c.save_sharded_checkpoint = v["save_sharded_checkpoint"];
  c.skip_warmup = v["skip_warmup"];
  c.enable_bucketing = v["enable_bucketing"];
  c.context_encoding_buckets = IntList(v["context_encoding_buckets"]);
  c.token_generation_buckets = IntList(v["token_generation_buckets"]);
  c.prefix_buckets = IntList(v["prefix_buckets"]);
  c.is_block_kv_layout = v["is_block_kv_layout"];
  c.pa_block_size = v["pa_block_size"];
  c.pa_num_blocks = v["pa_num_blocks"];
  c.is_prefix_caching = v["is_prefix_caching"];
  if (const json& cp = v["chunked_prefill_config"]; !cp.is_null()) {
    c.chunked_prefill = ChunkedPrefillConfig{cp["max_num_seqs"], cp["tkg_model_enabled"]};
  }
  if (const json& ods = v["on_device_sampling_config"]; !ods.is_null()) {
    c.on_device_sampling = OnDeviceSampling{ods["do_sample"], ods["dynamic"], ods["deterministic"],
                                            ods["global_topk"], ods["top_k"], ods["top_p"],
                                            ods["temperature"]};
  }
  if (!v["capacity_factor"].is_null()) c.capacity_factor = v["capacity_factor"].get<double>();
  if (given->contains("normalize_top_k_affinities")) {
    c.normalize_top_k_affinities = v["normalize_top_k_affinities"].get<bool>();
  }
  c.speculation_length = v["speculation_length"];
  c.enable_fused_speculation = v["enable_fused_speculation"];
  c.buckets = BucketPlan::For(c);
  // A verify row holds the last token and k drafts, routed like token generation with
  // required = context + k (nxdi-semantics 3.3): k must leave room in the largest bucket.
  if (const int64_t largest = c.buckets.token_generation.empty() ? c.max_length : c.buckets.token_generation.back();
      c.speculation_length >= largest) {
    return Error(absl::StrCat("speculation_length=", c.speculation_length,
                              " leaves no room in the largest token-generation bucket (", largest,
                              "); allowed: 0 (off) to ", largest - 1));
  }
  c.json_ = v.dump(2);  // nlohmann's object is a std::map: keys come out sorted
  return c;
}

absl::Status NeuronConfig::CheckModel(const ModelConfig& m) const {
  if (!m.is_moe()) {
    const char* key = capacity_factor              ? "capacity_factor"
                      : normalize_top_k_affinities ? "normalize_top_k_affinities"
                                                   : nullptr;
    if (key == nullptr) return absl::OkStatus();
    return Error(absl::StrCat("'", key, "' applies to mixture-of-experts models ",
                              "(MixtralForCausalLM, Qwen3MoeForCausalLM); ", m.architecture,
                              " has no experts"));
  }
  if (normalize_top_k_affinities && *normalize_top_k_affinities != m.moe.normalize_top_k) {
    return Error(absl::StrCat(
        "normalize_top_k_affinities=", *normalize_top_k_affinities ? "true" : "false",
        " contradicts the checkpoint: ", m.architecture,
        m.architecture == "MixtralForCausalLM" ? " always renormalises"
                                               : " takes it from config.json norm_topk_prob",
        ", which gives ", m.moe.normalize_top_k ? "true" : "false"));
  }
  return absl::OkStatus();
}

}  // namespace vnp
