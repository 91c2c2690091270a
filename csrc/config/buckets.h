// NxDI bucketing (modules/autobucketing.py and ModelWrapper routing): the bucket lists of each
// sub-model and first-fit routing. On a static-shape device each bucket is a compiled graph;
// here a bucket is a routing decision, a limit, a warm-up shape and a per-step count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vnp {

struct NeuronConfig;

// generate_buckets(min_len, max_len): powers of two from floor(log2(min)) up to, but not
// including, round(log2(max)), then max. (128, 1100) → [128, 256, 512, 1100].
std::vector<int64_t> GenerateBuckets(int64_t min_len, int64_t max_len);

// A prefix-caching bucket: `active` new tokens on top of `prefix` cached ones.
struct Bucket2D {
  int64_t active = 0;
  int64_t prefix = 0;
  bool operator==(const Bucket2D&) const = default;
};

struct BucketPlan {
  std::vector<int64_t> context_encoding;   // prompt lengths (CTE)
  std::vector<int64_t> token_generation;   // KV window read by one decode step (TKG)
  std::vector<Bucket2D> prefix_context_encoding;   // with is_prefix_caching
  std::vector<Bucket2D> prefix_token_generation;   // with is_prefix_caching

  static BucketPlan For(const NeuronConfig& c);
  // "context_encoding [128, 256] token_generation [256]" for the start-up log.
  std::string Describe() const;
};

// NxDI first fit: the first bucket with required < bucket (strict), else the largest when
// required equals it; nullopt when the input does not fit.
std::optional<int64_t> FirstFit(const std::vector<int64_t>& buckets, int64_t required);

// Prefix-caching decode: the smallest prefix bucket above `prefix` whose active size holds
// `active` tokens.
std::optional<Bucket2D> RoutePrefixDecode(const std::vector<Bucket2D>& buckets, int64_t active,
                                          int64_t prefix);

// Prefix-caching prefill (get_target_2d_bucket_for_prefix_caching): `active` new tokens after
// `prefix` cached ones. Spare slots of the active bucket recompute the prefix tail, so the
// prefix looked up is `prefix - (active_bucket - active)`. 256 < prefix + active <= 512 goes
// to [512, 0] (recompute everything), as NxDI does.
std::optional<Bucket2D> RoutePrefixPrefill(const std::vector<Bucket2D>& buckets, int64_t active,
                                           int64_t prefix);

}  // namespace vnp
