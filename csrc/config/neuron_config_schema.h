// The NeuronConfig schema: every key of NxDI's NeuronConfig (and of its nested configs), its
// type, its NxDI default, and what this backend does with it. The parser, the README table and
// the tests all read this one table, so a key cannot be known to one and missing from another.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <nlohmann/json.hpp>

namespace vnp {

// What a key does here.
enum class Support {
  kHonoured,     // changes what the worker does
  kNoEffect,     // a Neuron hardware / static-graph knob: accepted, reported once in the log
  kUnsupported,  // only its default is accepted; anything else is refused naming the feature
  kDerived,      // computed from other keys (as NxDI does); given, it must equal the derivation
};

enum class Kind { kBool, kInt, kFloat, kString, kDtype, kIntList, kIntOrIntList, kList, kObject };

struct KeySpec {
  std::string name;
  std::string group;  // the NxDI API reference's grouping, for the README table
  Kind kind;
  nlohmann::json default_value;  // NxDI's default; null = None, or derived when derived_default
  Support support;
  std::string note;  // honoured: the effect; no effect: why; unsupported: the feature
  bool nullable = false;
  bool derived_default = false;  // NxDI computes the default from other keys
  int64_t min = INT64_MIN;       // integers and integer lists
  std::vector<std::string> choices;         // strings
  std::vector<nlohmann::json> supported;    // honoured keys: the valid values this backend runs
  const std::vector<KeySpec>* fields = nullptr;  // objects with a known shape
};

// Top-level keys, sorted by name.
const std::vector<KeySpec>& NeuronConfigSchema();

// The spec of `name` in `schema`, or nullptr.
const KeySpec* FindKey(const std::vector<KeySpec>& schema, std::string_view name);

// Type and range check of one value; `path` names the key in messages ("a.b").
absl::Status CheckValue(const KeySpec& spec, const nlohmann::json& value, const std::string& path);

// "an integer >= 1", "true or false", ...: what a key accepts, for messages and the README.
std::string Describe(const KeySpec& spec);

// Message prefix every configuration error starts with.
inline constexpr char kConfigError[] = "override_neuron_config: ";

std::string_view SupportName(Support s);

}  // namespace vnp
