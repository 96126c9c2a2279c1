// Host emulation of the CUDA execution model, to run this repository's .cu kernels as plain C++ on a
// machine without a GPU (test/emu/kernels_emu.cpp; see cuda/README.md, "Host emulation").
//
// How a .cu file is compiled here: test/emu/rewrite-launches.mjs copies it with every launch
// `kernel<<<grid, block, smem, stream>>>(args)` rewritten to
// `::tsm_emu::Launch(grid, block, smem, stream).run([](auto... a) { kernel(a...); })(args)` (nothing
// else changes, line numbers are kept), and g++ compiles the copy with `-include test/emu/cuda_host.h`.
//
// The model:
//   - every CUDA thread of a block is a host thread; the blocks of a grid run one after the other
//     (so `__shared__` can be a function-local static: one copy, used by one block at a time);
//   - __syncthreads is a barrier of the block's threads; a thread that returns from the kernel
//     leaves every barrier (as exited threads do on the GPU);
//   - warp shuffles are collectives of the 32 lanes of a warp (linear thread id / 32): every live
//     lane must take part at the same call site with the same mask; a mask that names an exited lane
//     or a lane outside the block, a source lane outside the mask, or lanes of one warp at different
//     shuffles stop the run with a message (all undefined behaviour on the GPU);
//   - launch configurations are checked as the driver does (block <= 1024 threads, grid >= 1,
//     grid.y/z <= 65535): a bad one makes check_launch report TSM_ERR_CUDA;
//   - atomics are std::atomic_ref; float intrinsics (__fmul_rn, ...) are the IEEE float operations
//     (compile with -ffp-contract=off: no FMA contraction anywhere, unlike nvcc's default);
//   - a watchdog stops a run whose barriers make no progress for 60 s (a deadlock).
// Not modelled: the timing of a real GPU (races between threads of a block happen here only by
// chance of the host scheduler), FMA contraction by nvcc, device math library rounding (host libm
// is used), shared-memory size limits and bank conflicts, speed.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <semaphore>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <source_location>
#include <thread>
#include <type_traits>
#include <vector>

namespace tsm_emu {

// A blocking barrier (mutex + condition variable, no spinning: with hundreds of threads on a few
// cores, spinning barriers such as std::barrier spend most of the time spinning). arrive_and_drop
// as std::barrier: counts as an arrival now and lowers the count of later phases.
class Barrier {
 public:
  explicit Barrier(ptrdiff_t n) : expected_(n), left_(n) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lk(mu_);
    const uint64_t gen = gen_;
    if (--left_ == 0) {
      complete();
      return;
    }
    cv_.wait(lk, [&] { return gen_ != gen; });
  }
  void arrive_and_drop() {
    std::unique_lock<std::mutex> lk(mu_);
    --expected_;
    if (--left_ == 0) complete();
  }

 private:
  void complete() {
    left_ = expected_;
    ++gen_;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  ptrdiff_t expected_, left_;
  uint64_t gen_ = 0;
};

struct WarpState {
  Barrier bar;
  std::atomic<uint32_t> live;  // lanes that have not returned from the kernel
  // Two sets of slots, used by alternate collectives: a lane can be at most one collective ahead
  // of another (each one is a barrier), so one barrier per collective suffices.
  uint64_t val[2][32];
  unsigned mask[2][32];
  unsigned tag[2][32];
  uint64_t stamp[2][32];      // the collective's number: who took part in this one
  uint64_t phase[32] = {};
  WarpState(int lanes, uint32_t live_mask) : bar(lanes), live(live_mask) {
    for (auto& r : stamp)
      for (auto& x : r) x = 0;
  }
};

struct BlockState {
  Barrier bar;
  std::vector<std::unique_ptr<WarpState>> warps;
  std::unique_ptr<unsigned char[]> dyn_smem;
  size_t dyn_bytes = 0;
  BlockState(unsigned threads, size_t smem) : bar(ptrdiff_t(threads)), dyn_bytes(smem) {
    for (unsigned w = 0; w * 32 < threads; ++w) {
      const unsigned lanes = std::min(32u, threads - w * 32);
      warps.push_back(std::make_unique<WarpState>(int(lanes), lanes == 32 ? 0xffffffffu : (1u << lanes) - 1));
    }
    if (smem) {
      dyn_smem.reset(new unsigned char[smem]);
      std::memset(dyn_smem.get(), 0xff, smem);  // NaN pattern: reads of unwritten shared memory show up
    }
  }
};

inline thread_local BlockState* t_blk = nullptr;
inline thread_local uint3 t_tid{0, 0, 0}, t_bid{0, 0, 0};
inline thread_local dim3 t_bdim{1, 1, 1}, t_gdim{1, 1, 1};
inline thread_local unsigned t_linear = 0;  // linear thread id in the block

inline std::atomic<uint64_t> g_progress{0};  // barrier completions (watchdog)
inline std::atomic<int> g_launches_active{0};
inline std::mutex g_err_mu;
inline char g_launch_error[512] = "";  // a rejected launch configuration, reported by check_launch
inline std::atomic<uint64_t> g_launch_count{0};

[[noreturn]] inline void die(const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "EMULATION ERROR: %s (block %u,%u,%u thread %u,%u,%u)\n", msg, t_bid.x, t_bid.y, t_bid.z,
               t_tid.x, t_tid.y, t_tid.z);
  std::fflush(stderr);
  std::abort();
}

inline WarpState& warp() { return *t_blk->warps[t_linear / 32]; }
inline int lane() { return int(t_linear % 32); }

inline void syncthreads() {
  t_blk->bar.arrive_and_wait();
  g_progress.fetch_add(1, std::memory_order_relaxed);
}

inline void syncwarp(unsigned mask) {
  WarpState& w = warp();
  if (!((mask >> lane()) & 1u)) die("__syncwarp: calling lane %d not in mask %#x", lane(), mask);
  w.bar.arrive_and_wait();
  g_progress.fetch_add(1, std::memory_order_relaxed);
}

// One warp collective: every live lane posts (value, mask, call site), then reads lane `src(l)`.
// kind: 0 xor, 1 down, 2 up, 3 idx.
template <typename T>
T shfl(unsigned mask, T v, int kind, int arg, int width, const std::source_location& loc) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  WarpState& w = warp();
  const int l = lane();
  if (width < 1 || width > 32 || (width & (width - 1))) die("shuffle width %d is not a power of 2 <= 32", width);
  if (!((mask >> l) & 1u)) die("shuffle at line %u: calling lane %d not in mask %#x", loc.line(), l, mask);
  const uint64_t my = ++w.phase[l];
  const unsigned ph = unsigned(my & 1u);
  w.stamp[ph][l] = my;
  w.val[ph][l] = 0;
  std::memcpy(&w.val[ph][l], &v, sizeof(T));
  w.mask[ph][l] = mask;
  w.tag[ph][l] = loc.line() * 4u + unsigned(kind);
  w.bar.arrive_and_wait();
  uint32_t live = 0;  // the lanes at this collective
  for (int j = 0; j < 32; ++j)
    if (w.stamp[ph][j] == my) live |= 1u << j;
  if (mask & ~live)
    die("shuffle at line %u: mask %#x names lanes that exited, lie outside the block or are elsewhere (here: %#x)",
        loc.line(), mask, live);
  for (int j = 0; j < 32; ++j)
    if (((live >> j) & 1u) && (w.tag[ph][j] != w.tag[ph][l] || w.mask[ph][j] != mask))
      die("divergent warp: lane %d at shuffle line %u (mask %#x), lane %d at line %u (mask %#x)", l, loc.line(), mask,
          j, w.tag[ph][j] / 4, w.mask[ph][j]);
  const int base = l & ~(width - 1), sub = l - base;
  int src = l;
  switch (kind) {
    case 0: src = base + ((sub ^ arg) & (width - 1)); if ((sub ^ arg) >= width) src = l; break;
    case 1: src = sub + arg < width ? l + arg : l; break;
    case 2: src = sub - arg >= 0 ? l - arg : l; break;
    default: src = base + (arg & (width - 1)); break;
  }
  if (!((mask >> src) & 1u)) die("shuffle at line %u: lane %d reads lane %d outside mask %#x", loc.line(), l, src, mask);
  T r;
  std::memcpy(&r, &w.val[ph][src], sizeof(T));
  g_progress.fetch_add(1, std::memory_order_relaxed);
  return r;
}

inline void thread_exit() {
  WarpState& w = warp();
  w.live.fetch_and(~(1u << lane()));
  w.bar.arrive_and_drop();
  t_blk->bar.arrive_and_drop();
}

inline void start_watchdog() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([] {
      uint64_t last = g_progress.load();
      int still = 0;
      for (;;) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const uint64_t now = g_progress.load();
        if (g_launches_active.load() > 0 && now == last) {
          if (++still >= 60) {
            std::fprintf(stderr, "EMULATION ERROR: no barrier progress for 60 s: deadlock (a __syncthreads or a "
                                 "shuffle not reached by every thread)\n");
            std::fflush(stderr);
            std::abort();
          }
        } else {
          still = 0;
        }
        last = now;
      }
    }).detach();
  });
}

inline void record_launch_error(const char* fmt, ...) {
  std::lock_guard<std::mutex> lk(g_err_mu);
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_launch_error, sizeof g_launch_error, fmt, ap);
  va_end(ap);
}

// A pool of host threads kept across launches (creating 256-1024 threads per launch under ASan
// costs more than most kernels here): run_on_threads(n, f) runs f(0) here and f(1..n-1) on workers.
struct ThreadPool {
  struct Worker {
    std::binary_semaphore go{0};
    std::thread th;
  };
  std::vector<std::unique_ptr<Worker>> workers;
  std::function<void(unsigned)> job;
  std::atomic<unsigned> remaining{0};
  std::mutex mu;
  std::condition_variable done;
  void run(unsigned n, std::function<void(unsigned)> f) {
    while (workers.size() + 1 < n) {
      auto w = std::make_unique<Worker>();
      const unsigned id = unsigned(workers.size()) + 1;
      Worker* wp = w.get();
      w->th = std::thread([this, wp, id] {
        for (;;) {
          wp->go.acquire();
          job(id);
          if (remaining.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> lk(mu);
            done.notify_one();
          }
        }
      });
      w->th.detach();
      workers.push_back(std::move(w));
    }
    job = std::move(f);
    remaining.store(n - 1);
    for (unsigned i = 1; i < n; ++i) workers[i - 1]->go.release();
    job(0);
    std::unique_lock<std::mutex> lk(mu);
    done.wait(lk, [&] { return remaining.load() == 0; });
  }
};

inline void run_on_threads(unsigned n, std::function<void(unsigned)> f) {
  static ThreadPool* pool = new ThreadPool;  // never destroyed: workers are detached
  pool->run(n, std::move(f));
}

// Runs body() on every thread of every block (blocks one after the other, threads of a block in
// parallel). Synchronous: the launch has finished when this returns (the stream is ignored).
template <typename F>
void launch_impl(dim3 grid, dim3 block, size_t smem, F&& body) {
  g_launch_count.fetch_add(1);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0) {
    record_launch_error("invalid configuration argument: grid (%u, %u, %u), block (%u, %u, %u)", grid.x, grid.y,
                        grid.z, block.x, block.y, block.z);
    return;
  }
  if (threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x > 0x7fffffffu ||
      grid.y > 65535 || grid.z > 65535) {
    record_launch_error("invalid configuration argument: grid (%u, %u, %u), block (%u, %u, %u)", grid.x, grid.y,
                        grid.z, block.x, block.y, block.z);
    return;
  }
  if (smem > 227 * 1024) {
    record_launch_error("too much dynamic shared memory: %zu bytes", smem);
    return;
  }
  start_watchdog();
  g_launches_active.fetch_add(1);
  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  std::unique_ptr<BlockState> cur = std::make_unique<BlockState>(unsigned(threads), smem);
  uint64_t b = 0;
  // Between blocks: the last thread to finish a block sets up the next one.
  std::mutex next_mu;
  std::condition_variable next_cv;
  uint64_t finished = 0;
  auto next = [&] {
    std::unique_lock<std::mutex> lk(next_mu);
    const uint64_t mine = b;
    if (++finished == threads) {
      finished = 0;
      ++b;
      cur.reset();
      if (b < nblocks) cur = std::make_unique<BlockState>(unsigned(threads), smem);
      g_progress.fetch_add(1, std::memory_order_relaxed);
      next_cv.notify_all();
    } else {
      next_cv.wait(lk, [&] { return b != mine; });
    }
  };
  auto worker = [&](unsigned t) {
    t_bdim = block;
    t_gdim = grid;
    t_linear = t;
    t_tid = uint3{t % block.x, (t / block.x) % block.y, unsigned(t / (uint64_t(block.x) * block.y))};
    for (;;) {
      const uint64_t mb = b;
      if (mb >= nblocks) break;
      t_blk = cur.get();
      t_bid = uint3{unsigned(mb % grid.x), unsigned((mb / grid.x) % grid.y), unsigned(mb / (uint64_t(grid.x) * grid.y))};
      body();
      thread_exit();
      next();
    }
    t_blk = nullptr;
  };
  run_on_threads(unsigned(threads), worker);
  t_bid = uint3{0, 0, 0};
  t_tid = uint3{0, 0, 0};
  g_launches_active.fetch_sub(1);
}

// Grid-stride test: when g_grid_cap > 0, launches of kernels that loop over their work with
// gridDim (every kernel except those listed in fixed_grid()) get at most g_grid_cap blocks in x, as
// a GPU-sized cap (kMaxBlocks) would give them on inputs millions of elements long.
inline std::atomic<unsigned> g_grid_cap{0};
inline bool fixed_grid(const char* name) {
  static const char* const fixed[] = {"sgemm_kernel", "sgd_kernel", "adam_kernel", "sum_cols_kernel", "ce_reduce_kernel"};
  for (const char* f : fixed)
    if (std::strcmp(name, f) == 0) return true;
  return false;
}

struct Launch {
  dim3 grid, block;
  size_t smem;
  const char* name = "";
  Launch(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
  Launch& named(const char* n) {
    name = n;
    const unsigned cap = g_grid_cap.load();
    if (cap && grid.x > cap && !fixed_grid(n)) grid.x = cap;
    return *this;
  }
  template <typename K>
  auto run(K k) const {
    return [k, g = grid, b = block, s = smem](auto... args) { launch_impl(g, b, s, [&] { k(args...); }); };
  }
};

// The convolution's scratch budget under emulation (cuda/conv.cu, TSM_EMU_CONV_SCRATCH_BYTES).
inline std::atomic<int64_t> g_conv_scratch_bytes{int64_t(256) << 20};
inline int64_t conv_scratch_bytes() { return g_conv_scratch_bytes.load(); }

inline uint64_t launches() { return g_launch_count.load(); }

}  // namespace tsm_emu

// ---- the CUDA built-ins -----------------------------------------------------------------------
#define threadIdx (::tsm_emu::t_tid)
#define blockIdx (::tsm_emu::t_bid)
#define blockDim (::tsm_emu::t_bdim)
#define gridDim (::tsm_emu::t_gdim)
#define __syncthreads() ::tsm_emu::syncthreads()
#define __threadfence() std::atomic_thread_fence(std::memory_order_seq_cst)
#undef __shared__
#define __shared__ static
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

constexpr int warpSize = 32;
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::tsm_emu::syncwarp(mask); }

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                         std::source_location loc = std::source_location::current()) {
  return ::tsm_emu::shfl(mask, v, 0, lane_mask, width, loc);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                          std::source_location loc = std::source_location::current()) {
  return ::tsm_emu::shfl(mask, v, 1, int(delta), width, loc);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                        std::source_location loc = std::source_location::current()) {
  return ::tsm_emu::shfl(mask, v, 2, int(delta), width, loc);
}
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32,
                     std::source_location loc = std::source_location::current()) {
  return ::tsm_emu::shfl(mask, v, 3, src, width, loc);
}

template <typename T>
inline T __ldg(const T* p) { return *p; }

inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*p).fetch_add(v);
}
inline int atomicMax(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int o = a.load();
  while (o < v && !a.compare_exchange_weak(o, v)) {}
  return o;
}
inline int atomicMin(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int o = a.load();
  while (o > v && !a.compare_exchange_weak(o, v)) {}
  return o;
}
inline int atomicCAS(int* p, int cmp, int v) {
  std::atomic_ref<int> a(*p);
  a.compare_exchange_strong(cmp, v);
  return cmp;
}
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned v) {
  std::atomic_ref<unsigned> a(*p);
  a.compare_exchange_strong(cmp, v);
  return cmp;
}
inline int atomicExch(int* p, int v) { return std::atomic_ref<int>(*p).exchange(v); }
inline float atomicExch(float* p, float v) { return std::atomic_ref<float>(*p).exchange(v); }

// IEEE float operations with the rounding the _rn intrinsics name (no contraction: -ffp-contract=off).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __frcp_rn(float a) { return 1.f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __frsqrt_rn(float a) { return 1.f / std::sqrt(a); }
inline float rsqrtf(float a) { return 1.f / std::sqrt(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float a) { return std::exp(a); }
inline float __logf(float a) { return std::log(a); }
inline float __log2f(float a) { return std::log2(a); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __sinf(float a) { return std::sin(a); }
inline float __cosf(float a) { return std::cos(a); }
inline float __tanhf(float a) { return std::tanh(a); }
inline float __saturatef(float a) { return a != a ? 0.f : a < 0.f ? 0.f : a > 1.f ? 1.f : a; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float2int_rn(float f) { return int(std::nearbyint(f)); }
inline int __float2int_rz(float f) { return int(f); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
using std::isfinite;
using std::isinf;
using std::isnan;
using std::max;
using std::min;
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif

// The device helpers of cuda/*.cuh are guarded by __CUDACC__: from here on, the kernels' own code
// sees a CUDA compilation (the CUDA headers above were read as host headers).
#ifndef __CUDACC__
#define __CUDACC__ 1
#endif
