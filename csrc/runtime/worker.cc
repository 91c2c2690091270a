#include "runtime/worker.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <ATen/ATen.h>
#include <absl/strings/str_cat.h>

#include "runtime/heap.h"
#include "weights/artifacts.h"

namespace vnp {
namespace {

absl::Status Annotate(const absl::Status& s, std::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(std::string(prefix), std::string(s.message())));
}

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("step input: ", std::string(what)));
}

// Host copy of a small int tensor.
std::vector<int64_t> ToVector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

int64_t Min(const std::vector<int64_t>& v) { return *std::min_element(v.begin(), v.end()); }
int64_t Max(const std::vector<int64_t>& v) { return *std::max_element(v.begin(), v.end()); }

}  // namespace

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(const std::string& model_dir,
                                                       const std::string& neuron_config_json,
                                                       uint64_t seed, const std::string& draft_dir) {
  auto nc = NeuronConfig::FromJson(neuron_config_json);
  if (!nc.ok()) return nc.status();
  if (auto s = KeepStepAllocationsOnHeap(); !s.ok()) return s;
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
  if (draft_dir.empty()) return w;
  auto dmc = ModelConfig::FromFile((std::filesystem::path(draft_dir) / "config.json").string());
  if (!dmc.ok()) return Annotate(dmc.status(), "draft model: ");
  if (auto s = w->neuron_config_.CheckModel(*dmc); !s.ok()) return Annotate(s, "draft model: ");
  if (dmc->vocab_size != w->model_config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the draft model's vocabulary (", dmc->vocab_size, " tokens, ", draft_dir,
        ") differs from the target's (", w->model_config().vocab_size,
        "); a draft must share the target's tokenizer"));
  }
  auto draft = LoadOrPrepare(draft_dir, *dmc, w->neuron_config_);
  if (!draft.ok()) return Annotate(draft.status(), "draft model: ");
  w->draft_.emplace(*std::move(dmc), std::move(draft->weights), max_positions);
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
    f.attention = AttentionBatch::FromLengths({len}, {context},
                                              at::zeros({1, (context + len + bs - 1) / bs}, at::kLong));
    f.logits_rows = at::full({1}, len - 1, at::kLong);
    try {
      decoder_.Forward(f, *kv_);
      if (draft_) draft_->Forward(f, *draft_kv_);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("warm-up failed: ", e.what_without_backtrace()));
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Worker::CountBuckets(const Rows& r) {
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
  int64_t longest_decode = -1, longest_spec = -1;
  for (size_t b = 0; b < r.query_lens.size(); ++b) {
    if (r.IsSpeculation(b)) {
      longest_spec = std::max(longest_spec, r.context_lens[b] + r.draft_lens[b]);
    } else if (r.IsDecode(b)) {
      longest_decode = std::max(longest_decode, r.context_lens[b]);
    } else if (r.query_lens[b] == 0) {
      continue;
    } else if (neuron_config_.is_prefix_caching) {
      count("prefix_context_encoding",
            two(RoutePrefixPrefill(plan.prefix_context_encoding, r.query_lens[b], r.context_lens[b])));
    } else {
      count("context_encoding", one(FirstFit(plan.context_encoding, r.context_lens[b] + r.query_lens[b])));
    }
  }
  // NxDI routes speculation like token generation, with required = context + speculation length.
  if (longest_spec >= 0) count("speculation", one(FirstFit(plan.token_generation, longest_spec)));
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

std::vector<CapacitySpan> Worker::MoeCapacity(const Rows& r) const {
  std::vector<CapacitySpan> spans;
  const ModelConfig& m = model_config();
  if (!neuron_config_.capacity_factor || !m.is_moe()) return spans;
  int64_t start = 0;
  for (size_t b = 0; b < r.query_lens.size(); ++b) {
    // NxDI drops tokens in context encoding only, with the capacity of the padded bucket.
    if (r.IsPrefill(b)) {
      spans.push_back({start, r.query_lens[b],
                       ExpertCapacity(m.moe, *neuron_config_.capacity_factor,
                                      PrefillBucketTokens(r.query_lens[b], r.context_lens[b]))});
    }
    start += r.query_lens[b];
  }
  return spans;
}

namespace {
int64_t BytesPerBlock(const ModelConfig& c, int64_t block_size, c10::ScalarType dtype) {
  return KvCache::BytesPerBlock(c.num_layers, c.num_kv_heads, block_size, c.head_dim, dtype);
}
}  // namespace

int64_t Worker::KvBytesPerBlock(int64_t block_size) const {
  return BytesPerBlock(model_config(), block_size, neuron_config_.torch_dtype);
}

int64_t Worker::DraftKvBytesPerBlock(int64_t block_size) const {
  return draft_ ? BytesPerBlock(draft_->config(), block_size, neuron_config_.torch_dtype) : 0;
}

absl::Status Worker::AllocateKv(int64_t num_blocks, int64_t block_size) {
  if (num_blocks < 1 || block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("KV cache needs num_blocks >= 1 and block_size >= 1, got ",
                                                   num_blocks, " and ", block_size));
  }
  for (auto [decoder, kv] : {std::pair{&decoder_, &kv_}, std::pair{draft_ ? &*draft_ : nullptr, &draft_kv_}}) {
    if (decoder == nullptr) continue;
    const ModelConfig& c = decoder->config();
    decoder->ReleaseFusedWorkspace();  // it holds the old caches' tensors: free them first
    kv->reset();
    kv->emplace(c.num_layers, num_blocks, c.num_kv_heads, block_size, c.head_dim,
                neuron_config_.torch_dtype);
  }
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
  // Checked on host copies: each ATen reduction and item() here cost microseconds, which on
  // ~20 of them was 1.5% of a batch-1 decode step.
  const std::vector<int64_t> qlens = ToVector(in.query_lens), ctx = ToVector(in.context_lens);
  if (Min(qlens) < 0 || Min(ctx) < 0) return Bad("query_lens and context_lens must be >= 0");
  if (std::accumulate(qlens.begin(), qlens.end(), int64_t{0}) != T) {
    return Bad("sum(query_lens) != len(token_ids)");
  }
  const int64_t vocab = model_config().vocab_size;
  const std::vector<int64_t> tokens = ToVector(in.token_ids), positions = ToVector(in.positions);
  if (T > 0 && (Min(tokens) < 0 || Max(tokens) >= vocab)) {
    return Bad(absl::StrCat("token ids must be in [0, ", vocab, ")"));
  }
  if (T > 0 && (Min(positions) < 0 || Max(positions) >= neuron_config_.seq_len)) {
    return Bad(absl::StrCat("positions must be in [0, seq_len=", neuron_config_.seq_len, ")"));
  }
  int64_t max_len = 0;
  for (int64_t b = 0; b < B; ++b) max_len = std::max(max_len, ctx[b] + qlens[b]);
  if (max_len > neuron_config_.seq_len) {
    return Bad(absl::StrCat("a sequence of ", max_len, " tokens exceeds seq_len ",
                            neuron_config_.seq_len));
  }
  if (in.block_tables.size(1) * kv_->block_size() < max_len) {
    return Bad("block_tables has too few columns for the longest sequence");
  }
  const std::vector<int64_t> blocks = ToVector(in.block_tables);
  if (!blocks.empty() && (Min(blocks) < 0 || Max(blocks) >= kv_->num_blocks())) {
    return Bad(absl::StrCat("block ids must be in [0, ", kv_->num_blocks(), ")"));
  }
  const std::vector<int64_t> slots = ToVector(in.slot_mapping);
  if (T > 0 && (Min(slots) < -1 || Max(slots) >= kv_->num_blocks() * kv_->block_size())) {
    return Bad("slot ids must be -1 or inside the KV cache");
  }
  if (in.draft_lens.defined()) {
    if (!in.draft_lens.device().is_cpu() || in.draft_lens.numel() != B) {
      return Bad("draft_lens must have one entry (row) per query_lens entry, on the CPU");
    }
    const std::vector<int64_t> drafts = ToVector(in.draft_lens);
    const std::vector<int64_t> sample_rows = ToVector(in.sample_rows);
    for (int64_t b = 0; b < B; ++b) {
      if (drafts[b] < 0 || (drafts[b] > 0 && drafts[b] >= qlens[b])) {
        return Bad("draft_lens must be >= 0 and leave at least one non-draft token in the row");
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      if (drafts[b] > 0 && sample_rows[b] == 0) {
        return Bad("only rows that emit a token (sample_rows) may carry drafts");
      }
    }
  }
  // Row b's (temperature, top_k, top_p) at sp[3b..3b+2]; NaN fails both checks.
  const at::Tensor sampling = in.sampling.to(at::kFloat).contiguous();
  const float* sp = sampling.const_data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    if (!(sp[3 * b] >= 0) || !std::isfinite(sp[3 * b])) {
      return Bad("temperature must be a finite number >= 0");
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    if (!(sp[3 * b + 2] > 0 && sp[3 * b + 2] <= 1)) return Bad("top_p must be in (0, 1]");
  }
  return absl::OkStatus();
}

absl::StatusOr<StepOutput> Worker::Step(const StepInput& in) {
  if (auto s = Validate(in); !s.ok()) return s;
  const int64_t B = in.query_lens.numel(), T = in.token_ids.numel();
  Rows r{ToVector(in.query_lens), ToVector(in.context_lens),
         in.draft_lens.defined() ? ToVector(in.draft_lens) : std::vector<int64_t>(B, 0)};
  const int64_t max_drafts = B > 0 ? Max(r.draft_lens) : 0;
  StepOutput out;
  out.tokens = at::full({B, 1 + max_drafts}, -1, at::kLong);
  if (B == 0 || T == 0) return out;

  ForwardInput f;
  f.token_ids = in.token_ids.to(at::kLong);
  f.positions = in.positions.to(at::kLong);
  f.slots = SlotIndex::FromSlotMapping(in.slot_mapping, kv_->block_size());
  CountBuckets(r);
  f.moe_capacity = MoeCapacity(r);
  f.attention = AttentionBatch::FromLengths(r.query_lens, r.context_lens, in.block_tables.to(at::kLong));
  if (max_drafts > 0) f.attention.draft_lens = r.draft_lens;

  // Logits: every token for kAll; otherwise each emitting row's span (its last token and its
  // drafts), plus, for kLast, the last token of every other row. span[b] indexes the logits.
  at::Tensor emits = in.sample_rows.to(at::kBool).logical_and(in.query_lens.gt(0)).contiguous();
  const bool* emit = emits.data_ptr<bool>();
  std::vector<int64_t> span(B, 0), logit_rows;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t end = f.attention.query_start[b + 1];
    const int64_t n = emit[b] ? 1 + r.draft_lens[b] : (r.query_lens[b] > 0 ? 1 : 0);
    span[b] = in.logits == LogitsMode::kAll ? end - n : static_cast<int64_t>(logit_rows.size());
    if (emit[b] || in.logits == LogitsMode::kLast) {
      for (int64_t t = end - n; t < end; ++t) logit_rows.push_back(t);
    }
  }
  f.logits_rows = in.logits == LogitsMode::kAll ? at::arange(T, at::kLong) : at::tensor(logit_rows);
  at::Tensor logits = decoder_.Forward(f, *kv_);

  std::vector<int64_t> rows, starts, drafts;
  for (int64_t b = 0; b < B; ++b) {
    if (!emit[b]) continue;
    rows.push_back(b);
    starts.push_back(span[b]);
    drafts.push_back(r.draft_lens[b]);
  }
  if (!rows.empty()) {
    at::Tensor idx = at::tensor(rows);
    SamplingBatch sb{in.sampling.index_select(0, idx), in.seeds.index_select(0, idx),
                     in.seed_offsets.index_select(0, idx)};
    if (max_drafts == 0) {
      at::Tensor last = logits.index_select(0, at::tensor(starts));
      out.tokens.select(1, 0).index_put_({idx}, sampler_.Sample(last, sb));
    } else {
      at::Tensor d = at::full({static_cast<int64_t>(rows.size()), max_drafts}, -1, at::kLong);
      for (size_t i = 0; i < rows.size(); ++i) {
        const int64_t end = f.attention.query_start[rows[i] + 1];
        d[i].narrow(0, 0, drafts[i]).copy_(f.token_ids.narrow(0, end - drafts[i], drafts[i]));
      }
      out.tokens.index_put_({idx}, sampler_.Verify(logits, starts, drafts, d, sb));
    }
  }
  if (in.logits == LogitsMode::kAll) {
    out.logits = logits;
  } else if (in.logits == LogitsMode::kLast) {  // each row's last token (row 0 for empty rows)
    std::vector<int64_t> last(B, 0);
    for (int64_t b = 0; b < B; ++b) {
      if (r.query_lens[b] > 0) last[b] = span[b] + (emit[b] ? r.draft_lens[b] : 0);
    }
    out.logits = logits.index_select(0, at::tensor(last));
  }
  return out;
}

at::Tensor Worker::ForwardRows(const Decoder& decoder, KvCache& kv, const at::Tensor& token_ids,
                               const at::Tensor& positions, const std::vector<int64_t>& qlens,
                               const std::vector<int64_t>& ctx, const at::Tensor& block_tables,
                               const std::vector<int64_t>& want_rows) const {
  const int64_t B = static_cast<int64_t>(qlens.size()), bs = kv.block_size();
  ForwardInput f;
  f.token_ids = token_ids;
  f.positions = positions;
  f.attention = AttentionBatch::FromLengths(qlens, ctx, block_tables);
  std::vector<int64_t> row_of_token;
  row_of_token.reserve(token_ids.numel());
  for (int64_t b = 0; b < B; ++b) row_of_token.insert(row_of_token.end(), qlens[b], b);
  // slot = block_tables[row, position / bs] * bs + position % bs
  at::Tensor rows = at::tensor(row_of_token);
  at::Tensor blocks = block_tables.index({rows, at::floor_divide(positions, bs)});
  f.slots = SlotIndex::FromSlotMapping(blocks * bs + positions.remainder(bs), bs);
  std::vector<int64_t> last;
  for (int64_t b : want_rows) last.push_back(f.attention.query_start[b + 1] - 1);
  f.logits_rows = at::tensor(last);
  return decoder.Forward(f, kv);
}

absl::StatusOr<at::Tensor> Worker::Propose(const ProposeInput& in) {
  if (!draft_) return absl::FailedPreconditionError("propose needs a draft model (--speculative-config model)");
  if (!draft_kv_) return absl::FailedPreconditionError("propose called before the KV cache was allocated");
  for (const at::Tensor* t : {&in.token_ids, &in.query_lens, &in.context_lens, &in.block_tables, &in.num_drafts}) {
    if (!t->defined() || !t->device().is_cpu()) return Bad("propose: a tensor is missing or not on the CPU");
  }
  const int64_t B = in.query_lens.numel(), bs = draft_kv_->block_size();
  if (in.context_lens.numel() != B || in.num_drafts.numel() != B || in.block_tables.dim() != 2 ||
      in.block_tables.size(0) != B || in.token_ids.dim() != 1) {
    return Bad("propose: per-row tensors must have one entry per query_lens entry");
  }
  std::vector<int64_t> qlens = ToVector(in.query_lens), ctx = ToVector(in.context_lens),
                       want = ToVector(in.num_drafts);
  const int64_t T = in.token_ids.numel();
  int64_t total = 0, max_drafts = 0;
  for (int64_t b = 0; b < B; ++b) {
    if (qlens[b] < 0 || ctx[b] < 0 || want[b] < 0) return Bad("propose: lengths must be >= 0");
    if (want[b] > 0 && qlens[b] == 0) return Bad("propose: a row that drafts needs a token to start from");
    // The last draft's KV is never written: the furthest position written is ctx + q + n - 2.
    const int64_t furthest = ctx[b] + qlens[b] + std::max<int64_t>(want[b] - 1, 0);
    if (furthest > in.block_tables.size(1) * bs || furthest > neuron_config_.seq_len) {
      return Bad(absl::StrCat("propose: row ", b, " would write past its block table or seq_len"));
    }
    total += qlens[b];
    max_drafts = std::max(max_drafts, want[b]);
  }
  if (total != T) return Bad("propose: sum(query_lens) != len(token_ids)");
  const int64_t vocab = model_config().vocab_size;
  if (T > 0 && (in.token_ids.min().item<int64_t>() < 0 || in.token_ids.max().item<int64_t>() >= vocab)) {
    return Bad(absl::StrCat("propose: token ids must be in [0, ", vocab, ")"));
  }
  at::Tensor tables = in.block_tables.to(at::kLong);
  if (tables.numel() > 0 && (tables.min().item<int64_t>() < 0 || tables.max().item<int64_t>() >= draft_kv_->num_blocks())) {
    return Bad(absl::StrCat("propose: block ids must be in [0, ", draft_kv_->num_blocks(), ")"));
  }
  at::Tensor out = at::full({B, max_drafts}, -1, at::kLong);
  if (T == 0) return out;
  try {
    // Catch-up: every row's unseen tokens; the last one's logits give the first draft.
    std::vector<int64_t> positions, drafting;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t p = ctx[b]; p < ctx[b] + qlens[b]; ++p) positions.push_back(p);
      if (want[b] > 0) drafting.push_back(b);
    }
    at::Tensor logits = ForwardRows(*draft_, *draft_kv_, in.token_ids.to(at::kLong), at::tensor(positions),
                                    qlens, ctx, tables, drafting);
    for (int64_t i = 0; !drafting.empty(); ++i) {
      at::Tensor next = logits.argmax(1);
      at::Tensor rows = at::tensor(drafting);
      out.select(1, i).index_put_({rows}, next);
      // Rows that want more feed the draft just made, at position (known tokens + i): one
      // token each, seeing that many positions before it.
      std::vector<int64_t> keep, keep_rows, pos;
      for (size_t j = 0; j < drafting.size(); ++j) {
        const int64_t b = drafting[j];
        if (want[b] <= i + 1) continue;
        keep.push_back(static_cast<int64_t>(j));
        keep_rows.push_back(b);
        pos.push_back(ctx[b] + qlens[b] + i);
      }
      if (keep.empty()) break;
      std::vector<int64_t> local(keep.size());
      std::iota(local.begin(), local.end(), 0);
      logits = ForwardRows(*draft_, *draft_kv_, next.index_select(0, at::tensor(keep)), at::tensor(pos),
                           std::vector<int64_t>(keep.size(), 1), pos,
                           tables.index_select(0, at::tensor(keep_rows)), local);
      drafting = keep_rows;
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("draft model: ", e.what_without_backtrace()));
  }
  return out;
}

}  // namespace vnp
