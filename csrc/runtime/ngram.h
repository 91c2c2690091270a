// N-gram prompt lookup (vLLM's "ngram" method): the drafts are the tokens that followed an
// earlier occurrence of the sequence's own suffix. Same rule as vLLM's NgramProposer, so a
// user gets the same drafts from either: the longest suffix of min_n..max_n tokens that occurs
// earlier, at its earliest occurrence, and up to k of the tokens after it.
#pragma once

#include <cstdint>
#include <vector>

namespace vnp {

struct NgramParams {
  int64_t min_n = 1;
  int64_t max_n = 1;
  int64_t k = 1;  // drafts wanted
};

// Up to k drafts (fewer when the match sits near the end; none when nothing matches).
std::vector<int64_t> ProposeNgram(const int64_t* tokens, int64_t len, const NgramParams& params);

}  // namespace vnp
