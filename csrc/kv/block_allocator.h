// Block ids for running the worker without vLLM (C++ tests, benchmarks). Block 0 is reserved
// as the null block, as in vLLM, so block tables can be padded with it.
#pragma once

#include <cstdint>
#include <vector>

#include <absl/status/statusor.h>

namespace vnp {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t num_blocks);

  absl::StatusOr<std::vector<int64_t>> Allocate(int64_t count);
  void Free(const std::vector<int64_t>& blocks);
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }

 private:
  std::vector<int64_t> free_;
};

}  // namespace vnp
