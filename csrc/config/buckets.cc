#include "config/buckets.h"

#include <algorithm>
#include <cmath>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include "config/neuron_config.h"

namespace vnp {
namespace {

std::vector<Bucket2D> Cross(const std::vector<int64_t>& active, const std::vector<int64_t>& prefix) {
  std::vector<Bucket2D> out;
  for (int64_t a : active) {
    for (int64_t p : prefix) out.push_back({a, p});
  }
  return out;
}

std::string Join2D(const std::vector<Bucket2D>& v) {
  return absl::StrJoin(v, ", ", [](std::string* out, const Bucket2D& b) {
    absl::StrAppend(out, "[", b.active, ", ", b.prefix, "]");
  });
}

}  // namespace

std::vector<int64_t> GenerateBuckets(int64_t min_len, int64_t max_len) {
  if (min_len >= max_len) return {max_len};
  // Python's round() rounds half to even, as nearbyint does in the default rounding mode.
  const int lo = static_cast<int>(std::floor(std::log2(static_cast<double>(min_len))));
  const int hi = static_cast<int>(std::nearbyint(std::log2(static_cast<double>(max_len))));
  std::vector<int64_t> out;
  for (int i = lo; i < hi; ++i) out.push_back(int64_t{1} << i);
  out.push_back(max_len);
  return out;
}

BucketPlan BucketPlan::For(const NeuronConfig& c) {
  BucketPlan p;
  if (!c.enable_bucketing) {
    p.context_encoding = {c.max_context_length};
    p.token_generation = {c.max_length};
    if (c.is_prefix_caching) {
      p.prefix_context_encoding = {{c.max_context_length, 0},
                                   {c.max_context_length, c.max_context_length}};
      p.prefix_token_generation = {{1, c.max_length}};
    }
    return p;
  }
  p.context_encoding = c.context_encoding_buckets.empty()
                           ? GenerateBuckets(128, c.max_context_length)
                           : c.context_encoding_buckets;
  p.token_generation = c.token_generation_buckets.empty() ? GenerateBuckets(128, c.max_length)
                                                          : c.token_generation_buckets;
  if (c.is_prefix_caching) {
    // The 512 and 256 minimums come from Neuron kernels; kept so routing matches NxDI.
    std::vector<int64_t> active = c.context_encoding_buckets.empty()
                                      ? GenerateBuckets(512, c.max_context_length)
                                      : c.context_encoding_buckets;
    std::vector<int64_t> prefix = {0};
    std::vector<int64_t> more = c.prefix_buckets.empty()
                                    ? GenerateBuckets(512, c.max_context_length)
                                    : c.prefix_buckets;
    prefix.insert(prefix.end(), more.begin(), more.end());
    p.prefix_context_encoding = Cross(active, prefix);
    std::vector<int64_t> tkg = c.token_generation_buckets.empty()
                                   ? GenerateBuckets(256, c.max_length)
                                   : c.token_generation_buckets;
    p.prefix_token_generation = Cross({1}, tkg);
  }
  return p;
}

std::string BucketPlan::Describe() const {
  std::string s = absl::StrCat("context_encoding [", absl::StrJoin(context_encoding, ", "),
                               "] token_generation [", absl::StrJoin(token_generation, ", "), "]");
  if (!prefix_context_encoding.empty()) {
    absl::StrAppend(&s, " prefix_context_encoding [", Join2D(prefix_context_encoding),
                    "] prefix_token_generation [", Join2D(prefix_token_generation), "]");
  }
  return s;
}

std::optional<int64_t> FirstFit(const std::vector<int64_t>& buckets, int64_t required) {
  for (int64_t b : buckets) {
    if (required < b) return b;
  }
  if (!buckets.empty() && required == buckets.back()) return buckets.back();
  return std::nullopt;
}

std::optional<Bucket2D> RoutePrefixDecode(const std::vector<Bucket2D>& buckets, int64_t active,
                                          int64_t prefix) {
  std::optional<Bucket2D> best;
  for (const Bucket2D& b : buckets) {
    if (b.prefix > prefix && b.active >= active && (!best || b.prefix < best->prefix)) best = b;
  }
  return best;
}

std::optional<Bucket2D> RoutePrefixPrefill(const std::vector<Bucket2D>& buckets, int64_t active,
                                           int64_t prefix) {
  const Bucket2D recompute_all{512, 0};
  if (prefix + active > 256 && prefix + active <= 512 &&
      std::find(buckets.begin(), buckets.end(), recompute_all) != buckets.end()) {
    return recompute_all;
  }
  std::optional<int64_t> active_bucket;
  for (const Bucket2D& b : buckets) {
    if (b.active >= active && (!active_bucket || b.active < *active_bucket)) active_bucket = b.active;
  }
  if (!active_bucket) return std::nullopt;
  const int64_t adjusted = std::max<int64_t>(0, prefix - (*active_bucket - active));
  std::optional<Bucket2D> best;
  for (const Bucket2D& b : buckets) {
    if (b.active == *active_bucket && b.prefix >= adjusted && (!best || b.prefix < best->prefix)) {
      best = b;
    }
  }
  return best;
}

}  // namespace vnp
