#include "kernels/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <ATen/ops/from_blob.h>
#include <absl/strings/str_cat.h>
#include <c10/util/Exception.h>

namespace vnp {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Backs [p, p + bytes) with memory now instead of at first write. A lazily backed KV cache
// took its page faults (and the kernel's zeroing of each 2 MB page) inside serving steps: ~3% of
// a loaded server's engine time, on whichever step first wrote a block.
void Prefault(char* p, size_t bytes) {
  if (bytes == 0) return;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
#ifdef MADV_POPULATE_WRITE
  if (::madvise(p, RoundUp(bytes, page), MADV_POPULATE_WRITE) == 0) return;
#endif
  // Kernels before 5.14: a write per page (the memory is zero already, so writing zero keeps it).
  for (size_t i = 0; i < bytes; i += page) static_cast<volatile char*>(p)[i] = 0;
}

}  // namespace

absl::StatusOr<std::shared_ptr<char>> HugePageBuffer(size_t bytes) {
  if (bytes == 0) return std::shared_ptr<char>();
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const bool huge = bytes >= kHugePage;
  const size_t len = RoundUp(bytes, huge ? kHugePage : page);
  // Over-allocate by one huge page and trim, so that the buffer starts on a 2 MB boundary (a
  // huge page backs only an aligned 2 MB range).
  const size_t extra = huge ? kHugePage : 0;
  void* raw = ::mmap(nullptr, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
  if (raw == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", bytes, " bytes of memory: ", std::strerror(errno)));
  }
  char* begin = static_cast<char*>(raw);
  char* end = begin + len + extra;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(begin);
  char* aligned = huge ? reinterpret_cast<char*>(RoundUp(addr, kHugePage)) : begin;
  if (aligned > begin) ::munmap(begin, aligned - begin);
  if (end > aligned + len) ::munmap(aligned + len, end - (aligned + len));
  // Advice only: without THP the range stays in 4 KB pages, which is correct, just slower.
  if (huge) ::madvise(aligned, len, MADV_HUGEPAGE);
  return std::shared_ptr<char>(aligned, [len](char* p) { ::munmap(p, len); });
}

std::vector<at::Tensor> HugePageZeros(const std::vector<std::vector<int64_t>>& shapes,
                                      c10::ScalarType dtype) {
  const size_t elem = c10::elementSize(dtype);
  std::vector<size_t> offsets;
  size_t total = 0;
  for (const auto& shape : shapes) {
    size_t n = elem;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    offsets.push_back(total);
    total += RoundUp(n, 64);  // each tensor cache-line aligned
  }
  auto buffer = HugePageBuffer(total);
  TORCH_CHECK(buffer.ok(), buffer.status().message());
  std::shared_ptr<char> keep_alive = *std::move(buffer);
  Prefault(keep_alive.get(), total);
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < shapes.size(); ++i) {
    out.push_back(at::from_blob(keep_alive.get() + offsets[i], shapes[i],
                                [keep_alive](void*) {}, at::TensorOptions().dtype(dtype)));
  }
  return out;
}

}  // namespace vnp
