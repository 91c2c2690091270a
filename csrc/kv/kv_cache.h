// KV storage owned by the worker: per layer [num_blocks, kv_heads, block_size, head_dim].
// NxDI's contiguous layout is the same tensor with block_size = max_model_len and one block per
// sequence line, so there is a single code path for both layouts.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace vnp {

// Where each token of a step lands in the cache, computed once per step and shared by layers.
struct SlotIndex {
  at::Tensor rows;     // token rows to write (all rows when every slot is valid)
  at::Tensor blocks;   // block id per written row
  at::Tensor offsets;  // offset inside the block per written row
  bool all_rows = true;

  // slot = block * block_size + offset; slot -1 means "do not write" (padding).
  static SlotIndex FromSlotMapping(const at::Tensor& slot_mapping, int64_t block_size);
};

class KvCache {
 public:
  KvCache(int64_t num_layers, int64_t num_blocks, int64_t num_kv_heads, int64_t block_size,
          int64_t head_dim, c10::ScalarType dtype);

  static int64_t BytesPerBlock(int64_t num_layers, int64_t num_kv_heads, int64_t block_size,
                               int64_t head_dim, c10::ScalarType dtype);

  const at::Tensor& keys(int64_t layer) const { return keys_[layer]; }
  const at::Tensor& values(int64_t layer) const { return values_[layer]; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }

  // k, v: [T, kv_heads, head_dim] for the step's tokens.
  void Write(int64_t layer, const SlotIndex& index, const at::Tensor& k, const at::Tensor& v);

 private:
  int64_t num_blocks_;
  int64_t block_size_;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

}  // namespace vnp
