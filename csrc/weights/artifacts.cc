#include "weights/artifacts.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_join.h>
#include <nlohmann/json.hpp>

#include "weights/safetensors.h"

namespace vnp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormat = 1;  // bump when the prepared layout changes
constexpr char kConfigFile[] = "neuron_config.json";
constexpr char kWeightsFile[] = "model.safetensors";

// FNV-1a, 64 bit: stable across runs and builds, unlike std::hash.
struct Fnv {
  uint64_t h;
  void Add(std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;  // separator, so ("ab","c") != ("a","bc")
  }
};

absl::StatusOr<std::string> ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", p.string()));
  return absl::OkStatus();
}

// $NEURON_COMPILED_ARTIFACTS, or "" when unset or empty.
std::string CompiledArtifactsEnv() {
  const char* env = std::getenv("NEURON_COMPILED_ARTIFACTS");
  return env != nullptr ? env : "";
}

// Keys whose values differ between two resolved configs, for the mismatch message.
std::vector<std::string> Differences(const json& a, const json& b) {
  std::vector<std::string> out;
  for (const auto& [k, v] : a.items()) {
    if (!b.contains(k) || b[k] != v) out.push_back(absl::StrCat(k, "=", v.dump()));
  }
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k)) out.push_back(absl::StrCat(k, " (absent here)"));
  }
  return out;
}

// neuron_config.json as NxDI writes it: the HF config's attributes, the nested resolved
// "neuron_config", and "metadata".
absl::StatusOr<json> ArtifactConfig(const std::string& model_dir, const NeuronConfig& nc,
                                    const std::string& key, bool own_weights) {
  auto text = ReadFile(fs::path(model_dir) / "config.json");
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("config.json: not a JSON object");
  j.erase("dtype");  // NxDI drops it: torch_dtype in neuron_config decides
  j["neuron_config"] = json::parse(nc.ToJson());
  j["metadata"] = {{"artifact_key", key},
                   {"format", kFormat},
                   {"source_model", fs::absolute(model_dir).string()},
                   {"weights", own_weights ? kWeightsFile : "source"}};
  return j;
}

absl::Status WritePrepared(const fs::path& dir, const json& config, const PreparedWeights& p,
                           const ModelConfig& mc, bool own_weights) {
  std::error_code ec;
  fs::path tmp = fs::path(dir.string() + absl::StrCat(".tmp-", ::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  if (own_weights) {
    auto s = WriteSafetensors((tmp / kWeightsFile).string(), p.weights.Named(mc),
                              {{"format", "pt"}, {"producer", "vllm-neuron-plugin"}});
    if (!s.ok()) return s;
  }
  if (auto s = WriteFile(tmp / kConfigFile, config.dump(2)); !s.ok()) return s;
  fs::remove_all(dir, ec);  // a stale or incomplete artifact of the same key
  fs::create_directories(dir.parent_path(), ec);
  fs::rename(tmp, dir, ec);
  if (ec && !fs::exists(dir / kConfigFile)) {  // another process may have won the race
    return absl::InternalError(absl::StrCat("cannot move ", tmp.string(), " to ", dir.string(),
                                            ": ", ec.message()));
  }
  fs::remove_all(tmp, ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ArtifactKey(const std::string& model_dir, const NeuronConfig& nc) {
  Fnv a{14695981039346656037ULL}, b{0x9e3779b97f4a7c15ULL};
  auto add = [&](std::string_view s) { a.Add(s), b.Add(s); };
  add(absl::StrCat("vllm-neuron-plugin artifact format ", kFormat));
  add(nc.ToJson());
  auto config = ReadFile(fs::path(model_dir) / "config.json");
  if (!config.ok()) return config.status();
  add(*config);
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(model_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json")) {
      files.push_back(e.path());
    }
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", model_dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    add(f.filename().string());
    add(absl::StrCat(fs::file_size(f, ec), "/",
                     fs::last_write_time(f, ec).time_since_epoch().count()));
  }
  return absl::StrFormat("%016x%016x", a.h, b.h);
}

std::string ArtifactDir(const std::string& model_dir, const std::string& key) {
  if (std::string env = CompiledArtifactsEnv(); !env.empty()) return env;
  if (::access(model_dir.c_str(), W_OK) == 0) {
    return (fs::path(model_dir) / "neuron-compiled-artifacts" / key).string();
  }
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  fs::path cache = xdg && *xdg ? fs::path(xdg) : fs::path(home ? home : "/tmp") / ".cache";
  return (cache / "vllm-neuron-plugin" / "artifacts" / key).string();
}

absl::StatusOr<PreparedWeights> LoadOrPrepare(const std::string& model_dir, const ModelConfig& mc,
                                              const NeuronConfig& nc) {
  PreparedWeights p;
  auto load = [&](const std::string& dir) -> absl::Status {
    auto ckpt = Checkpoint::Open(dir);
    if (!ckpt.ok()) return ckpt.status();
    auto w = DecoderWeights::Load(*ckpt, mc, nc.torch_dtype, nc.fused_qkv);
    if (!w.ok()) return w.status();
    p.weights = *std::move(w);
    return absl::OkStatus();
  };
  if (!nc.save_sharded_checkpoint) {
    if (auto s = load(model_dir); !s.ok()) return s;
    return p;
  }
  auto key = ArtifactKey(model_dir, nc);
  if (!key.ok()) return key.status();
  const std::string dir = ArtifactDir(model_dir, *key);
  p.dir = dir;
  const fs::path config_path = fs::path(dir) / kConfigFile;
  if (fs::exists(config_path)) {
    auto text = ReadFile(config_path);
    if (!text.ok()) return text.status();
    json have = json::parse(*text, nullptr, false);
    const bool matches = have.is_object() && have.contains("metadata") &&
                         have["metadata"].value("artifact_key", "") == *key;
    if (matches) {
      const bool own = have["metadata"].value("weights", "") == kWeightsFile;
      if (auto s = load(own ? dir : model_dir); !s.ok()) return s;
      p.reused = true;
      return p;
    }
    if (!CompiledArtifactsEnv().empty()) {
      json want = json::parse(nc.ToJson());
      std::vector<std::string> diff =
          have.is_object() && have.contains("neuron_config")
              ? Differences(have["neuron_config"], want)
              : std::vector<std::string>{"(no neuron_config in the file)"};
      if (diff.empty()) diff.push_back("(the model's files changed)");
      if (diff.size() > 8) diff.resize(8);
      return absl::InvalidArgumentError(absl::StrCat(
          "NEURON_COMPILED_ARTIFACTS=", dir, " holds an artifact prepared for another model or "
          "configuration (it has: ", absl::StrJoin(diff, ", "),
          "); point NEURON_COMPILED_ARTIFACTS at an empty or matching directory, or unset it"));
    }
  }
  if (auto s = load(model_dir); !s.ok()) return s;
  const bool own_weights = p.weights.converted;  // cast or fused; else the checkpoint serves
  auto config = ArtifactConfig(model_dir, nc, *key, own_weights);
  if (!config.ok()) return config.status();
  if (auto s = WritePrepared(dir, *config, p, mc, own_weights); !s.ok()) return s;
  if (own_weights) {  // run from what was written, read back as a second start will
    p.weights = DecoderWeights();  // first, so the converted and the read copy never coexist
    if (auto s = load(dir); !s.ok()) return s;
  }
  return p;
}

}  // namespace vnp
