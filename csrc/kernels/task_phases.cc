#include "kernels/task_phases.h"

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include <ATen/Parallel.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vnp {
namespace {

// Each phase's counters on their own cache line: the next task to hand out and the tasks done.
struct alignas(64) Counters {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
};

void Relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// What the threads of one region share: the counters, and the first exception a task threw,
// after which every thread leaves (a waiting thread would otherwise wait for ever for the task
// that threw) and the caller rethrows it.
struct Region {
  explicit Region(size_t phases) : counters(new Counters[phases]) {}
  std::unique_ptr<Counters[]> counters;
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
};

// Waits for `done` to reach `tasks`, or for a failure. Spins first (a phase's tail is
// microseconds at decode); then yields, so that a waiting thread gives its core to whoever the
// runtime or the vLLM front end is running there (the 2-core host has no core to spare).
bool WaitFor(const std::atomic<int64_t>& done, int64_t tasks, const std::atomic<bool>& failed) {
  constexpr int kSpins = 1 << 14;
  for (int i = 0; done.load(std::memory_order_acquire) < tasks; ++i) {
    if (failed.load(std::memory_order_relaxed)) return false;
    if (i < kSpins) {
      Relax();
    } else {
      std::this_thread::yield();
    }
  }
  return true;
}

void RunAll(const std::vector<TaskPhase>& phases, Region& region, int64_t thread) {
  try {
    for (size_t p = 0; p < phases.size(); ++p) {
      const TaskPhase& phase = phases[p];
      Counters& c = region.counters[p];
      for (int64_t i; (i = c.next.fetch_add(1, std::memory_order_relaxed)) < phase.tasks;) {
        if (region.failed.load(std::memory_order_relaxed)) return;
        phase.run(i, thread);
        c.done.fetch_add(1, std::memory_order_acq_rel);
      }
      if (!WaitFor(c.done, phase.tasks, region.failed)) return;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(region.mutex);
    if (!region.error) region.error = std::current_exception();
    region.failed.store(true);
  }
}

}  // namespace

void RunTaskPhases(const std::vector<TaskPhase>& phases) {
  Region region(phases.size());
  const int64_t threads = at::get_num_threads();
  if (threads <= 1 || at::in_parallel_region()) {
    RunAll(phases, region, 0);
  } else {
    // One index per thread; a thread handed several (a smaller team than asked for) runs them
    // one after another, the later ones finding every phase already done.
    at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) RunAll(phases, region, t);
    });
  }
  if (region.error) std::rethrow_exception(region.error);
}

}  // namespace vnp
