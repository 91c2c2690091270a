// Memory for the data the kernels stream through every step: the weights and the KV cache.
// A batch-1 decode step reads every weight once. In 4 KB pages that is ~66 thousand pages for
// SmolLM2-135M, far more than the TLB covers, so the stream pays a page walk every 4 KB; in
// 2 MB transparent huge pages it is ~130 pages. The kernel backs an madvise(MADV_HUGEPAGE)
// range with huge pages under THP "madvise" (Debian's default) and "always"; under "never" it
// is ordinary memory and everything still works.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>
#include <absl/status/statusor.h>

namespace vnp {

// `bytes` of zero-filled, writable memory, 2 MB aligned and advised for huge pages when it is
// at least one huge page long; unmapped when the last copy of the pointer goes.
absl::StatusOr<std::shared_ptr<char>> HugePageBuffer(size_t bytes);

// Zero-filled tensors of one dtype and the given shapes, laid end to end in one HugePageBuffer
// (one allocation, so many small tensors share huge pages), backed by memory before they
// return, as at::zeros' are (no page faults later, in the steps). Throws c10::Error when the
// memory cannot be mapped, as at::zeros does.
std::vector<at::Tensor> HugePageZeros(const std::vector<std::vector<int64_t>>& shapes,
                                      c10::ScalarType dtype);

}  // namespace vnp
