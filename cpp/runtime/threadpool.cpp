// A small persistent thread pool. The caller of parallel_for works too, so n threads means n-1
// workers. Workers spin briefly after a job (back-to-back launches are common: the GEMM issues a
// few per call) and then sleep on a condition variable.
#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "runtime.h"

namespace tsm {
namespace {

int count_physical_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int allowed = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
  if (allowed <= 0) allowed = static_cast<int>(std::thread::hardware_concurrency());
  if (allowed <= 0) allowed = 1;
  // Count distinct (package, core) pairs among the CPUs we may run on.
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    char path[128];
    int pkg = -1, core = -1;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
    if (FILE* f = fopen(path, "r")) { if (fscanf(f, "%d", &pkg) != 1) pkg = -1; fclose(f); }
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
    if (FILE* f = fopen(path, "r")) { if (fscanf(f, "%d", &core) != 1) core = -1; fclose(f); }
    if (pkg < 0 || core < 0) return allowed;  // topology unknown: use logical CPUs
    cores.insert({pkg, core});
  }
  int n = static_cast<int>(cores.size());
  return n > 0 ? n : allowed;
}

int default_threads() {
  if (const char* env = std::getenv("TSM_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  return count_physical_cores();
}

class Pool {
 public:
  Pool() { resize(default_threads()); }
  ~Pool() { stop_workers(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    std::lock_guard<std::mutex> dispatch(dispatch_);
    stop_workers();
    nthreads_ = n;
    stop_ = false;
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  void run(int64_t ntasks, const std::function<void(int64_t)>& fn) {
    if (ntasks <= 0) return;
    std::unique_lock<std::mutex> dispatch(dispatch_, std::try_to_lock);
    if (ntasks == 1 || nthreads_ == 1 || !dispatch.owns_lock()) {
      for (int64_t t = 0; t < ntasks; ++t) fn(t);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      ntasks_ = ntasks;
      next_.store(0, std::memory_order_relaxed);
      done_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(fn, ntasks);
    // Wait for the workers to finish the tasks they took: spin briefly, then yield the core so a
    // descheduled worker (an oversubscribed machine) can run.
    for (int spin = 0; done_.load(std::memory_order_acquire) < ntasks; ++spin) {
#if defined(__x86_64__)
      if (spin < 4096) { __builtin_ia32_pause(); continue; }
#endif
      std::this_thread::yield();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = nullptr;
    }
    // A worker that took this job late may still be looking at the task counter: wait for it, so
    // it can never run this job's fn with the next job's indices.
    while (active_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  void work(const std::function<void(int64_t)>& fn, int64_t ntasks) {
    for (;;) {
      int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(t);
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void worker_loop() {
    uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // Spin a little before sleeping: the next job often follows within microseconds.
      for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen &&
                         !stop_.load(std::memory_order_relaxed);
           ++spin) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      const std::function<void(int64_t)>* job = nullptr;
      int64_t ntasks = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        if (stop_.load()) return;
        seen = generation_.load();
        job = job_;
        ntasks = ntasks_;
        if (job) active_.fetch_add(1, std::memory_order_acq_rel);
      }
      if (job) {
        work(*job, ntasks);
        active_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex dispatch_;  // one parallel_for at a time
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t ntasks_ = 0;
  std::atomic<int64_t> next_{0}, done_{0};
  std::atomic<int> active_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  int nthreads_ = 1;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers may outlive static destruction order
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn) { pool().run(ntasks, fn); }

}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_set_num_threads(int n) {
  if (n < 1 || n > 1024)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "set_num_threads: n must be in [1, 1024], got %d", n);
  tsm::pool().resize(n);
  return TSM_OK;
}

TSM_API int tsm_get_num_threads(void) { return tsm::num_threads(); }

}  // extern "C"
