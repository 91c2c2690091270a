#include "kv/block_allocator.h"

#include <absl/strings/str_cat.h>

namespace vnp {

BlockAllocator::BlockAllocator(int64_t num_blocks) {
  // Highest ids last so that Allocate hands out 1, 2, 3, ... first: easier to read in tests.
  for (int64_t b = num_blocks - 1; b >= 1; --b) free_.push_back(b);
}

absl::StatusOr<std::vector<int64_t>> BlockAllocator::Allocate(int64_t count) {
  if (count > num_free()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache full: need ", count, " blocks, ", num_free(), " free"));
  }
  std::vector<int64_t> out(free_.rbegin(), free_.rbegin() + count);
  free_.resize(free_.size() - count);
  return out;
}

void BlockAllocator::Free(const std::vector<int64_t>& blocks) {
  free_.insert(free_.end(), blocks.rbegin(), blocks.rend());
}

}  // namespace vnp
