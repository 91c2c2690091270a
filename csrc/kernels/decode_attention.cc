#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "kernels/cpu_features.h"

namespace vnp {
namespace {

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
  // One item per query token: (row, flat token, keys it sees = its position + 1).
  struct Item { int64_t row, token, len; };
  std::vector<Item> items;
  for (int64_t row : rows) {
    const int64_t qs = batch.query_start[row], qe = batch.query_start[row + 1];
    for (int64_t t = qs; t < qe; ++t) items.push_back({row, t, batch.seq_lens[row] - (qe - 1 - t)});
  }
  const int64_t tasks = static_cast<int64_t>(items.size()) * H;
  const std::optional<avx2::Format> format = Avx2Format(k_cache);
  at::parallel_for(0, tasks, 1, [&](int64_t begin_task, int64_t end_task) {
    std::vector<float> qv(D), acc(D), scores;
    for (int64_t task = begin_task; task < end_task; ++task) {
      const Item& item = items[task / H];
      const int64_t row = item.row, token = item.token, len = item.len, h = task % H, g = h / group;
      const int64_t first = FirstVisibleKey(len - 1, window);
      const int64_t* table = tp + row * table_stride;
      for (int64_t d = 0; d < D; ++d) qv[d] = static_cast<float>(qp[(token * H + h) * D + d]) * scale;
      // Offset of position p's vector for kv head g: [num_blocks, KVH, BS, D].
      auto at_pos = [&](int64_t p) { return ((table[p / BS] * KVH + g) * BS + p % BS) * D; };
      scores.resize(len - first);
      float max_score = -INFINITY;
      for (int64_t p = first; p < len; ++p) {
        const T* k = kp + at_pos(p);
        float s = 0.f;
        if (format) {
          s = avx2::Dot(*format, qv.data(), k, D);
        } else {
          for (int64_t d = 0; d < D; ++d) s += qv[d] * static_cast<float>(k[d]);
        }
        scores[p - first] = s;
        max_score = std::max(max_score, s);
      }
      float total = 0.f;
      for (float& s : scores) total += (s = std::exp(s - max_score));
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t p = first; p < len; ++p) {
        const T* v = vp + at_pos(p);
        const float w = scores[p - first];
        if (format) {
          avx2::Axpy(*format, w, v, acc.data(), D);
        } else {
          for (int64_t d = 0; d < D; ++d) acc[d] += w * static_cast<float>(v[d]);
        }
      }
      T* o = op + (token * H + h) * D;
      for (int64_t d = 0; d < D; ++d) o[d] = static_cast<T>(acc[d] / total);
    }
  });
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
