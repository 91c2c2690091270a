#include "kernels/huge_pages.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace vnp {
namespace {

// The VmFlags line of the mapping in /proc/self/smaps that contains p ("" if none does).
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= addr && addr < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool KernelHasThp() {
  return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
}

TEST(HugePages, LargeBufferIsAlignedZeroedAndAdvised) {
  const size_t bytes = (5 << 20) + 123;
  auto buffer = HugePageBuffer(bytes);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  char* p = buffer->get();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2 << 20), 0u);
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(p[i], 0) << i;
  EXPECT_EQ(p[bytes - 1], 0);
  p[bytes - 1] = 7;  // writable to the last byte
  if (KernelHasThp()) {
    const std::string flags = VmFlagsOf(p);
    EXPECT_NE(flags.find(" hg"), std::string::npos) << "not advised for huge pages: " << flags;
  }
}

TEST(HugePages, SmallAndEmptyBuffers) {
  auto small = HugePageBuffer(100);
  ASSERT_TRUE(small.ok());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(small->get()[i], 0);
  auto empty = HugePageBuffer(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->get(), nullptr);
}

TEST(HugePages, ZerosAreSeparateTensorsThatOutliveTheirList) {
  at::Tensor a, b;
  {
    auto ts = HugePageZeros({{3, 5}, {7}, {0, 4}}, at::kBFloat16);
    ASSERT_EQ(ts.size(), 3u);
    a = ts[0], b = ts[1];
    EXPECT_EQ(ts[2].numel(), 0);
  }
  EXPECT_EQ(a.sizes(), at::IntArrayRef({3, 5}));
  EXPECT_EQ(a.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(a.eq(0).all().item<bool>());
  EXPECT_TRUE(b.eq(0).all().item<bool>());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data_ptr()) % 64, 0u);
  a.fill_(1);
  EXPECT_TRUE(b.eq(0).all().item<bool>());  // no overlap
  b.fill_(2);
  EXPECT_TRUE(a.eq(1).all().item<bool>());
}

}  // namespace
}  // namespace vnp
