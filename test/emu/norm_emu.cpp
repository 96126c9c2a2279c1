// Host emulation of the norm kernels (cuda/norm.cu, embedding.cu, dropout.cu, adaptive_pool.cu):
// their C ABI entry points run here on host memory, launches included, and are compared with the
// CPU kernels of the same contract (cpp/kernels/*.cpp, compiled into this program).
//
// The .cu files are compiled as plain C++ with TSM_NORM_EMULATE (cuda/norm_common.cuh): a launch
// runs the grid's blocks one after the other, every CUDA thread of a block as its own host context
// (a ucontext fiber, scheduled cooperatively on one OS thread: a thread runs until it waits at a
// barrier); __syncthreads is a block barrier; __shfl_xor_sync exchanges through a 32-lane warp
// barrier; a thread that returns leaves the barriers; a barrier no live thread can pass is reported
// as a deadlock; shared memory is a per-block buffer filled with garbage; __f*_rn are the IEEE host operations (built with
// -ffp-contract=off). Scratch comes from malloc at its exact size. Build with AddressSanitizer so
// that any out-of-bounds access stops the run.
//
// Checked: dropout's Philox stream and mask/output bit for bit against tsm_dropout_forward and
// tsm_rng_uniform (many seeds, offsets and sizes, not multiples of 4); embedding forward (NaN rows
// for out-of-range indices) and backward bit for bit against tsm_embedding_backward (1 to 3 radix
// passes, repeats, padding_idx, out-of-range positions); layerNorm forward/backward (warp and block
// rows, the chunked column reduction) and batchNorm (training, eval, running stats, the counter)
// against the CPU to float32 rounding, and bit-for-bit determinism between two runs; adaptive average
// pooling forward/backward bit for bit against the CPU's loops.
// NOT checked: anything about real GPU timing, memory ordering or speed.
//
//   g++ -std=c++20 -O1 -g -ffp-contract=off -fsanitize=address,undefined -Wno-attributes -I<cuda>/include
//       -Icpp/include -Icuda test/emu/norm_emu.cpp cpp/kernels/{layer_norm,batch_norm,embedding,dropout,rng}.cpp
//       cpp/runtime/{error,threadpool,cpu,alloc}.cpp -o norm_emu -lpthread && ./norm_emu
// Prints one line per group of cases and "OK" last; exits 1 on any mismatch.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <ucontext.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif
#include <vector>

#include "tensorsmith.h"

namespace tsm_emu {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "EMULATION ERROR: %s\n", what);
  std::abort();
}

// Cooperative scheduling: every CUDA thread of a block is a fiber (ucontext) on this one OS thread;
// a fiber runs until it waits at a barrier or returns, then the scheduler runs the next one. No
// data races by construction, and a fast switch (the blocks of 256 threads of these kernels would
// crawl as 256 OS threads on a small machine). AddressSanitizer is told about every stack switch.
struct Barrier {
  int expected = 0, count = 0;
  unsigned gen = 0;
};

struct Fiber {
  ucontext_t ctx;
  std::unique_ptr<char[]> stack;
  bool done = false;
  void* fake_stack = nullptr;
};

constexpr size_t kStack = 256 * 1024;

struct BlockCtx {
  std::vector<unsigned char> smem;
  Barrier bar;
  std::vector<Barrier> warp_bar;
  std::vector<float> shfl;  // one slot per thread
};

BlockCtx* g_blk = nullptr;
unsigned g_tid = 0, g_bid = 0, g_bdim = 0, g_gdim = 0;
ucontext_t g_main;
std::vector<Fiber> g_fibers;
const std::function<void()>* g_job = nullptr;
const void* g_main_bottom = nullptr;
size_t g_main_size = 0;
uint64_t g_progress = 0;
struct Idx {
  unsigned x;
};

inline void switch_to_main() {
  Fiber& f = g_fibers[g_tid];
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_start_switch_fiber(&f.fake_stack, g_main_bottom, g_main_size);
#endif
  swapcontext(&f.ctx, &g_main);
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_finish_switch_fiber(f.fake_stack, &g_main_bottom, &g_main_size);
#endif
}

inline void arrive_wait(Barrier& b) {
  const unsigned g = b.gen;
  if (++b.count == b.expected) {
    b.count = 0;
    ++b.gen;
    ++g_progress;
    return;
  }
  while (b.gen == g) switch_to_main();
}

inline void drop(Barrier& b) {
  --b.expected;
  if (b.count > 0 && b.count == b.expected) {
    b.count = 0;
    ++b.gen;
    ++g_progress;
  }
}

void fiber_entry() {
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_finish_switch_fiber(nullptr, &g_main_bottom, &g_main_size);
#endif
  (*g_job)();
  // A returned thread no longer holds up barriers (as an exited CUDA thread).
  drop(g_blk->bar);
  drop(g_blk->warp_bar[g_tid / 32]);
  g_fibers[g_tid].done = true;
  ++g_progress;
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_start_switch_fiber(nullptr, g_main_bottom, g_main_size);
#endif
  // returns to g_main through uc_link
}

inline unsigned char* dynamic_smem() { return g_blk->smem.data(); }
inline void syncthreads() { arrive_wait(g_blk->bar); }

inline float shfl_xor(float v, int m) {
  BlockCtx& b = *g_blk;
  const unsigned w = g_tid / 32, l = g_tid % 32;
  b.shfl[g_tid] = v;
  arrive_wait(b.warp_bar[w]);
  const float r = b.shfl[w * 32 + (l ^ unsigned(m))];
  arrive_wait(b.warp_bar[w]);
  return r;
}

int64_t g_launches = 0;

void run_block(BlockCtx& ctx, unsigned threads) {
  g_blk = &ctx;
  if (g_fibers.size() < threads) g_fibers.resize(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = g_fibers[t];
    if (!f.stack) f.stack.reset(new char[kStack]);
    f.done = false;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.get();
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = &g_main;
    makecontext(&f.ctx, fiber_entry, 0);
  }
  unsigned alive = threads;
  while (alive > 0) {
    const uint64_t before = g_progress;
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& f = g_fibers[t];
      if (f.done) continue;
      g_tid = t;
      void* fake = nullptr;
#ifdef __SANITIZE_ADDRESS__
      __sanitizer_start_switch_fiber(&fake, f.stack.get(), kStack);
#endif
      swapcontext(&g_main, &f.ctx);
#ifdef __SANITIZE_ADDRESS__
      __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
      if (f.done) --alive;
    }
    if (alive > 0 && g_progress == before) die("deadlock: every live thread waits at a barrier no one else reaches");
  }
}

template <typename F>
void launch(unsigned grid, unsigned threads, size_t smem, F kernel) {
  if (threads == 0 || threads % 32 || threads > 1024 || grid == 0) die("bad launch configuration");
  const std::function<void()> job = kernel;
  g_job = &job;
  g_bdim = threads;
  g_gdim = grid;
  for (unsigned b = 0; b < grid; ++b) {
    BlockCtx ctx;
    ctx.smem.assign(smem, 0xA5);  // garbage: reads of unwritten shared memory show up
    ctx.bar.expected = int(threads);
    ctx.warp_bar.assign(threads / 32, Barrier{32, 0, 0});
    ctx.shfl.assign(threads, NAN);
    g_bid = b;
    run_block(ctx, threads);
  }
  g_blk = nullptr;
  ++g_launches;
}

}  // namespace tsm_emu

#define threadIdx (::tsm_emu::Idx{::tsm_emu::g_tid})
#define blockIdx (::tsm_emu::Idx{::tsm_emu::g_bid})
#define blockDim (::tsm_emu::Idx{::tsm_emu::g_bdim})
#define gridDim (::tsm_emu::Idx{::tsm_emu::g_gdim})
#define __syncthreads() ::tsm_emu::syncthreads()
#define __shfl_xor_sync(mask, v, m) ::tsm_emu::shfl_xor((v), (m))
#define __fmul_rn(a, b) (float(a) * float(b))
#define __fadd_rn(a, b) (float(a) + float(b))
#define __fsub_rn(a, b) (float(a) - float(b))
#define __fdiv_rn(a, b) (float(a) / float(b))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

// The runtime services the launchers use (cuda/runtime/cuda_common.cuh), on the host.
namespace tsm {
namespace cuda {
std::map<void*, size_t> g_live;
cudaStream_t stream(const char*) { return reinterpret_cast<cudaStream_t>(uintptr_t(16)); }
tsm_status check_launch(const char*) { return TSM_OK; }
tsm_status device_alloc(void** p, size_t bytes, const char*) {
  *p = std::malloc(bytes ? bytes : 1);
  std::memset(*p, 0xA5, bytes);  // garbage
  g_live[*p] = bytes;
  return TSM_OK;
}
tsm_status device_free(void* p, const char*) {
  if (!g_live.erase(p)) {
    std::fprintf(stderr, "EMULATION ERROR: device_free of %p, not allocated\n", p);
    std::abort();
  }
  std::free(p);
  return TSM_OK;
}
}  // namespace cuda
}  // namespace tsm

#define TSM_NORM_EMULATE 1
#include "adaptive_pool.cu"
#include "dropout.cu"
#include "embedding.cu"
#include "norm.cu"

// ---------------------------------------------------------------------------------------------
namespace {

int g_fail = 0;
std::mt19937_64 rng(20261122);

double urand(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
int64_t irand(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

void fail(const std::string& what) {
  if (g_fail < 40) std::printf("FAIL %s\n", what.c_str());
  ++g_fail;
}

void expect_ok(tsm_status s, const std::string& what) {
  if (s != TSM_OK) fail(what + ": status " + std::to_string(int(s)) + " " + tsm_last_error());
}

bool same_bits(const float* a, const float* b, size_t n, const std::string& what) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], 4) != 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, ": element %zu is %.9g, CPU %.9g", i, double(a[i]), double(b[i]));
      fail(what + buf);
      return false;
    }
  return true;
}

bool close(const float* a, const float* b, size_t n, double rtol, double atol, const std::string& what) {
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (!(d <= atol + rtol * std::fabs(double(b[i])))) {
      char buf[160];
      std::snprintf(buf, sizeof buf, ": element %zu is %.9g, CPU %.9g", i, double(a[i]), double(b[i]));
      fail(what + buf);
      return false;
    }
  }
  return true;
}

std::vector<float> rand_vec(size_t n, double lo, double hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = float(urand(lo, hi));
  return v;
}

// ---- dropout / Philox ----
void test_dropout() {
  const uint64_t seeds[] = {0, 1, 42, 0xffffffffull, 0x100000000ull, 0x123456789abcdefull, (1ull << 53) - 1};
  const uint64_t offsets[] = {0, 1, 3, 5, 1000003, 0xffffffffull, 0x100000001ull, (1ull << 52) + 7};
  const int64_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 9, 13, 64, 255, 1023, 1025, 4099};
  const double ps[] = {0.0, 0.1, 1.0 / 3.0, 0.5, 0.9, 0.999, 1.0};
  int cases = 0;
  for (uint64_t seed : seeds)
    for (uint64_t offset : offsets)
      for (int64_t n : sizes) {
        if (n > 1100 && irand(0, 3) != 0) continue;  // the largest sizes on a sample of (seed, offset)
        const double p = ps[irand(0, 6)];
        std::vector<float> x = rand_vec(size_t(n), -3, 3);
        if (n > 5) {
          x[1] = NAN;
          x[2] = INFINITY;
          x[3] = -0.0f;
        }
        std::vector<float> y(n), m(n), yc(n), mc(n);
        const std::string what = "dropout seed " + std::to_string(seed) + " offset " + std::to_string(offset) + " n " +
                                 std::to_string(n) + " p " + std::to_string(p);
        expect_ok(tsm_cuda_dropout_forward(y.data(), m.data(), x.data(), p, seed, offset, n), what);
        expect_ok(tsm_dropout_forward(yc.data(), mc.data(), x.data(), p, seed, offset, n), what + " (CPU)");
        same_bits(m.data(), mc.data(), size_t(n), what + ": mask");
        same_bits(y.data(), yc.data(), size_t(n), what + ": y");
        // The Philox uniforms themselves against tsm_rng_uniform on [0, 1).
        std::vector<float> u(n), uc(n);
        for (int64_t i = 0; i < n; ++i)
          u[i] = tsm::cuda::norm::philox_unit(tsm::cuda::norm::philox4x32_10(offset + uint64_t(i / 4), seed).v[i % 4]);
        expect_ok(tsm_rng_uniform(uc.data(), seed, offset, 0.f, 1.f, n), what + " (rng_uniform)");
        same_bits(u.data(), uc.data(), size_t(n), what + ": uniforms");
        ++cases;
      }
  // A long stream from one seed: every lane, many counter blocks (a multi-block grid).
  {
    const int64_t n = 70001;
    std::vector<float> x = rand_vec(n, -1, 1), y(n), m(n), yc(n), mc(n);
    expect_ok(tsm_cuda_dropout_forward(y.data(), m.data(), x.data(), 0.3, 77, 11, n), "dropout long");
    expect_ok(tsm_dropout_forward(yc.data(), mc.data(), x.data(), 0.3, 77, 11, n), "dropout long (CPU)");
    same_bits(m.data(), mc.data(), size_t(n), "dropout long: mask");
    same_bits(y.data(), yc.data(), size_t(n), "dropout long: y");
    int64_t kept = 0;
    for (float v : m) kept += v != 0.f;
    if (std::fabs(double(kept) / double(n) - 0.7) > 0.01) fail("dropout long: keep fraction " + std::to_string(double(kept) / n));
    ++cases;
  }
  std::printf("dropout: %d cases (seeds, offsets, sizes not multiples of 4, p in [0, 1]) bit-identical to the CPU\n", cases);
}

// ---- embedding ----
void test_embedding() {
  struct C {
    int64_t num, dim, n, pad;
    int bad;  // out-of-range indices to plant
  };
  const C cases[] = {{1, 4, 6, -1, 0},       {2, 1, 0, -1, 0},     {7, 3, 1, 2, 0},       {255, 5, 127, -1, 0},
                     {256, 3, 128, 0, 0},    {257, 2, 129, 256, 2}, {1000, 33, 1000, 17, 3}, {65535, 2, 3000, -1, 0},
                     {65536, 3, 2500, 65535, 1}, {70000, 3, 5000, 3, 4}, {300, 1, 20000, -1, 0}};
  for (const C& c : cases) {
    const std::string what = "embedding num " + std::to_string(c.num) + " dim " + std::to_string(c.dim) + " n " +
                             std::to_string(c.n) + " pad " + std::to_string(c.pad);
    std::vector<int32_t> idx(size_t(c.n));
    for (auto& v : idx) v = int32_t(irand(0, 1) ? irand(0, std::min<int64_t>(c.num - 1, 4)) : irand(0, c.num - 1));
    if (c.pad >= 0 && c.n > 0) idx[0] = int32_t(c.pad);
    std::vector<int64_t> badpos;
    for (int k = 0; k < c.bad && c.n > 0; ++k) {
      const int64_t pos = irand(0, c.n - 1);
      idx[size_t(pos)] = k % 2 ? int32_t(-1 - k) : int32_t(c.num + k);
      badpos.push_back(pos);
    }
    auto good = [&](int64_t i) { return idx[size_t(i)] >= 0 && idx[size_t(i)] < c.num; };
    std::vector<float> w = rand_vec(size_t(c.num * c.dim), -1, 1), dy = rand_vec(size_t(c.n * c.dim), -1, 1);
    // Forward: the CPU's rows; NaN rows for the out-of-range indices.
    std::vector<float> y(size_t(c.n * c.dim)), yc(size_t(c.n * c.dim));
    expect_ok(tsm_cuda_embedding_forward(y.data(), idx.data(), w.data(), c.n, c.num, c.dim), what + " forward");
    std::vector<int32_t> safe(idx);
    for (int64_t i = 0; i < c.n; ++i)
      if (!good(i)) safe[size_t(i)] = 0;
    expect_ok(tsm_embedding_forward(yc.data(), safe.data(), w.data(), c.n, c.num, c.dim), what + " forward (CPU)");
    for (int64_t i = 0; i < c.n; ++i)
      if (!good(i))
        for (int64_t k = 0; k < c.dim; ++k) yc[size_t(i * c.dim + k)] = NAN;
    same_bits(y.data(), yc.data(), y.size(), what + ": y");
    // Backward: bit for bit the CPU's sums over the in-range positions.
    std::vector<float> dw(size_t(c.num * c.dim), NAN), dwc(size_t(c.num * c.dim), NAN);
    expect_ok(tsm_cuda_embedding_backward(dw.data(), dy.data(), idx.data(), c.n, c.num, c.dim, c.pad), what + " backward");
    std::vector<int32_t> ki;
    std::vector<float> kdy;
    for (int64_t i = 0; i < c.n; ++i)
      if (good(i)) {
        ki.push_back(idx[size_t(i)]);
        kdy.insert(kdy.end(), dy.begin() + i * c.dim, dy.begin() + (i + 1) * c.dim);
      }
    expect_ok(tsm_embedding_backward(dwc.data(), kdy.data(), ki.data(), int64_t(ki.size()), c.num, c.dim, c.pad),
              what + " backward (CPU)");
    same_bits(dw.data(), dwc.data(), dw.size(), what + ": dweight");
  }
  if (!tsm::cuda::g_live.empty()) fail("embedding: scratch not freed");
  std::printf("embedding: %zu cases (1-3 radix passes, repeats, padding_idx, out-of-range indices) bit-identical to the CPU\n",
              sizeof cases / sizeof cases[0]);
}

// ---- layerNorm ----
void test_layer_norm() {
  const int64_t shapes[][2] = {{1, 1}, {3, 5}, {7, 32}, {5, 33}, {9, 1024}, {3, 1025}, {2, 3000}, {300, 40}, {1000, 8}, {0, 4}};
  int cases = 0;
  for (const auto& sh : shapes)
    for (int affine = 0; affine < 3; ++affine) {
      const int64_t rows = sh[0], cols = sh[1], n = rows * cols;
      const std::string what = "layerNorm " + std::to_string(rows) + "x" + std::to_string(cols) + " affine " +
                               std::to_string(affine);
      std::vector<float> x = rand_vec(size_t(n), -2, 3), dy = rand_vec(size_t(n), -1, 1);
      for (int64_t r = 0; r < rows; ++r) x[size_t(r * cols)] += float(r % 5);  // rows with different means
      std::vector<float> w = rand_vec(size_t(cols), 0.5, 1.5), b = rand_vec(size_t(cols), -1, 1);
      const float* wp = affine >= 1 ? w.data() : nullptr;
      const float* bp = affine >= 2 ? b.data() : nullptr;
      std::vector<float> y(n, NAN), yc(n, NAN), m(rows, NAN), mc(rows, NAN), rs(rows, NAN), rsc(rows, NAN);
      expect_ok(tsm_cuda_layer_norm_forward(y.data(), m.data(), rs.data(), x.data(), wp, bp, rows, cols, 1e-5f), what);
      expect_ok(tsm_layer_norm_forward(yc.data(), mc.data(), rsc.data(), x.data(), wp, bp, rows, cols, 1e-5f), what);
      close(m.data(), mc.data(), size_t(rows), 1e-5, 1e-6, what + ": mean");
      close(rs.data(), rsc.data(), size_t(rows), 1e-4, 1e-6, what + ": rstd");
      close(y.data(), yc.data(), size_t(n), 1e-4, 2e-5, what + ": y");
      std::vector<float> dx(n, NAN), dxc(n, NAN), dw(cols, NAN), dwc(cols, NAN), db(cols, NAN), dbc(cols, NAN);
      // The backward from the CPU's statistics (the GPU's differ by rounding).
      expect_ok(tsm_cuda_layer_norm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), mc.data(), rsc.data(), wp,
                                             rows, cols), what + " backward");
      expect_ok(tsm_layer_norm_backward(dxc.data(), dwc.data(), dbc.data(), dy.data(), x.data(), mc.data(), rsc.data(), wp,
                                        rows, cols), what + " backward (CPU)");
      close(dx.data(), dxc.data(), size_t(n), 1e-3, 2e-4, what + ": dx");
      const double tol = 2e-5 * std::sqrt(double(rows) + 1);
      close(dw.data(), dwc.data(), size_t(cols), 1e-4, tol, what + ": dw");
      close(db.data(), dbc.data(), size_t(cols), 1e-4, tol, what + ": db");
      // Deterministic: a second run gives the same bits; dw alone equals dw with the rest.
      std::vector<float> dx2(n, NAN), dw2(cols, NAN), db2(cols, NAN);
      expect_ok(tsm_cuda_layer_norm_backward(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(), mc.data(), rsc.data(),
                                             wp, rows, cols), what + " backward again");
      same_bits(dx2.data(), dx.data(), size_t(n), what + ": dx rerun");
      same_bits(dw2.data(), dw.data(), size_t(cols), what + ": dw rerun");
      same_bits(db2.data(), db.data(), size_t(cols), what + ": db rerun");
      std::vector<float> dw3(cols, NAN);
      expect_ok(tsm_cuda_layer_norm_backward(nullptr, dw3.data(), nullptr, dy.data(), x.data(), mc.data(), rsc.data(), wp,
                                             rows, cols), what + " backward dw only");
      same_bits(dw3.data(), dw.data(), size_t(cols), what + ": dw alone");
      ++cases;
    }
  if (!tsm::cuda::g_live.empty()) fail("layerNorm: scratch not freed");
  std::printf("layerNorm: %d cases (warp rows, block rows, chunked dw/db) within rounding of the CPU, deterministic\n", cases);
}

// ---- batchNorm ----
void test_batch_norm() {
  const int64_t shapes[][3] = {{4, 3, 35}, {2, 5, 1}, {8, 3, 1}, {3, 2, 297}, {1, 2, 600}};
  int cases = 0;
  for (const auto& sh : shapes)
    for (int training = 0; training < 2; ++training)
      for (int affine = 0; affine < 2; ++affine) {
        const int64_t n = sh[0], c = sh[1], hw = sh[2], total = n * c * hw;
        const std::string what = "batchNorm " + std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(hw) +
                                 " training " + std::to_string(training) + " affine " + std::to_string(affine);
        std::vector<float> x = rand_vec(size_t(total), -2, 3), dy = rand_vec(size_t(total), -1, 1);
        std::vector<float> w = rand_vec(size_t(c), 0.5, 1.5), b = rand_vec(size_t(c), -1, 1);
        std::vector<float> rm = rand_vec(size_t(c), -0.5, 0.5), rv = rand_vec(size_t(c), 0.5, 2), rmc(rm), rvc(rv);
        const float* wp = affine ? w.data() : nullptr;
        const float* bp = affine ? b.data() : nullptr;
        std::vector<float> y(total, NAN), yc(total, NAN), sm(c, NAN), smc(c, NAN), si(c, NAN), sic(c, NAN);
        int32_t counter = 5;
        expect_ok(tsm_cuda_batch_norm_forward(y.data(), sm.data(), si.data(), rm.data(), rv.data(), x.data(), wp, bp, n, c,
                                              hw, training, 0.2f, 1e-5f, &counter), what);
        expect_ok(tsm_batch_norm_forward(yc.data(), smc.data(), sic.data(), rmc.data(), rvc.data(), x.data(), wp, bp, n, c,
                                         hw, training, 0.2f, 1e-5f), what + " (CPU)");
        if (counter != 5 + training) fail(what + ": num_batches_tracked " + std::to_string(counter));
        close(sm.data(), smc.data(), size_t(c), 1e-5, 1e-6, what + ": save_mean");
        close(si.data(), sic.data(), size_t(c), 1e-4, 1e-6, what + ": save_invstd");
        close(rm.data(), rmc.data(), size_t(c), 1e-5, 1e-6, what + ": running_mean");
        close(rv.data(), rvc.data(), size_t(c), 1e-4, 1e-6, what + ": running_var");
        close(y.data(), yc.data(), size_t(total), 1e-4, 2e-5, what + ": y");
        std::vector<float> dx(total, NAN), dxc(total, NAN), dw(c, NAN), dwc(c, NAN), db(c, NAN), dbc(c, NAN);
        expect_ok(tsm_cuda_batch_norm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), smc.data(), sic.data(),
                                               wp, n, c, hw, training), what + " backward");
        expect_ok(tsm_batch_norm_backward(dxc.data(), dwc.data(), dbc.data(), dy.data(), x.data(), smc.data(), sic.data(), wp,
                                          n, c, hw, training), what + " backward (CPU)");
        const double tol = 2e-5 * std::sqrt(double(n * hw) + 1);
        close(dx.data(), dxc.data(), size_t(total), 1e-3, 2e-4, what + ": dx");
        close(dw.data(), dwc.data(), size_t(c), 1e-4, tol, what + ": dw");
        close(db.data(), dbc.data(), size_t(c), 1e-4, tol, what + ": db");
        ++cases;
      }
  std::printf("batchNorm: %d cases (training with running stats and counter, eval) within rounding of the CPU\n", cases);
}

// ---- adaptive average pooling ----
void test_adaptive_pool() {
  const int64_t shapes[][6] = {{2, 3, 7, 9, 3, 4}, {1, 2, 5, 5, 1, 1}, {2, 1, 4, 6, 4, 6}, {1, 1, 3, 2, 5, 7},
                               {3, 2, 10, 13, 4, 5}, {1, 1, 1, 1, 3, 2}, {1, 2, 17, 5, 6, 2}};
  int cases = 0;
  for (const auto& s : shapes) {
    const tsm_pool2d_shape sh{s[0], s[1], s[2], s[3], s[4], s[5]};
    const int64_t H = sh.h, W = sh.w, OH = sh.oh, OW = sh.ow, planes = sh.n * sh.c;
    const std::string what = "adaptiveAvgPool2d " + std::to_string(H) + "x" + std::to_string(W) + " -> " +
                             std::to_string(OH) + "x" + std::to_string(OW);
    std::vector<float> x = rand_vec(size_t(planes * H * W), -1, 1), dy = rand_vec(size_t(planes * OH * OW), -1, 1);
    std::vector<float> y(size_t(planes * OH * OW), NAN), yr(y.size()), dx(x.size(), NAN), dxr(x.size(), 0.f);
    expect_ok(tsm_cuda_adaptive_avg_pool2d_forward(y.data(), x.data(), &sh), what);
    expect_ok(tsm_cuda_adaptive_avg_pool2d_backward(dx.data(), dy.data(), &sh), what + " backward");
    // The CPU kernel's loops (cpp/kernels/pool2d.cpp): sum in (ih, iw) order, one division; the
    // backward scatters dy / size in (oh, ow) order.
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
          float sum = 0.f;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) sum += x[size_t(p * H * W + ih * W + iw)];
          yr[size_t(p * OH * OW + oh * OW + ow)] = sum / float((h1 - h0) * (w1 - w0));
          const float v = dy[size_t(p * OH * OW + oh * OW + ow)] / float((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dxr[size_t(p * H * W + ih * W + iw)] += v;
        }
      }
    same_bits(y.data(), yr.data(), y.size(), what + ": y");
    same_bits(dx.data(), dxr.data(), dx.size(), what + ": dx");
    ++cases;
  }
  std::printf("adaptiveAvgPool2d: %d cases bit-identical to the CPU's loops\n", cases);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string only = argc > 1 ? argv[1] : "";
  if (only.empty() || only == "dropout") test_dropout();
  if (only.empty() || only == "embedding") test_embedding();
  if (only.empty() || only == "layernorm") test_layer_norm();
  if (only.empty() || only == "batchnorm") test_batch_norm();
  if (only.empty() || only == "pool") test_adaptive_pool();
  std::printf("%lld emulated launches\n", (long long)tsm_emu::g_launches);
  if (g_fail) {
    std::printf("FAIL: %d mismatches\n", g_fail);
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
