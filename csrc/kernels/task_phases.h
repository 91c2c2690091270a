// A sequence of phases of tasks run in one parallel region of torch's intra-op threads, the
// phases separated by spinning waits instead of a fork/join each. For the decode step at small
// batch, whose projections last tens of microseconds: there each parallel region's start and end
// and the serial ATen work between regions left the second thread idle about a quarter of the
// time (a per-thread profile of batch-1 decode on a 2-core Zen 4).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace vnp {

struct TaskPhase {
  int64_t tasks = 0;
  // run(task, thread): thread in [0, threads in the region), for per-thread scratch.
  std::function<void(int64_t task, int64_t thread)> run;
};

// Runs every task of each phase, the phases in order: no task of phase p + 1 starts before every
// task of phase p has ended (and its writes are visible). Tasks are handed out one at a time,
// as ParallelDynamic does. Nothing waits for a particular thread: a thread that starts late
// finds the early phases done, and one thread alone runs everything, so the region completes
// whatever number of threads the runtime gives it. Thread indices are below
// at::get_num_threads() (the per-thread scratch callers size). A task that throws stops the
// region (no task starts after it) and the exception is rethrown here.
void RunTaskPhases(const std::vector<TaskPhase>& phases);

}  // namespace vnp
