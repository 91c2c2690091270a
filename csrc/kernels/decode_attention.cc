#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"
#include "kernels/dynamic_parallel.h"

namespace vnp {
namespace {

void PrefetchBytes(const void* p, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(static_cast<const char*>(p) + b);
}

// How many chunks each query token's keys split into: one when the (token, KV head) pairs
// already give every thread a few tasks; otherwise (batch-1 decode: 3 KV heads for 2 threads)
// about four tasks a thread, each chunk at least one KV block long. The chunks' partial
// softmaxes merge after (flash-decoding).
int64_t KeyChunks(int64_t pairs, int64_t longest, int64_t block_size, int64_t threads) {
  if (threads <= 1 || pairs >= 4 * threads) return 1;
  const int64_t chunks = (4 * threads + pairs - 1) / pairs;
  return std::max<int64_t>(1, std::min(chunks, longest / block_size));
}

template <class T>
void Run(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
         const AttentionBatch& batch, const std::vector<int64_t>& rows, float scale,
         int64_t window, at::Tensor& out) {
  const int64_t H = q.size(1), D = q.size(2);
  const int64_t KVH = k_cache.size(1), BS = k_cache.size(2), group = H / KVH;
  const T* qp = q.const_data_ptr<T>();
  const T* kp = k_cache.const_data_ptr<T>();
  const T* vp = v_cache.const_data_ptr<T>();
  T* op = out.data_ptr<T>();
  at::Tensor tables = batch.block_tables.to(at::kLong).contiguous();
  const int64_t* tp = tables.const_data_ptr<int64_t>();
  const int64_t table_stride = tables.size(1);
  // One item per query token: (row, flat token, first visible key, keys it sees up to).
  struct Item { int64_t row, token, first, len; };
  std::vector<Item> items;
  int64_t longest = 0;
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    for (int64_t t = qs; t < qe; ++t) {
      const int64_t len = batch.seq_lens[row] - (qe - 1 - t);
      items.push_back({row, t, FirstVisibleKey(len - 1, window), len});
      longest = std::max(longest, len - items.back().first);
    }
  }
  // A task is one query token, one KV head with the q heads that share it (GQA: each key and
  // value vector is read once for all of them) and one chunk of the token's keys.
  const std::optional<avx2::Format> format = Avx2Format(k_cache);
  const int64_t pairs = static_cast<int64_t>(items.size()) * KVH;
  const int64_t chunks = KeyChunks(pairs, longest, BS, at::get_num_threads());
  const int64_t tasks = pairs * chunks;
  // With chunks, each task leaves per q head its score max, its sum of exponentials and its
  // unnormalised value sum; one chunk writes the output directly.
  std::vector<float> part_max, part_sum, part_acc;
  if (chunks > 1) {
    part_max.resize(tasks * group), part_sum.resize(tasks * group), part_acc.resize(tasks * group * D);
  }
  struct Scratch { std::vector<float> qv, acc, scores, total, maxs; };
  std::vector<Scratch> scratch(at::get_num_threads());
  ParallelDynamic(tasks, [&](int64_t task, int64_t thread) {
    auto& [qv, acc, scores, total, maxs] = scratch[thread];
    qv.resize(group * D), acc.resize(group * D), total.resize(group), maxs.resize(group);
    const Item& item = items[task / (KVH * chunks)];
    const int64_t g = task / chunks % KVH, chunk = task % chunks, h0 = g * group;
    const int64_t all = item.len - item.first, lo = all * chunk / chunks;
    const int64_t first = item.first + lo, n = all * (chunk + 1) / chunks - lo;
    const int64_t* table = tp + item.row * table_stride;
    for (int64_t i = 0; i < group * D; ++i) {
      qv[i] = static_cast<float>(qp[(item.token * H + h0) * D + i]) * scale;
    }
    // Calls f(offset of position p's vector for kv head g, p - first, count, the next run's
    // offset or -1) for each run of positions in one KV block ([num_blocks, KVH, BS, D]: a
    // block's positions are contiguous).
    auto offset = [&](int64_t p) { return ((table[p / BS] * KVH + g) * BS + p % BS) * D; };
    auto for_each_run = [&](auto&& f) {
      for (int64_t p = first; p < first + n;) {
        const int64_t count = std::min(BS - p % BS, first + n - p);
        f(offset(p), p - first, count, p + count < first + n ? offset(p + count) : -1);
        p += count;
      }
    };
    scores.resize(group * n);  // [group, n]
    for_each_run([&](int64_t at, int64_t i, int64_t count, int64_t next) {
      // A run is at most one block of one head (2 KB at D 64, bf16), scattered: too short for
      // the hardware prefetcher, so ask for the next run's keys and this run's values, which
      // the value pass reads after the softmax.
      if (next >= 0) PrefetchBytes(kp + next, BS * D * sizeof(T));  // a whole block: in bounds
      PrefetchBytes(vp + at, count * D * sizeof(T));
      if (format) {
        avx2::Gemv(*format, qv.data(), group, D, kp + at, 0, count, scores.data() + i, n);
        return;
      }
      for (int64_t j = 0; j < group; ++j) {
        for (int64_t c = 0; c < count; ++c) {
          float s = 0.f;
          for (int64_t d = 0; d < D; ++d) s += qv[j * D + d] * static_cast<float>(kp[at + c * D + d]);
          scores[j * n + i + c] = s;
        }
      }
    });
    for (int64_t j = 0; j < group; ++j) {
      float* sj = scores.data() + j * n;
      maxs[j] = n > 0 ? *std::max_element(sj, sj + n) : -INFINITY;
      if (format) {
        total[j] = avx2::ExpSum(sj, n, maxs[j]);
        continue;
      }
      total[j] = 0.f;
      for (int64_t i = 0; i < n; ++i) total[j] += (sj[i] = std::exp(sj[i] - maxs[j]));
    }
    std::fill(acc.begin(), acc.end(), 0.f);
    for_each_run([&](int64_t at, int64_t i, int64_t count, int64_t) {
      if (format) {
        avx2::AccumulateRows(*format, scores.data() + i, n, group, vp + at, count, D, acc.data());
        return;
      }
      for (int64_t j = 0; j < group; ++j) {
        for (int64_t c = 0; c < count; ++c) {
          const float w = scores[j * n + i + c];
          for (int64_t d = 0; d < D; ++d) acc[j * D + d] += w * static_cast<float>(vp[at + c * D + d]);
        }
      }
    });
    if (chunks == 1) {
      T* o = op + (item.token * H + h0) * D;
      for (int64_t i = 0; i < group * D; ++i) o[i] = static_cast<T>(acc[i] / total[i / D]);
      return;
    }
    std::copy(maxs.begin(), maxs.end(), part_max.begin() + task * group);
    std::copy(total.begin(), total.end(), part_sum.begin() + task * group);
    std::copy(acc.begin(), acc.end(), part_acc.begin() + task * group * D);
  });
  if (chunks == 1) return;
  // Merge each (token, q head)'s chunks: rescale each to the overall max, then normalise.
  std::vector<float> o(D);
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const Item& item = items[pair / KVH];
    for (int64_t j = 0; j < group; ++j) {
      const int64_t first_task = pair * chunks;
      float m = -INFINITY;
      for (int64_t c = 0; c < chunks; ++c) m = std::max(m, part_max[(first_task + c) * group + j]);
      float denominator = 0.f;
      std::fill(o.begin(), o.end(), 0.f);
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t t = first_task + c;
        if (part_max[t * group + j] == -INFINITY) continue;  // an empty chunk
        const float w = std::exp(part_max[t * group + j] - m);
        denominator += w * part_sum[t * group + j];
        const float* a = part_acc.data() + (t * group + j) * D;
        for (int64_t d = 0; d < D; ++d) o[d] += w * a[d];
      }
      T* dst = op + (item.token * H + pair % KVH * group + j) * D;
      for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<T>(o[d] / denominator);
    }
  }
}

}  // namespace

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
  TORCH_CHECK(out.is_contiguous() && out.scalar_type() == q.scalar_type(),
              "DecodeAttention: out must be contiguous in q's dtype");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "decode_attention", [&] {
    Run<scalar_t>(q, k_cache, v_cache, batch, rows, static_cast<float>(scale), window, out);
  });
}

}  // namespace vnp
