#include "config/neuron_config.h"

#include <algorithm>
#include <functional>
#include <map>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

#include "config/model_config.h"

namespace vnp {
namespace {

using nlohmann::json;
using Setter = std::function<absl::Status(const json&, NeuronConfig&)>;

absl::Status TypeError(std::string_view key, std::string_view want, const json& got) {
  return absl::InvalidArgumentError(absl::StrCat("override_neuron_config: '", std::string(key),
                                                 "' must be ", std::string(want), ", got ",
                                                 got.dump()));
}

Setter PositiveInt(int64_t NeuronConfig::*field, std::string key) {
  return [field, key](const json& v, NeuronConfig& c) {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) return TypeError(key, "a positive integer", v);
    c.*field = v.get<int64_t>();
    return absl::OkStatus();
  };
}

Setter NonNegativeInt(int64_t NeuronConfig::*field, std::string key) {
  return [field, key](const json& v, NeuronConfig& c) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0) return TypeError(key, "an integer >= 0", v);
    c.*field = v.get<int64_t>();
    return absl::OkStatus();
  };
}

Setter Bool(bool NeuronConfig::*field, std::string key) {
  return [field, key](const json& v, NeuronConfig& c) {
    if (!v.is_boolean()) return TypeError(key, "true or false", v);
    c.*field = v.get<bool>();
    return absl::OkStatus();
  };
}

const std::map<std::string, Setter>& Setters() {
  static const auto* setters = new std::map<std::string, Setter>{
      {"tp_degree",
       [](const json& v, NeuronConfig& c) {
         if (!v.is_number_integer() || v.get<int64_t>() != 1) {
           return absl::InvalidArgumentError(absl::StrCat(
               "override_neuron_config: tp_degree ", v.dump(),
               " is not supported yet by this backend; allowed: 1"));
         }
         c.tp_degree = 1;
         return absl::OkStatus();
       }},
      {"batch_size", PositiveInt(&NeuronConfig::batch_size, "batch_size")},
      {"seq_len", PositiveInt(&NeuronConfig::seq_len, "seq_len")},
      {"max_context_length", PositiveInt(&NeuronConfig::max_context_length, "max_context_length")},
      {"torch_dtype",
       [](const json& v, NeuronConfig& c) {
         if (!v.is_string()) return TypeError("torch_dtype", "a dtype string", v);
         auto d = ParseDtype(v.get<std::string>());
         if (!d.ok()) {
           return absl::InvalidArgumentError(
               absl::StrCat("override_neuron_config: torch_dtype: ", d.status().message()));
         }
         c.torch_dtype = *d;
         return absl::OkStatus();
       }},
      {"is_block_kv_layout", Bool(&NeuronConfig::is_block_kv_layout, "is_block_kv_layout")},
      {"pa_block_size", PositiveInt(&NeuronConfig::pa_block_size, "pa_block_size")},
      {"pa_num_blocks", NonNegativeInt(&NeuronConfig::pa_num_blocks, "pa_num_blocks")},
      {"is_prefix_caching", Bool(&NeuronConfig::is_prefix_caching, "is_prefix_caching")},
      {"is_chunked_prefill", Bool(&NeuronConfig::is_chunked_prefill, "is_chunked_prefill")},
      {"output_logits", Bool(&NeuronConfig::output_logits, "output_logits")},
  };
  return *setters;
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

}  // namespace

const std::vector<std::string>& KnownNeuronConfigKeys() {
  static const auto* keys = [] {
    auto* k = new std::vector<std::string>();
    for (const auto& [name, _] : Setters()) k->push_back(name);
    return k;
  }();
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
  if (j.is_discarded()) return absl::InvalidArgumentError("override_neuron_config: malformed JSON");
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("override_neuron_config must be a JSON object, got ", j.dump()));
  }
  NeuronConfig c;
  bool has_max_context = false;
  for (const auto& [key, value] : j.items()) {
    std::string name = key;
    std::replace(name.begin(), name.end(), '-', '_');  // hyphenated spellings mean the same key
    auto it = Setters().find(name);
    if (it == Setters().end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "override_neuron_config: unknown or not yet supported key '", key,
          "' (did you mean '", ClosestKey(name, KnownNeuronConfigKeys()),
          "'?); keys this version accepts: ", absl::StrJoin(KnownNeuronConfigKeys(), ", ")));
    }
    if (auto s = it->second(value, c); !s.ok()) return s;
    has_max_context |= name == "max_context_length";
  }
  if (!has_max_context) c.max_context_length = c.seq_len;
  if (c.max_context_length > c.seq_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "override_neuron_config: max_context_length (", c.max_context_length,
        ") must not exceed seq_len (", c.seq_len, ")"));
  }
  if (c.is_prefix_caching && !c.is_block_kv_layout) {
    return absl::InvalidArgumentError(
        "override_neuron_config: is_prefix_caching requires is_block_kv_layout=true");
  }
  return c;
}

std::string NeuronConfig::ToJson() const {
  json j = {{"tp_degree", tp_degree},
            {"batch_size", batch_size},
            {"seq_len", seq_len},
            {"max_context_length", max_context_length},
            {"torch_dtype", DtypeName(torch_dtype)},
            {"is_block_kv_layout", is_block_kv_layout},
            {"pa_block_size", pa_block_size},
            {"pa_num_blocks", pa_num_blocks},
            {"is_prefix_caching", is_prefix_caching},
            {"is_chunked_prefill", is_chunked_prefill},
            {"output_logits", output_logits}};
  return j.dump(2);  // nlohmann's object is a std::map: keys come out sorted
}

}  // namespace vnp
