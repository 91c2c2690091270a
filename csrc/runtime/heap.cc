#include "runtime/heap.h"

#include <cstdlib>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <absl/strings/str_cat.h>

namespace vnp {

absl::Status KeepStepAllocationsOnHeap() {
  static const absl::Status status = [] {
    const char* env = std::getenv("VNP_HEAP_POLICY");
    const std::string policy = env ? env : "";
    if (policy == "glibc") return absl::OkStatus();
    if (!policy.empty() && policy != "heap") {
      return absl::InvalidArgumentError(
          absl::StrCat("VNP_HEAP_POLICY='", policy,
                       "' is not a heap policy; allowed: heap (the default), glibc"));
    }
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
    return absl::OkStatus();
  }();
  return status;
}

}  // namespace vnp
