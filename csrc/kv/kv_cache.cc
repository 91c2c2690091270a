#include "kv/kv_cache.h"

#include <cstring>

#include <ATen/ATen.h>

#include "kernels/huge_pages.h"

namespace vnp {

SlotIndex SlotIndex::FromSlotMapping(const at::Tensor& slot_mapping, int64_t block_size) {
  SlotIndex idx;
  at::Tensor slots = slot_mapping.to(at::kLong);
  at::Tensor valid = slots.ge(0);
  idx.all_rows = valid.all().item<bool>();
  if (!idx.all_rows) {
    idx.rows = valid.nonzero().squeeze(1);
    slots = slots.index_select(0, idx.rows);
  }
  idx.blocks = slots.div(block_size, "floor");
  idx.offsets = slots.remainder(block_size);
  return idx;
}

KvCache::KvCache(int64_t num_layers, int64_t num_blocks, int64_t num_kv_heads, int64_t block_size,
                 int64_t head_dim, c10::ScalarType dtype)
    : num_blocks_(num_blocks), block_size_(block_size) {
  // One huge-page allocation for all layers: batched decode streams the whole context's K/V
  // every step (at batch 32 as many bytes as the weights).
  const std::vector<int64_t> shape{num_blocks, num_kv_heads, block_size, head_dim};
  std::vector<at::Tensor> all = HugePageZeros(
      std::vector<std::vector<int64_t>>(2 * num_layers, shape), dtype);
  for (int64_t i = 0; i < num_layers; ++i) {
    keys_.push_back(std::move(all[2 * i]));
    values_.push_back(std::move(all[2 * i + 1]));
  }
}

int64_t KvCache::BytesPerBlock(int64_t num_layers, int64_t num_kv_heads, int64_t block_size,
                               int64_t head_dim, c10::ScalarType dtype) {
  return 2 * num_layers * num_kv_heads * block_size * head_dim *
         static_cast<int64_t>(c10::elementSize(dtype));
}

namespace {

// dst[block, :, offset, :] = src[row] for each written row: a plain copy of kv_heads runs of
// head_dim values, where index_put_ costs several dispatches per call (two per layer per step).
void CopyRows(at::Tensor& dst, const SlotIndex& index, const at::Tensor& src) {
  const int64_t kv_heads = dst.size(1), bs = dst.size(2), d = dst.size(3);
  const int64_t n = index.blocks.numel(), bytes = d * dst.element_size();
  at::Tensor s = src.contiguous();
  at::Tensor rows = index.all_rows ? at::Tensor() : index.rows.to(at::kLong).contiguous();
  at::Tensor blocks = index.blocks.to(at::kLong).contiguous();
  at::Tensor offsets = index.offsets.to(at::kLong).contiguous();
  const auto* sp = static_cast<const char*>(s.const_data_ptr());
  auto* dp = static_cast<char*>(dst.data_ptr());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = index.all_rows ? i : rows.const_data_ptr<int64_t>()[i];
    const int64_t blk = blocks.const_data_ptr<int64_t>()[i], off = offsets.const_data_ptr<int64_t>()[i];
    for (int64_t h = 0; h < kv_heads; ++h) {
      std::memcpy(dp + (((blk * kv_heads + h) * bs + off) * d) * dst.element_size(),
                  sp + ((row * kv_heads + h) * d) * dst.element_size(), bytes);
    }
  }
}

}  // namespace

void KvCache::Write(int64_t layer, const SlotIndex& index, const at::Tensor& k,
                    const at::Tensor& v) {
  using at::indexing::Slice;
  at::Tensor& keys = keys_[layer];
  if (keys.device().is_cpu() && keys.is_contiguous() && k.scalar_type() == keys.scalar_type() &&
      v.scalar_type() == keys.scalar_type() && k.device().is_cpu()) {
    CopyRows(keys, index, k);
    CopyRows(values_[layer], index, v);
    return;
  }
  at::Tensor ks = index.all_rows ? k : k.index_select(0, index.rows);
  at::Tensor vs = index.all_rows ? v : v.index_select(0, index.rows);
  // Advanced indices split by a slice put the indexed dimension first: the target view is
  // [rows, kv_heads, head_dim], matching ks / vs.
  keys_[layer].index_put_({index.blocks, Slice(), index.offsets}, ks);
  values_[layer].index_put_({index.blocks, Slice(), index.offsets}, vs);
}

}  // namespace vnp
