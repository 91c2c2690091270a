#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/dynamic_parallel.h"
#include "kernels/gemv_avx512.h"

namespace vnp {
namespace {

// How many chunks a query token's keys split into: as many as threads, up to four, each at
// least kMinChunkKeys (batch-1 decode on 2 threads: two from 512 keys). A token's chunks depend
// only on its own key count, never on the rest of the batch, so its attention is the same bits
// alone and batched. The chunks' partial softmaxes merge after (flash-decoding). More,
// smaller chunks measured slower at batch 1: each adds its fixed costs and its share of the
// merge; below 256 keys the attention is a small part of a step.
constexpr int64_t kMinChunkKeys = 256;
int64_t KeyChunks(int64_t keys, int64_t threads) {
  return std::clamp<int64_t>(keys / kMinChunkKeys, 1, std::clamp<int64_t>(threads, 1, 4));
}

// Which inner loops a task runs: AVX-512 BF16 (scores by vdpbf16ps from q and the keys as
// stored, values widened in 16-lane FMAs), AVX2 (both widened to fp32), or plain C++.
enum class Path { kAvx512Bf16, kAvx2, kScalar };

}  // namespace

DecodeAttentionTasks::DecodeAttentionTasks(const at::Tensor& q, const at::Tensor& k_cache,
                                           const at::Tensor& v_cache, double scale, at::Tensor out)
    : q_(q), k_cache_(k_cache), v_cache_(v_cache), out_(std::move(out)),
      scale_(static_cast<float>(scale)) {
  TORCH_CHECK(out_.is_contiguous() && out_.scalar_type() == q.scalar_type(),
              "DecodeAttention: out must be contiguous in q's dtype");
}

void DecodeAttentionTasks::Plan(const AttentionBatch& batch, const std::vector<int64_t>& rows,
                                int64_t window) {
  const at::Tensor& t = batch.block_tables;
  tables_ = t.scalar_type() == at::kLong && t.is_contiguous() ? t : t.to(at::kLong).contiguous();
  items_.clear();
  task_items_.clear();
  const int64_t threads = at::get_num_threads();
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    for (int64_t t = qs; t < qe; ++t) {
      const int64_t len = batch.seq_lens[row] - (qe - 1 - t);
      const int64_t first = FirstVisibleKey(len - 1, window);
      const int64_t chunks = KeyChunks(len - first, threads);
      items_.push_back({row, t, first, len, chunks, static_cast<int64_t>(task_items_.size())});
      task_items_.insert(task_items_.end(), chunks, static_cast<int64_t>(items_.size()) - 1);
    }
  }
  tasks_ = static_cast<int64_t>(task_items_.size());
  const bool split = tasks_ > static_cast<int64_t>(items_.size());  // some token in chunks
  merges_ = split ? static_cast<int64_t>(items_.size()) : 0;
  // A token in chunks leaves per task and q head its score max, its sum of exponentials and its
  // unnormalised value sum; a token in one chunk writes the output directly.
  if (split) {
    const int64_t H = q_.size(1), D = q_.size(2);
    part_max_.resize(tasks_ * H), part_sum_.resize(tasks_ * H), part_acc_.resize(tasks_ * H * D);
  }
  scratch_.resize(threads);  // kept from plan to plan, with their capacity
}

DecodeAttentionTasks::~DecodeAttentionTasks() = default;

void DecodeAttentionTasks::Run(int64_t task, int64_t thread) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q_.scalar_type(), "decode_attention",
                                  [&] { RunTask<scalar_t>(task, thread); });
}

void DecodeAttentionTasks::Merge(int64_t token) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q_.scalar_type(), "decode_merge", [&] {
    MergeToken<scalar_t>(token);
  });
}

template <class T>
void DecodeAttentionTasks::RunTask(int64_t task, int64_t thread) {
  const int64_t H = q_.size(1), D = q_.size(2);
  const int64_t KVH = k_cache_.size(1), BS = k_cache_.size(2), group = H / KVH;
  const T* qp = q_.const_data_ptr<T>();
  const T* kp = k_cache_.const_data_ptr<T>();
  const T* vp = v_cache_.const_data_ptr<T>();
  T* op = out_.data_ptr<T>();
  const int64_t* tp = tables_.const_data_ptr<int64_t>();
  const int64_t table_stride = tables_.size(1);
  const float scale = scale_;
  const std::optional<avx2::Format> format = Avx2Format(k_cache_);
  const Path path = std::is_same_v<T, c10::BFloat16> && CpuHasAvx512Bf16() ? Path::kAvx512Bf16
                    : format ? Path::kAvx2 : Path::kScalar;
  auto& [qv, acc, scores, total, maxs] = scratch_[thread];
  acc.assign(H * D, 0.f), total.resize(H), maxs.resize(H);
  const Item& item = items_[task_items_[task]];
  const int64_t chunks = item.chunks, chunk = task - item.task0;
  const int64_t all = item.len - item.first, lo = all * chunk / chunks;
  const int64_t first = item.first + lo, n = all * (chunk + 1) / chunks - lo;
  const int64_t* table = tp + item.row * table_stride;
  const T* qt = qp + item.token * H * D;  // [H, D]: KV head g's q heads are rows g·group...
  if (path != Path::kAvx512Bf16) {
    qv.resize(H * D);
    for (int64_t i = 0; i < H * D; ++i) qv[i] = static_cast<float>(qt[i]);
  }
  // Calls f(offset of position p's block for KV head 0, p % BS, p - first, count) for each
  // run of positions in one KV block ([num_blocks, KVH, BS, D]: a block holds each head's
  // positions contiguously, the heads one after another).
  auto for_each_run = [&](auto&& f) {
    for (int64_t p = first; p < first + n;) {
      const int64_t count = std::min(BS - p % BS, first + n - p);
      f(table[p / BS] * KVH * BS * D, p % BS, p - first, count);
      p += count;
    }
  };
  scores.resize(H * n);  // [H, n]
  for_each_run([&](int64_t block, int64_t in_block, int64_t i, int64_t count) {
    for (int64_t g = 0; g < KVH; ++g) {
      const T* keys = kp + block + (g * BS + in_block) * D;
      float* s = scores.data() + g * group * n + i;
      if (path == Path::kAvx512Bf16) {
        avx512::GemvBf16(reinterpret_cast<const uint16_t*>(qt + g * group * D), group, D,
                         reinterpret_cast<const uint16_t*>(keys), 0, count, s, n);
      } else if (path == Path::kAvx2) {
        avx2::Scores(*format, qv.data() + g * group * D, group, D, keys, count, s, n);
      } else {
        for (int64_t j = 0; j < group; ++j) {
          for (int64_t c = 0; c < count; ++c) {
            float dot = 0.f;
            for (int64_t d = 0; d < D; ++d) {
              dot += qv[(g * group + j) * D + d] * static_cast<float>(keys[c * D + d]);
            }
            s[j * n + c] = dot;
          }
        }
      }
    }
  });
  for (int64_t h = 0; h < H; ++h) {
    float* sh = scores.data() + h * n;
    float m = -INFINITY;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, sh[i] *= scale);
    maxs[h] = m;
    if (format) {
      total[h] = avx2::ExpSum(sh, n, m);
      continue;
    }
    total[h] = 0.f;
    for (int64_t i = 0; i < n; ++i) total[h] += (sh[i] = std::exp(sh[i] - m));
  }
  for_each_run([&](int64_t block, int64_t in_block, int64_t i, int64_t count) {
    for (int64_t g = 0; g < KVH; ++g) {
      const T* values = vp + block + (g * BS + in_block) * D;
      const float* a = scores.data() + g * group * n + i;
      float* ag = acc.data() + g * group * D;
      if (path == Path::kAvx512Bf16) {
        avx512::AccumulateRowsBf16(a, n, group, reinterpret_cast<const uint16_t*>(values),
                                   count, D, ag);
      } else if (path == Path::kAvx2) {
        avx2::AccumulateRows(*format, a, n, group, values, count, D, ag);
      } else {
        for (int64_t j = 0; j < group; ++j) {
          for (int64_t c = 0; c < count; ++c) {
            for (int64_t d = 0; d < D; ++d) {
              ag[j * D + d] += a[j * n + c] * static_cast<float>(values[c * D + d]);
            }
          }
        }
      }
    }
  });
  if (chunks > 1) {
    std::copy(maxs.begin(), maxs.end(), part_max_.begin() + task * H);
    std::copy(total.begin(), total.end(), part_sum_.begin() + task * H);
    std::copy(acc.begin(), acc.end(), part_acc_.begin() + task * H * D);
    return;
  }
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t d = 0; d < D; ++d) acc[h * D + d] /= total[h];
  }
  T* o = op + item.token * H * D;
  if (format) {  // rounded as static_cast rounds, eight at a time
    avx2::StoreRows(*format, acc.data(), H * D, nullptr, 1, 0, H * D, o, H * D);
    return;
  }
  for (int64_t i = 0; i < H * D; ++i) o[i] = static_cast<T>(acc[i]);
}

// Each q head of the token: its chunks rescaled to the overall max, then normalised.
template <class T>
void DecodeAttentionTasks::MergeToken(int64_t t) {
  const Item& item = items_[t];
  if (item.chunks == 1) return;  // written by its task
  const int64_t H = q_.size(1), D = q_.size(2), chunks = item.chunks;
  T* op = out_.data_ptr<T>();
  std::vector<float> o(D);
  for (int64_t h = 0; h < H; ++h) {
    float m = -INFINITY;
    for (int64_t c = 0; c < chunks; ++c) m = std::max(m, part_max_[(item.task0 + c) * H + h]);
    float denominator = 0.f;
    std::fill(o.begin(), o.end(), 0.f);
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t k = (item.task0 + c) * H + h;
      if (part_max_[k] == -INFINITY) continue;  // an empty chunk
      const float w = std::exp(part_max_[k] - m);
      denominator += w * part_sum_[k];
      const float* a = part_acc_.data() + k * D;
      for (int64_t d = 0; d < D; ++d) o[d] += w * a[d];
    }
    T* dst = op + (item.token * H + h) * D;
    for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<T>(o[d] / denominator);
  }
}

bool DecodeAttentionSupports(const at::Tensor& q, const at::Tensor& k_cache,
                             const at::Tensor& v_cache) {
  const auto t = q.scalar_type();
  return q.device().is_cpu() && k_cache.device().is_cpu() && k_cache.scalar_type() == t &&
         v_cache.scalar_type() == t && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf) &&
         q.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous() &&
         q.size(1) % k_cache.size(1) == 0;
}

void DecodeAttention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                     const AttentionBatch& batch, const std::vector<int64_t>& rows, double scale,
                     int64_t window, at::Tensor& out) {
  DecodeAttentionTasks attention(q, k_cache, v_cache, scale, out);
  attention.Plan(batch, rows, window);
  ParallelDynamic(attention.size(),
                  [&](int64_t task, int64_t thread) { attention.Run(task, thread); });
  ParallelDynamic(attention.merges(), [&](int64_t t, int64_t) { attention.Merge(t); });
}

}  // namespace vnp
