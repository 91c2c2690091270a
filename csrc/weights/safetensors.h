// Safetensors checkpoints, each file read once into huge-page memory: tensors are views of that
// memory (no further copy) that keep it alive. Handles one file or a sharded
// `model.safetensors.index.json`.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

namespace vnp {

class LoadedFile;

class Checkpoint {
 public:
  // `dir` holds model.safetensors, or model.safetensors.index.json and its shards.
  static absl::StatusOr<Checkpoint> Open(const std::string& dir);
  // One safetensors file.
  static absl::StatusOr<Checkpoint> OpenFile(const std::string& path);

  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  // A view into the loaded file, meant read-only. Copy (or cast) before writing to it.
  absl::StatusOr<at::Tensor> Get(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  struct Entry {
    std::shared_ptr<LoadedFile> file;
    c10::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t begin = 0;
    size_t end = 0;
  };
  absl::Status AddFile(const std::string& path);
  std::map<std::string, Entry> entries_;
};

// Writes `tensors` as one safetensors file (header, then the data in the order given).
// `metadata` goes into the header's __metadata__ (string values, as the format requires).
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace vnp
