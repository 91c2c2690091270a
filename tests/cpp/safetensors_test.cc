#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "weights/safetensors.h"

namespace vnp {
namespace {

TEST(SafetensorsTest, ReadsWhatWasWritten) {
  std::string dir = testing::TempDir("st_read");
  at::Tensor a = at::randn({3, 4}), b = at::randn({5}).to(at::kBFloat16);
  testing::WriteSafetensors(dir + "/model.safetensors", {{"a", a}, {"b", b}});
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE(at::equal(*ckpt->Get("a"), a));
  EXPECT_TRUE(at::equal(*ckpt->Get("b"), b));
  EXPECT_EQ(ckpt->Get("missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, FollowsShardIndex) {
  std::string dir = testing::TempDir("st_shards");
  at::Tensor a = at::randn({2}), b = at::randn({3});
  testing::WriteSafetensors(dir + "/s1.safetensors", {{"a", a}});
  testing::WriteSafetensors(dir + "/s2.safetensors", {{"b", b}});
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})";
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE(at::equal(*ckpt->Get("b"), b));
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"weight_map": {"a": "s1.safetensors", "c": "s2.safetensors"}})";
  auto bad = Checkpoint::Open(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tensor 'c'"), std::string::npos);
}

TEST(SafetensorsTest, CorruptFilesAreCleanErrors) {
  std::string dir = testing::TempDir("st_corrupt");
  std::string path = dir + "/model.safetensors";
  testing::WriteSafetensors(path, {{"a", at::randn({64})}});
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 10);  // truncated data
  auto c = Checkpoint::OpenFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(c.status().message().find("corrupt safetensors"), std::string::npos);

  std::ofstream(path, std::ios::binary) << "\xff\xff\xff\xff\xff\xff\xff\x7f{}";  // huge header
  EXPECT_EQ(Checkpoint::OpenFile(path).status().code(), absl::StatusCode::kDataLoss);
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_EQ(Checkpoint::OpenFile(path).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Checkpoint::Open(dir + "/nowhere").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vnp
