// The fused decode step (model/fused_decode.h) against Decoder's op-by-op path on the same
// steps: same logits, same greedy tokens, for one row (key chunks merged, x widened for the
// one-row loop) and several rows, separate and fused q/k/v, fp32 and bf16, and a padding row.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runtime/generate.h"
#include "runtime/worker.h"
#include "test_util.h"

namespace vnp {
namespace {

struct Case {
  const char* dtype;
  bool fused_qkv;
};

std::string Config(const Case& c) {
  return std::string(R"({"seq_len": 128, "torch_dtype": ")") + c.dtype +
         R"(", "fused_qkv": )" + (c.fused_qkv ? "true" : "false") + "}";
}

// Prefills rows of the given lengths (block size 4, each row's blocks its own), then runs decode
// steps of every row on two workers of the same checkpoint, each with its own KV: `ref` op by
// op, `fused` on the fused path, both fed ref's tokens.
void CompareDecodeSteps(Worker& ref, Worker& fused, const std::vector<int64_t>& lens, bool fp32,
                        bool pad_last = false) {
  const int64_t B = static_cast<int64_t>(lens.size()), BS = 4, per_row = 16;
  ASSERT_TRUE(ref.AllocateKv(B * per_row, BS).ok() && fused.AllocateKv(B * per_row, BS).ok());
  ref.set_fused_decode(false);
  fused.set_fused_decode(true);
  at::Tensor tables = at::arange(B * per_row, at::kLong).view({B, per_row});
  auto slot = [&](int64_t b, int64_t p) { return tables[b][p / BS].item<int64_t>() * BS + p % BS; };
  auto sampling = at::tensor({0.0f, 0.0f, 1.0f}).repeat({B, 1});
  auto run = [&](Worker& w, std::vector<int64_t> ids, std::vector<int64_t> pos,
                 std::vector<int64_t> qlens, std::vector<int64_t> ctx, std::vector<int64_t> slots) {
    StepInput in{at::tensor(ids, at::kLong), at::tensor(pos, at::kLong),
                 at::tensor(qlens, at::kLong), at::tensor(ctx, at::kLong), tables, at::tensor(slots, at::kLong),
                 at::ones({B}, at::kBool), sampling, at::full({B}, -1, at::kLong),
                 at::zeros({B}, at::kLong), LogitsMode::kLast};
    auto out = w.Step(in);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : StepOutput{};
  };
  std::vector<int64_t> ids, pos, qlens, ctx, slots;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t p = 0; p < lens[b]; ++p) {
      ids.push_back((7 * b + 3 * p + 1) % 96), pos.push_back(p), slots.push_back(slot(b, p));
    }
    qlens.push_back(lens[b]), ctx.push_back(0);
  }
  StepOutput prev = run(ref, ids, pos, qlens, ctx, slots);
  run(fused, ids, pos, qlens, ctx, slots);
  std::vector<int64_t> len = lens;
  for (int step = 0; step < 6; ++step) {
    ids.clear(), pos.clear(), slots.clear();
    for (int64_t b = 0; b < B; ++b) {
      ids.push_back(prev.tokens[b][0].item<int64_t>()), pos.push_back(len[b]);
      slots.push_back(pad_last && b == B - 1 ? -1 : slot(b, len[b]));
    }
    const std::vector<int64_t> ones(B, 1);
    StepOutput want = run(ref, ids, pos, ones, len, slots);
    const int64_t fused_before = fused.fused_decode_steps();
    StepOutput got = run(fused, ids, pos, ones, len, slots);
    EXPECT_EQ(fused.fused_decode_steps(), fused_before + 1)
        << "the step did not take the fused path";
    EXPECT_EQ(ref.fused_decode_steps(), 0);
    ASSERT_TRUE(want.logits.defined() && got.logits.defined());
    // The same kernels and rounding points: on the Zen 5 host bf16 logits came out bitwise
    // equal, fp32 within 1.2e-6. SiLU's exponential (std::exp against ATen's vectorised one)
    // may differ in the last fp32 bit, which can move a bf16 activation by one unit elsewhere.
    const double tol = want.logits.abs().max().item<double>() * (fp32 ? 1e-5 : 5e-3);
    EXPECT_TRUE(at::allclose(got.logits, want.logits, 0, tol))
        << "step " << step << ": max difference "
        << (got.logits - want.logits).abs().max().item<double>();
    EXPECT_TRUE(at::equal(got.tokens, want.tokens)) << "step " << step;
    prev = want;
    for (int64_t b = 0; b < B; ++b) ++len[b];
  }
}

TEST(FusedDecodeTest, MatchesOpByOpPath) {
  for (const Case& c : {Case{"bfloat16", false}, Case{"bfloat16", true}, Case{"float32", false}}) {
    SCOPED_TRACE(Config(c));
    std::string dir = testing::WriteTinyLlama(std::string("fused_decode_") + c.dtype, {});
    auto ref = Worker::Create(dir, Config(c));
    auto fused = Worker::Create(dir, Config(c));
    ASSERT_TRUE(ref.ok() && fused.ok()) << ref.status();
    const bool fp32 = std::string(c.dtype) == "float32";
    CompareDecodeSteps(**ref, **fused, {9}, fp32);
    CompareDecodeSteps(**ref, **fused, {5, 13, 2}, fp32);
    CompareDecodeSteps(**ref, **fused, {6, 3}, fp32, /*pad_last=*/true);
  }
}

TEST(FusedDecodeTest, GreedyGenerationIsUnchanged) {
  std::string dir = testing::WriteTinyLlama("fused_decode_generate", {.layers = 3});
  auto w = Worker::Create(dir, R"({"seq_len": 128, "torch_dtype": "bfloat16"})");
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<GenerateRequest> r(3);
  r[0].prompt = {1, 5, 9, 13, 17, 21, 25};
  r[1].prompt = {2, 4};
  r[2].prompt = {7, 7, 7, 7, 7, 7, 7, 7, 7, 3};
  for (auto& x : r) x.max_new_tokens = 20;
  (*w)->set_fused_decode(false);
  auto ref = Generate(**w, r, {.block_size = 4});
  EXPECT_EQ((*w)->fused_decode_steps(), 0);
  (*w)->set_fused_decode(true);
  auto fused = Generate(**w, r, {.block_size = 4});
  ASSERT_TRUE(ref.ok() && fused.ok());
  EXPECT_GT((*w)->fused_decode_steps(), 15);
  EXPECT_EQ(fused->tokens, ref->tokens);
}

}  // namespace
}  // namespace vnp
