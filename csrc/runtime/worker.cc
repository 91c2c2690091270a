#include "runtime/worker.h"

#include <chrono>
#include <filesystem>

#include <ATen/ATen.h>
#include <absl/strings/str_cat.h>

#include "weights/artifacts.h"

namespace vnp {
namespace {

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("step input: ", std::string(what)));
}

// Host copy of a small int tensor.
std::vector<int64_t> ToVector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(const std::string& model_dir,
                                                       const std::string& neuron_config_json,
                                                       uint64_t seed) {
  auto nc = NeuronConfig::FromJson(neuron_config_json);
  if (!nc.ok()) return nc.status();
  auto mc = ModelConfig::FromFile((std::filesystem::path(model_dir) / "config.json").string());
  if (!mc.ok()) return mc.status();
  if (auto s = nc->CheckModel(*mc); !s.ok()) return s;
  auto prepared = LoadOrPrepare(model_dir, *mc, *nc);
  if (!prepared.ok()) return prepared.status();
  const int64_t max_positions = nc->seq_len;
  Decoder decoder(*std::move(mc), std::move(prepared->weights), max_positions);
  auto w = std::unique_ptr<Worker>(new Worker(*std::move(nc), std::move(decoder), seed));
  w->artifact_dir_ = prepared->dir;
  w->artifact_reused_ = prepared->reused;
  return w;
}

absl::StatusOr<double> Worker::WarmUp() {
  if (!kv_) return absl::FailedPreconditionError("warm-up needs the KV cache allocated first");
  const auto start = std::chrono::steady_clock::now();
  const int64_t prompt = std::min<int64_t>(neuron_config_.buckets.context_encoding.front(), 128);
  const int64_t bs = kv_->block_size();
  for (int64_t len : {prompt, int64_t{1}}) {
    // Slot -1 writes nothing; block 0 stands in for the table (vLLM's null block), so the
    // warm-up leaves every real block untouched. The decode reads prompt - 1 prior positions.
    const int64_t context = len == 1 ? prompt - 1 : 0;
    ForwardInput f;
    f.token_ids = at::zeros({len}, at::kLong);
    f.positions = at::arange(context, context + len, at::kLong);
    f.slots = SlotIndex::FromSlotMapping(at::full({len}, -1, at::kLong), bs);
    f.attention.query_start = {0, len};
    f.attention.seq_lens = {context + len};
    f.attention.block_tables = at::zeros({1, (context + len + bs - 1) / bs}, at::kLong);
    f.logits_rows = at::full({1}, len - 1, at::kLong);
    try {
      decoder_.Forward(f, *kv_);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("warm-up failed: ", e.what_without_backtrace()));
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Worker::CountBuckets(const std::vector<int64_t>& qlens, const std::vector<int64_t>& ctx) {
  const BucketPlan& plan = neuron_config_.buckets;
  auto count = [&](const char* phase, std::optional<std::string> bucket) {
    ++bucket_counts_[bucket ? absl::StrCat(phase, "/", *bucket)
                            : absl::StrCat("unbucketed/", phase)];
  };
  auto one = [](std::optional<int64_t> b) {
    return b ? std::optional<std::string>(absl::StrCat(*b)) : std::nullopt;
  };
  auto two = [](std::optional<Bucket2D> b) {
    return b ? std::optional<std::string>(absl::StrCat("[", b->active, ",", b->prefix, "]"))
             : std::nullopt;
  };
  int64_t longest_decode = -1;
  for (size_t b = 0; b < qlens.size(); ++b) {
    if (qlens[b] == 0) continue;
    if (IsDecode(qlens[b], ctx[b])) {
      longest_decode = std::max(longest_decode, ctx[b]);
    } else if (neuron_config_.is_prefix_caching) {
      count("prefix_context_encoding",
            two(RoutePrefixPrefill(plan.prefix_context_encoding, qlens[b], ctx[b])));
    } else {
      count("context_encoding", one(FirstFit(plan.context_encoding, ctx[b] + qlens[b])));
    }
  }
  if (longest_decode < 0) return;
  if (neuron_config_.is_prefix_caching) {
    count("prefix_token_generation",
          two(RoutePrefixDecode(plan.prefix_token_generation, 1, longest_decode)));
  } else {
    count("token_generation", one(FirstFit(plan.token_generation, longest_decode)));
  }
}

int64_t Worker::PrefillBucketTokens(int64_t qlen, int64_t ctx) const {
  const BucketPlan& plan = neuron_config_.buckets;
  if (neuron_config_.is_prefix_caching) {
    auto b = RoutePrefixPrefill(plan.prefix_context_encoding, qlen, ctx);
    return b ? b->active : qlen;
  }
  return FirstFit(plan.context_encoding, ctx + qlen).value_or(qlen);
}

std::vector<CapacitySpan> Worker::MoeCapacity(const std::vector<int64_t>& qlens,
                                              const std::vector<int64_t>& ctx) const {
  std::vector<CapacitySpan> spans;
  const ModelConfig& m = model_config();
  if (!neuron_config_.capacity_factor || !m.is_moe()) return spans;
  int64_t start = 0;
  for (size_t b = 0; b < qlens.size(); ++b) {
    // NxDI drops tokens in context encoding only, with the capacity of the padded bucket.
    if (qlens[b] > 0 && !IsDecode(qlens[b], ctx[b])) {
      spans.push_back({start, qlens[b],
                       ExpertCapacity(m.moe, *neuron_config_.capacity_factor,
                                      PrefillBucketTokens(qlens[b], ctx[b]))});
    }
    start += qlens[b];
  }
  return spans;
}

int64_t Worker::KvBytesPerBlock(int64_t block_size) const {
  const ModelConfig& c = model_config();
  return KvCache::BytesPerBlock(c.num_layers, c.num_kv_heads, block_size, c.head_dim,
                                neuron_config_.torch_dtype);
}

absl::Status Worker::AllocateKv(int64_t num_blocks, int64_t block_size) {
  if (num_blocks < 1 || block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache needs num_blocks >= 1 and block_size >= 1, got ",
                                                   num_blocks, " and ", block_size));
  }
  const ModelConfig& c = model_config();
  kv_.emplace(c.num_layers, num_blocks, c.num_kv_heads, block_size, c.head_dim,
              neuron_config_.torch_dtype);
  return absl::OkStatus();
}

absl::Status Worker::Validate(const StepInput& in) const {
  if (!kv_) return absl::FailedPreconditionError("step called before the KV cache was allocated");
  const at::Tensor* all[] = {&in.token_ids, &in.positions, &in.query_lens, &in.context_lens,
                             &in.block_tables, &in.slot_mapping, &in.sample_rows, &in.sampling,
                             &in.seeds, &in.seed_offsets};
  for (const at::Tensor* t : all) {
    if (!t->defined()) return Bad("a tensor is missing");
    if (!t->device().is_cpu()) return Bad("tensors must be on the CPU");
  }
  const int64_t T = in.token_ids.numel(), B = in.query_lens.numel();
  if (in.token_ids.dim() != 1 || in.positions.sizes() != in.token_ids.sizes() ||
      in.slot_mapping.sizes() != in.token_ids.sizes()) {
    return Bad("token_ids, positions and slot_mapping must be 1-D of the same length");
  }
  if (in.context_lens.numel() != B || in.sample_rows.numel() != B || in.seeds.numel() != B ||
      in.seed_offsets.numel() != B || in.block_tables.dim() != 2 || in.block_tables.size(0) != B ||
      in.sampling.dim() != 2 || in.sampling.size(0) != B || in.sampling.size(1) != 3) {
    return Bad("per-row tensors must have one entry (row) per query_lens entry");
  }
  if (B == 0) return absl::OkStatus();
  if (in.query_lens.min().item<int64_t>() < 0 || in.context_lens.min().item<int64_t>() < 0) {
    return Bad("query_lens and context_lens must be >= 0");
  }
  if (in.query_lens.sum().item<int64_t>() != T) return Bad("sum(query_lens) != len(token_ids)");
  const int64_t vocab = model_config().vocab_size;
  if (T > 0 && (in.token_ids.min().item<int64_t>() < 0 || in.token_ids.max().item<int64_t>() >= vocab)) {
    return Bad(absl::StrCat("token ids must be in [0, ", vocab, ")"));
  }
  if (T > 0 && (in.positions.min().item<int64_t>() < 0 ||
                in.positions.max().item<int64_t>() >= neuron_config_.seq_len)) {
    return Bad(absl::StrCat("positions must be in [0, seq_len=", neuron_config_.seq_len, ")"));
  }
  const int64_t max_len = (in.context_lens + in.query_lens).max().item<int64_t>();
  if (max_len > neuron_config_.seq_len) {
    return Bad(absl::StrCat("a sequence of ", max_len, " tokens exceeds seq_len ",
                            neuron_config_.seq_len));
  }
  if (in.block_tables.size(1) * kv_->block_size() < max_len) {
    return Bad("block_tables has too few columns for the longest sequence");
  }
  if (in.block_tables.numel() > 0 && (in.block_tables.min().item<int64_t>() < 0 ||
                                      in.block_tables.max().item<int64_t>() >= kv_->num_blocks())) {
    return Bad(absl::StrCat("block ids must be in [0, ", kv_->num_blocks(), ")"));
  }
  if (T > 0 && (in.slot_mapping.min().item<int64_t>() < -1 ||
                in.slot_mapping.max().item<int64_t>() >= kv_->num_blocks() * kv_->block_size())) {
    return Bad("slot ids must be -1 or inside the KV cache");
  }
  at::Tensor temp = in.sampling.select(1, 0), top_p = in.sampling.select(1, 2);
  if (temp.lt(0).any().item<bool>() || !temp.isfinite().all().item<bool>()) {
    return Bad("temperature must be a finite number >= 0");
  }
  if (top_p.le(0).any().item<bool>() || top_p.gt(1).any().item<bool>()) {
    return Bad("top_p must be in (0, 1]");
  }
  return absl::OkStatus();
}

absl::StatusOr<StepOutput> Worker::Step(const StepInput& in) {
  if (auto s = Validate(in); !s.ok()) return s;
  const int64_t B = in.query_lens.numel();
  StepOutput out;
  out.tokens = at::full({B}, -1, at::kLong);
  if (B == 0 || in.token_ids.numel() == 0) return out;

  ForwardInput f;
  f.token_ids = in.token_ids.to(at::kLong);
  f.positions = in.positions.to(at::kLong);
  f.slots = SlotIndex::FromSlotMapping(in.slot_mapping, kv_->block_size());
  std::vector<int64_t> qlens = ToVector(in.query_lens), ctx = ToVector(in.context_lens);
  CountBuckets(qlens, ctx);
  f.moe_capacity = MoeCapacity(qlens, ctx);
  f.attention.query_start.assign(B + 1, 0);
  f.attention.seq_lens.resize(B);
  for (int64_t b = 0; b < B; ++b) {
    f.attention.query_start[b + 1] = f.attention.query_start[b] + qlens[b];
    f.attention.seq_lens[b] = ctx[b] + qlens[b];
  }
  f.attention.block_tables = in.block_tables.to(at::kLong);

  // Logits are needed for the last token of every row that emits one (or more, on request).
  at::Tensor sample_rows = in.sample_rows.to(at::kBool).logical_and(in.query_lens.gt(0));
  at::Tensor last_token = at::tensor(std::vector<int64_t>(f.attention.query_start.begin() + 1,
                                                          f.attention.query_start.end())) - 1;
  if (in.logits == LogitsMode::kAll) {
    f.logits_rows = at::arange(in.token_ids.numel(), at::kLong);
  } else if (in.logits == LogitsMode::kLast) {
    f.logits_rows = last_token.clamp_min(0);
  } else {
    f.logits_rows = last_token.index({sample_rows});
  }
  at::Tensor logits = decoder_.Forward(f, *kv_);

  at::Tensor rows = sample_rows.nonzero().squeeze(1);
  if (rows.numel() > 0) {
    at::Tensor row_logits;
    if (in.logits == LogitsMode::kNone) row_logits = logits;
    else if (in.logits == LogitsMode::kLast) row_logits = logits.index_select(0, rows);
    else row_logits = logits.index_select(0, last_token.index_select(0, rows));
    SamplingBatch sb{in.sampling.index_select(0, rows), in.seeds.index_select(0, rows),
                     in.seed_offsets.index_select(0, rows)};
    out.tokens.index_put_({rows}, sampler_.Sample(row_logits, sb));
  }
  if (in.logits != LogitsMode::kNone) out.logits = logits;
  return out;
}

}  // namespace vnp
