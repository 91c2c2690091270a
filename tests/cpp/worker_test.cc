#include <cmath>
#include <filesystem>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "runtime/generate.h"
#include "runtime/worker.h"
#include "test_util.h"
#include "weights/safetensors.h"

namespace vnp {
namespace {

constexpr const char* kF32 = R"({"seq_len": 128, "torch_dtype": "float32"})";

std::unique_ptr<Worker> MakeWorker(const std::string& dir, const char* config = kF32) {
  auto w = Worker::Create(dir, config);
  EXPECT_TRUE(w.ok()) << w.status();
  return w.ok() ? *std::move(w) : nullptr;
}

std::vector<GenerateRequest> Requests() {
  std::vector<GenerateRequest> r(3);
  r[0].prompt = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41};
  r[1].prompt = {2, 4};
  r[2].prompt = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 3};
  for (auto& x : r) x.max_new_tokens = 12;
  return r;
}

TEST(WorkerTest, ChunkedPrefillAndBatchingDoNotChangeGreedyOutput) {
  std::string dir = testing::WriteTinyLlama("worker_gen", {});
  auto w = MakeWorker(dir);
  auto whole = Generate(*w, Requests(), {});
  ASSERT_TRUE(whole.ok()) << whole.status();
  auto chunked = Generate(*w, Requests(), {.block_size = 4, .num_blocks = 64, .prefill_chunk = 5});
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(whole->tokens, chunked->tokens);
  // One timed step per token when prompts go whole; the 19-token prompt in chunks of 5 adds
  // three prefill-only steps before its first token.
  EXPECT_EQ(whole->step_seconds.size(), 12u);
  EXPECT_EQ(chunked->step_seconds.size(), 15u);
  for (double s : whole->step_seconds) EXPECT_GT(s, 0.0);
  for (size_t i = 0; i < Requests().size(); ++i) {
    auto alone = Generate(*w, {Requests()[i]}, {.block_size = 8});
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(alone->tokens[0], whole->tokens[i]) << "request " << i;
  }
}

TEST(WorkerTest, DecodeLogitsMatchPrefillLogits) {
  std::string dir = testing::WriteTinyLlama("worker_logits", {.tied = true});
  auto w = MakeWorker(dir);
  ASSERT_TRUE(w->AllocateKv(8, 4).ok());
  const int64_t T = 10;
  at::Tensor ids = at::randint(0, 96, {T}, at::kLong), table = at::tensor({3, 1, 6}, at::kLong).view({1, 3});
  auto slot = [&](int64_t p) { return table[0][p / 4].item<int64_t>() * 4 + p % 4; };
  std::vector<int64_t> slots;
  for (int64_t p = 0; p < T; ++p) slots.push_back(slot(p));
  auto step = [&](int64_t from, int64_t n, LogitsMode mode) {
    StepInput in{ids.narrow(0, from, n), at::arange(from, from + n, at::kLong),
                 at::tensor({n}, at::kLong), at::tensor({from}, at::kLong), table,
                 at::tensor(slots, at::kLong).narrow(0, from, n), at::ones({1}, at::kBool),
                 at::tensor({0.0f, 0.0f, 1.0f}).view({1, 3}), at::tensor({-1}, at::kLong),
                 at::tensor({0}, at::kLong), mode};
    auto out = w->Step(in);
    EXPECT_TRUE(out.ok()) << out.status();
    return out->logits;
  };
  at::Tensor all = step(0, T, LogitsMode::kAll);
  ASSERT_TRUE(w->AllocateKv(8, 4).ok());
  step(0, 4, LogitsMode::kNone);
  for (int64_t p = 4; p < T; ++p) {
    at::Tensor one = step(p, 1, LogitsMode::kLast);
    EXPECT_TRUE(at::allclose(one[0], all[p], 1e-4, 1e-4)) << "position " << p;
  }
}

TEST(WorkerTest, BadStepInputIsAnErrorNotACrash) {
  std::string dir = testing::WriteTinyLlama("worker_bad", {});
  auto w = MakeWorker(dir);
  StepInput in{at::tensor({1, 2}, at::kLong), at::tensor({0, 1}, at::kLong), at::tensor({2}, at::kLong),
               at::tensor({0}, at::kLong), at::tensor({1}, at::kLong).view({1, 1}),
               at::tensor({4, 5}, at::kLong), at::ones({1}, at::kBool),
               at::tensor({0.0f, 0.0f, 1.0f}).view({1, 3}), at::tensor({-1}, at::kLong),
               at::tensor({0}, at::kLong)};
  EXPECT_EQ(w->Step(in).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(w->AllocateKv(4, 4).ok());
  ASSERT_TRUE(w->Step(in).ok());
  auto expect_error = [&](StepInput bad, const char* what) {
    auto out = w->Step(bad);
    ASSERT_FALSE(out.ok()) << what;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find(what), std::string::npos) << out.status().message();
  };
  StepInput b = in;
  b.token_ids = at::tensor({1, 96}, at::kLong);
  expect_error(b, "token ids must be in [0, 96)");
  b = in;
  b.query_lens = at::tensor({3}, at::kLong);
  expect_error(b, "sum(query_lens)");
  b = in;
  b.block_tables = at::tensor({9}, at::kLong).view({1, 1});
  expect_error(b, "block ids must be in [0, 4)");
  b = in;
  b.sampling = at::tensor({-1.0f, 0.0f, 1.0f}).view({1, 3});
  expect_error(b, "temperature");
  b = in;
  b.sampling = at::tensor({1.0f, 0.0f, 0.0f}).view({1, 3});
  expect_error(b, "top_p must be in (0, 1]");
  b.sampling = at::tensor({1.0f, 0.0f, std::nanf("")}).view({1, 3});
  expect_error(b, "top_p must be in (0, 1]");
  b.sampling = at::tensor({std::nanf(""), 0.0f, 1.0f}).view({1, 3});
  expect_error(b, "temperature must be a finite number >= 0");
  b = in;
  b.draft_lens = at::tensor({2}, at::kLong);
  expect_error(b, "draft_lens must be >= 0 and leave at least one non-draft token");
  b = in;
  b.positions = at::tensor({200, 201}, at::kLong);
  expect_error(b, "positions must be in [0, seq_len=128)");
}

TEST(WorkerTest, CheckpointMismatchNamesTheTensor) {
  std::string dir = testing::WriteTinyLlama("worker_ckpt", {});
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok());
  std::map<std::string, at::Tensor> tensors;
  for (const auto& n : ckpt->Names()) tensors[n] = ckpt->Get(n)->clone();
  tensors["model.layers.7.extra.weight"] = at::zeros({2});
  testing::WriteSafetensors(dir + "/model.safetensors", tensors);
  auto w = Worker::Create(dir, kF32);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("model.layers.7.extra.weight"), std::string::npos);
  tensors.erase("model.layers.7.extra.weight");
  tensors.erase("model.layers.1.mlp.up_proj.weight");
  testing::WriteSafetensors(dir + "/model.safetensors", tensors);
  w = Worker::Create(dir, kF32);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos);
}

}  // namespace
}  // namespace vnp
