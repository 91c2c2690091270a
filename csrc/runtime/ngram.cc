#include "runtime/ngram.h"

#include <algorithm>

namespace vnp {

std::vector<int64_t> ProposeNgram(const int64_t* tokens, int64_t len, const NgramParams& p) {
  const int64_t longest = std::min(p.max_n, len - 1);  // an occurrence must end before the suffix
  for (int64_t n = longest; n >= std::max<int64_t>(p.min_n, 1); --n) {
    const int64_t* suffix = tokens + len - n;
    // Earliest start i < len - n whose n tokens equal the suffix.
    for (int64_t i = 0; i + n < len; ++i) {
      if (!std::equal(suffix, suffix + n, tokens + i)) continue;
      const int64_t from = i + n, to = std::min(len, from + p.k);
      return std::vector<int64_t>(tokens + from, tokens + to);
    }
  }
  return {};
}

}  // namespace vnp
