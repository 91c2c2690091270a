// RunTaskPhases: every task of a phase ends (its writes visible) before the next phase starts,
// on however many threads; a task's exception comes back to the caller instead of a hang.
#include <atomic>
#include <stdexcept>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "kernels/task_phases.h"

namespace vnp {
namespace {

// Phase p writes every cell p + 1 after checking that phase p - 1 wrote all of them.
void RunChain(int64_t cells, int64_t phases, std::atomic<int64_t>& wrong) {
  std::vector<int64_t> a(cells, 0);
  // Read here: inside a parallel region get_num_threads() answers for a nested one (1).
  const int64_t threads = at::get_num_threads();
  std::vector<TaskPhase> ps;
  for (int64_t p = 0; p < phases; ++p) {
    ps.push_back({cells, [&a, &wrong, cells, p, threads](int64_t i, int64_t thread) {
                    // Every cell, not just this task's: any cell of the last phase still unwritten
                    // would show here.
                    for (int64_t j = 0; j < cells; ++j) {
                      if (a[j] < p) wrong.fetch_add(1);
                    }
                    if (thread < 0 || thread >= threads) wrong.fetch_add(1);
                    a[i] = p + 1;
                  }});
  }
  RunTaskPhases(ps);
  for (int64_t v : a) EXPECT_EQ(v, phases);
}

TEST(TaskPhasesTest, PhasesRunInOrder) {
  std::atomic<int64_t> wrong{0};
  RunChain(64, 200, wrong);
  RunChain(1, 50, wrong);  // one task a phase: the other threads only wait
  EXPECT_EQ(wrong.load(), 0);
}

TEST(TaskPhasesTest, EmptyPhasesAndNestedRegions) {
  std::atomic<int64_t> ran{0};
  RunTaskPhases({{0, nullptr}, {3, [&](int64_t, int64_t) { ran.fetch_add(1); }}, {0, nullptr}});
  EXPECT_EQ(ran.load(), 3);
  // Inside another parallel region the caller's thread runs everything.
  std::atomic<int64_t> wrong{0};
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { RunChain(8, 10, wrong); });
  EXPECT_EQ(wrong.load(), 0);
}

TEST(TaskPhasesTest, ATaskExceptionReachesTheCaller) {
  std::atomic<int64_t> later{0};
  std::vector<TaskPhase> ps = {
      {4, [](int64_t i, int64_t) {
         if (i == 2) throw std::runtime_error("task 2 failed");
       }},
      {1000, [&](int64_t, int64_t) { later.fetch_add(1); }}};
  try {
    RunTaskPhases(ps);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "task 2 failed");
  }
  EXPECT_EQ(later.load(), 0);  // nothing of the next phase ran
}

}  // namespace
}  // namespace vnp
