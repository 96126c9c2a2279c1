// Host emulation of the fused attention kernels (cuda/attention_fwd.cu, cuda/attention_bwd.cu), to
// check their index arithmetic, fragment layouts, masks and online softmax without a GPU.
//
// The .cu files are compiled here as plain C++ with TSM_ATTN_EMULATE: every thread of a block runs
// as a host thread; __syncthreads is a block barrier; the warp-level instructions are emulated from
// their PTX ISA definitions, with all 32 lanes meeting at a warp barrier:
//   ldmatrix.x4 (.trans): lanes 8j..8j+7 give the row addresses of 8x8 matrix j; lane l receives
//     M_j[l/4][2(l%4)], M_j[l/4][2(l%4)+1] (with .trans M_j[2(l%4)][l/4], M_j[2(l%4)+1][l/4]);
//   mma.m16n8k16: the fragments of all lanes are decoded into A (16x16), B (16x8) by the ISA's
//     "Matrix Fragments for mma.m16n8k16 with floating point type" tables, D = A B + C;
//   shfl.xor, cp.async (synchronous copy with zero fill), atomicAdd.
// It also checks alignment and bounds of every shared-memory access of ldmatrix and cp.async.
// Blocks run one after the other. Build with AddressSanitizer so that any out-of-bounds global or
// shared access (the buffers are allocated at their exact sizes) stops the run.
// NOT checked here: the asynchronous timing of cp.async (the copies complete at once), real
// hardware rounding inside mma (products are summed in float here), speed.
//
//   g++ -std=c++20 -O1 -g -fsanitize=address,undefined -Wno-attributes -I<cuda>/include -Icpp/include
//       -Icuda test/emu/attention_emu.cpp -o attention_emu -lpthread && ./attention_emu [quick]
// Prints one line per case and "OK" last; exits 1 on any mismatch.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using std::max;
using std::min;

namespace tsm_emu {

struct Warp {
  std::barrier<> bar{32};
  const void* addr[32];
  uint32_t a[32][4], b[32][2];
  float f[32];
};

struct BlockCtx {
  unsigned char* smem = nullptr;
  size_t smem_bytes = 0;
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<Warp>> warps;
};

thread_local BlockCtx* g_blk = nullptr;
thread_local unsigned g_tid = 0, g_bid = 0, g_bdim = 0, g_gdim = 0;
struct Idx {
  unsigned x;
};

[[noreturn]] void die(const char* what, const void* p) {
  std::fprintf(stderr, "EMULATION ERROR: %s (%p, block %u, thread %u)\n", what, p, g_bid, g_tid);
  std::abort();
}

inline unsigned char* dynamic_smem() { return g_blk->smem; }
inline void syncthreads() { g_blk->bar->arrive_and_wait(); }
inline Warp& warp() { return *g_blk->warps[g_tid / 32]; }
inline int lane() { return int(g_tid % 32); }

inline void check_smem(const void* p, size_t bytes, size_t align, const char* what) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  if (c < g_blk->smem || c + bytes > g_blk->smem + g_blk->smem_bytes) die(what, p);
  if ((reinterpret_cast<uintptr_t>(c) - reinterpret_cast<uintptr_t>(g_blk->smem)) % align) die(what, p);
}

inline float shfl_xor(float v, int m) {
  Warp& w = warp();
  const int l = lane();
  w.f[l] = v;
  w.bar.arrive_and_wait();
  const float r = w.f[l ^ m];
  w.bar.arrive_and_wait();
  return r;
}

inline void cp_async16(void* dst, const void* src, int src_bytes) {
  check_smem(dst, 16, 16, "cp.async destination outside shared memory or not 16-byte aligned");
  if (src_bytes < 0 || src_bytes > 16) die("cp.async src-size out of range", src);
  if (src_bytes > 0 && (reinterpret_cast<uintptr_t>(src) & 15)) die("cp.async source not 16-byte aligned", src);
  if (src_bytes > 0) std::memcpy(dst, src, size_t(src_bytes));
  std::memset(static_cast<char*>(dst) + src_bytes, 0, size_t(16 - src_bytes));
}

inline void ldmatrix_x4(uint32_t (&r)[4], const void* p, bool trans) {
  check_smem(p, 16, 16, "ldmatrix row address outside shared memory or not 16-byte aligned");
  Warp& w = warp();
  const int l = lane(), g = l / 4, t = l % 4;
  w.addr[l] = p;
  w.bar.arrive_and_wait();
  for (int j = 0; j < 4; ++j) {
    const uint16_t* rows[8];
    for (int q = 0; q < 8; ++q) rows[q] = static_cast<const uint16_t*>(w.addr[8 * j + q]);
    uint16_t lo, hi;
    if (!trans) {
      lo = rows[g][2 * t];
      hi = rows[g][2 * t + 1];
    } else {
      lo = rows[2 * t][g];
      hi = rows[2 * t + 1][g];
    }
    r[j] = uint32_t(lo) | (uint32_t(hi) << 16);
  }
  w.bar.arrive_and_wait();
}

template <typename T>
float half_to_f(uint32_t reg, int half) {
  const uint16_t bits = uint16_t(half ? reg >> 16 : reg & 0xffff);
  T v;
  std::memcpy(&v, &bits, 2);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return __half2float(v);
}

template <typename T>
void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  Warp& w = warp();
  const int l = lane(), g = l / 4, t = l % 4;
  for (int i = 0; i < 4; ++i) w.a[l][i] = a[i];
  w.b[l][0] = b0;
  w.b[l][1] = b1;
  w.bar.arrive_and_wait();
  // A[row][col]: lane (row%8)*4 + (col%8)/2, register (row/8) + 2*(col/8), half col%2.
  // B[k][n]:     lane n*4 + (k%8)/2,          register k/8,                 half k%2.
  auto A = [&](int row, int col) { return half_to_f<T>(w.a[(row % 8) * 4 + (col % 8) / 2][row / 8 + 2 * (col / 8)], col % 2); };
  auto B = [&](int k, int n) { return half_to_f<T>(w.b[n * 4 + (k % 8) / 2][k / 8], k % 2); };
  // C/D: c0, c1 = (g, 2t), (g, 2t+1); c2, c3 = (g+8, 2t), (g+8, 2t+1).
  for (int e = 0; e < 4; ++e) {
    const int row = g + 8 * (e / 2), col = 2 * t + (e % 2);
    float s = 0.f;
    for (int k = 0; k < 16; ++k) s += A(row, k) * B(k, col);
    c[e] += s;
  }
  w.bar.arrive_and_wait();
}

inline float atomic_add(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }

// Runs kernel() for every thread of `grid` blocks of `threads` threads, one block at a time.
template <typename F>
void launch(unsigned grid, unsigned threads, size_t smem, F kernel) {
  for (unsigned b = 0; b < grid; ++b) {
    BlockCtx ctx;
    std::unique_ptr<unsigned char[]> mem(smem ? new unsigned char[smem] : nullptr);
    if (smem) std::memset(mem.get(), 0xA5, smem);  // garbage: reads of unwritten shared memory show up
    ctx.smem = mem.get();
    ctx.smem_bytes = smem;
    ctx.bar = std::make_unique<std::barrier<>>(ptrdiff_t(threads));
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) ctx.warps.push_back(std::make_unique<Warp>());
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        g_blk = &ctx;
        g_tid = t;
        g_bid = b;
        g_bdim = threads;
        g_gdim = grid;
        kernel();
      });
    for (auto& th : ts) th.join();
  }
}

}  // namespace tsm_emu

#define threadIdx (::tsm_emu::Idx{::tsm_emu::g_tid})
#define blockIdx (::tsm_emu::Idx{::tsm_emu::g_bid})
#define blockDim (::tsm_emu::Idx{::tsm_emu::g_bdim})
#define gridDim (::tsm_emu::Idx{::tsm_emu::g_gdim})
#define __syncthreads() ::tsm_emu::syncthreads()
#define __shfl_xor_sync(mask, v, m) ::tsm_emu::shfl_xor((v), (m))
#define __ldg(p) (*(p))
#define atomicAdd(p, v) ::tsm_emu::atomic_add((p), (v))
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

#define TSM_ATTN_EMULATE 1
#include "attention_fwd.cu"
#include "attention_bwd.cu"

// ---------------------------------------------------------------------------------------------
using namespace tsm::cuda;
using namespace tsm::cuda::attn;

namespace {

struct Case {
  int dtype;  // 0 float32 (general kernels only), 1 bf16, 2 f16
  int B, H, Lq, Lk, D;
  bool causal;
  std::vector<int> kl;  // empty: none
  bool misalign = false;  // offset q by one element: the element-wise (non cp.async) tile loads
  bool general = false;   // the general (CUDA-core) kernels instead of the mma ones
};

std::mt19937 rng(12345);
float nrand() { return std::normal_distribution<float>(0.f, 1.f)(rng); }

template <typename T>
T to_t(float x) { return from_f<T>(x); }

// float64 reference (same semantics as test/helpers/attention-ref.ts).
void reference(const Case& c, const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
               const std::vector<double>& g, double scale, std::vector<double>& o, std::vector<double>& lse,
               std::vector<double>& dq, std::vector<double>& dk, std::vector<double>& dv) {
  const int D = c.D;
  o.assign(size_t(c.B) * c.H * c.Lq * D, 0);
  lse.assign(size_t(c.B) * c.H * c.Lq, 0);
  dq.assign(o.size(), 0);
  dk.assign(size_t(c.B) * c.H * c.Lk * D, 0);
  dv.assign(dk.size(), 0);
  std::vector<double> pr(static_cast<size_t>(std::max(c.Lk, 1))), oi(static_cast<size_t>(D));
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.H; ++h) {
      const size_t bh = size_t(b) * c.H + h, ko = bh * c.Lk * D;
      for (int i = 0; i < c.Lq; ++i) {
        const size_t qo = (bh * c.Lq + i) * D;
        int n = c.kl.empty() ? c.Lk : std::min(std::max(c.kl[b], 0), c.Lk);
        if (c.causal) n = std::min(n, i + 1);
        double mx = -INFINITY;
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int e = 0; e < D; ++e) s += q[qo + e] * k[ko + size_t(j) * D + e];
          pr[j] = s * scale;
          mx = std::max(mx, pr[j]);
        }
        if (n == 0) {
          lse[bh * c.Lq + i] = INFINITY;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < n; ++j) sum += (pr[j] = std::exp(pr[j] - mx));
        lse[bh * c.Lq + i] = mx + std::log(sum);
        std::fill(oi.begin(), oi.end(), 0.0);
        for (int j = 0; j < n; ++j) {
          pr[j] /= sum;
          for (int e = 0; e < D; ++e) oi[e] += pr[j] * v[ko + size_t(j) * D + e];
        }
        double delta = 0;
        for (int e = 0; e < D; ++e) {
          o[qo + e] = oi[e];
          delta += g[qo + e] * oi[e];
        }
        for (int j = 0; j < n; ++j) {
          const size_t jo = ko + size_t(j) * D;
          double dp = 0;
          for (int e = 0; e < D; ++e) dp += g[qo + e] * v[jo + e];
          const double ds = pr[j] * (dp - delta) * scale;
          for (int e = 0; e < D; ++e) {
            dv[jo + e] += pr[j] * g[qo + e];
            dq[qo + e] += ds * k[jo + e];
            dk[jo + e] += ds * q[qo + e];
          }
        }
      }
    }
}

double rel_err(const std::vector<float>& a, const std::vector<double>& r, int* nan) {
  double num = 0, den = 0;
  *nan = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (std::isnan(a[i])) ++*nan;
    num += (a[i] - r[i]) * (a[i] - r[i]);
    den += r[i] * r[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

template <typename T>
std::vector<float> to_float(const T* p, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = to_f<T>(p[i]);
  return out;
}

template <typename T>
bool run_case(const Case& c) {
  const size_t nq = size_t(c.B) * c.H * c.Lq * c.D, nk = size_t(c.B) * c.H * c.Lk * c.D, rows = size_t(c.B) * c.H * c.Lq;
  const double scale = 1.0 / std::sqrt(double(c.D));
  // Inputs rounded to T; the reference sees the rounded values. Exact-size heap arrays (ASan).
  const size_t off = c.misalign ? 1 : 0;
  std::unique_ptr<T[]> q(new T[nq + off]), k(new T[nk ? nk : 1]), v(new T[nk ? nk : 1]), g(new T[nq]), o(new T[nq]);
  std::unique_ptr<T[]> dq(new T[nq]), dk(new T[nk ? nk : 1]), dv(new T[nk ? nk : 1]);
  std::unique_ptr<float[]> lse(new float[rows]), delta(new float[rows]), dq_acc(new float[nq]);
  std::unique_ptr<int32_t[]> kl(c.kl.empty() ? nullptr : new int32_t[c.kl.size()]);
  std::vector<double> qd(nq), kd(nk), vd(nk), gd(nq);
  auto fill = [](T* x, std::vector<double>& xd) {
    for (size_t i = 0; i < xd.size(); ++i) {
      x[i] = to_t<T>(nrand());
      xd[i] = to_f<T>(x[i]);
    }
  };
  fill(q.get() + off, qd);
  fill(k.get(), kd);
  fill(v.get(), vd);
  fill(g.get(), gd);
  for (size_t i = 0; i < c.kl.size(); ++i) kl[i] = c.kl[i];
  const float nanf_ = NAN;
  for (size_t i = 0; i < nq; ++i) o[i] = dq[i] = to_t<T>(nanf_);
  for (size_t i = 0; i < nk; ++i) dk[i] = dv[i] = to_t<T>(nanf_);
  for (size_t i = 0; i < rows; ++i) lse[i] = delta[i] = NAN;
  for (size_t i = 0; i < nq; ++i) dq_acc[i] = NAN;

  // Forward, launched as tsm_cuda_attention_forward does.
  FwdParams fp{};
  fp.q = q.get() + off;
  fp.k = k.get();
  fp.v = v.get();
  fp.o = o.get();
  fp.lse = lse.get();
  fp.key_lengths = kl.get();
  fp.h = c.H;
  fp.lq = c.Lq;
  fp.lk = c.Lk;
  fp.d = c.D;
  fp.bh = c.B * c.H;
  fp.scale_log2 = float(scale) * kLog2e;
  fp.causal = c.causal;
  fp.vec = c.D % 8 == 0 && aligned_to(fp.q, 16) && (c.Lk == 0 || (aligned_to(fp.k, 16) && aligned_to(fp.v, 16)));
  fp.pair_store = c.D % 2 == 0 && aligned_to(fp.o, 4);
  auto fwd = [&](auto cfg) {
    using C = decltype(cfg);
    fp.nqb = int(ceil_div(c.Lq, C::BR));
    tsm_emu::launch(unsigned(fp.nqb * fp.bh), C::THREADS, size_t(C::SMEM_ELEMS) * sizeof(T),
                    [&] { attention_mma_fwd_kernel<T, C>(fp); });
  };
  if constexpr (std::is_same_v<T, float>) {
    tsm_emu::launch(unsigned(ceil_div(int64_t(rows), 4)), 128, 0, [&] { attention_general_fwd_kernel<T>(fp); });
  } else {
    if (c.general) tsm_emu::launch(unsigned(ceil_div(int64_t(rows), 4)), 128, 0, [&] { attention_general_fwd_kernel<T>(fp); });
    else if (c.D <= 64) fwd(FwdCfg64{});
    else fwd(FwdCfg128{});
  }

  // Backward, launched as tsm_cuda_attention_backward does (mma path).
  BwdParams bp{};
  bp.q = fp.q;
  bp.k = k.get();
  bp.v = v.get();
  bp.o = o.get();
  bp.dout = g.get();
  bp.lse = lse.get();
  bp.delta = delta.get();
  bp.dq_acc = dq_acc.get();
  bp.dq = dq.get();
  bp.dk = dk.get();
  bp.dv = dv.get();
  bp.key_lengths = kl.get();
  bp.h = c.H;
  bp.lq = c.Lq;
  bp.lk = c.Lk;
  bp.d = c.D;
  bp.bh = c.B * c.H;
  bp.scale = float(scale);
  bp.scale_log2 = float(scale) * kLog2e;
  bp.causal = c.causal;
  bp.vec = c.D % 8 == 0 && aligned_to(bp.q, 16) && aligned_to(bp.dout, 16) &&
           (c.Lk == 0 || (aligned_to(bp.k, 16) && aligned_to(bp.v, 16)));
  bp.pair_store = c.D % 2 == 0 && aligned_to(bp.dk, 4) && aligned_to(bp.dv, 4);
  auto bwd = [&](auto cfg) {
    using C = decltype(cfg);
    bp.nkb = int(ceil_div(c.Lk, C::BC));
    tsm_emu::launch(unsigned(ceil_div(int64_t(rows), 4)), 128, 0, [&] { attention_bwd_preprocess_kernel<T>(bp); });
    tsm_emu::launch(unsigned(bp.nkb * bp.bh), C::THREADS, C::SMEM, [&] { attention_mma_bwd_kernel<T, C>(bp); });
    const int64_t n = int64_t(nq);
    tsm_emu::launch(unsigned(ceil_div(n, 256)), 256, 0, [&] { attention_bwd_dq_convert_kernel<T>(bp, n); });
  };
  auto general_bwd = [&] {
    bp.dq_acc = nullptr;
    tsm_emu::launch(unsigned(ceil_div(int64_t(rows), 4)), 128, 0, [&] { attention_bwd_preprocess_kernel<T>(bp); });
    tsm_emu::launch(unsigned(ceil_div(int64_t(c.B) * c.H * c.Lk, 4)), 128, 0, [&] { attention_general_bwd_dkdv_kernel<T>(bp); });
    tsm_emu::launch(unsigned(ceil_div(int64_t(rows), 4)), 128, 0, [&] { attention_general_bwd_dq_kernel<T>(bp); });
  };
  if constexpr (std::is_same_v<T, float>) {
    general_bwd();
  } else {
    if (c.general) general_bwd();
    else if (c.D <= 64) bwd(BwdCfg64{});
    else bwd(BwdCfg128{});
  }

  std::vector<double> ro, rl, rdq, rdk, rdv;
  reference(c, qd, kd, vd, gd, scale, ro, rl, rdq, rdk, rdv);
  const bool bf = std::is_same_v<T, __nv_bfloat16>, f32 = std::is_same_v<T, float>;
  const double tf = bf ? 1e-2 : f32 ? 1e-5 : 2e-3, tb = bf ? 1e-2 : f32 ? 1e-4 : 2e-3;
  int nan[5];
  const double e_o = rel_err(to_float(o.get(), nq), ro, &nan[0]);
  const double e_dq = rel_err(to_float(dq.get(), nq), rdq, &nan[2]);
  const double e_dk = rel_err(to_float(dk.get(), nk), rdk, &nan[3]);
  const double e_dv = rel_err(to_float(dv.get(), nk), rdv, &nan[4]);
  double e_lse = 0;
  bool lse_ok = true;
  nan[1] = 0;
  for (size_t i = 0; i < rows; ++i) {
    if (std::isnan(lse[i])) nan[1]++;
    if (std::isinf(rl[i])) {
      if (!(std::isinf(lse[i]) && lse[i] > 0)) lse_ok = false;
      for (int e = 0; e < c.D; ++e) if (to_f<T>(o[i * c.D + e]) != 0.f) lse_ok = false;
    } else {
      e_lse = std::max(e_lse, std::fabs(lse[i] - rl[i]));
    }
  }
  const bool ok = nan[0] + nan[1] + nan[2] + nan[3] + nan[4] == 0 && e_o < tf && e_dq < tb && e_dk < tb && e_dv < tb &&
                  e_lse < 2e-3 && lse_ok;
  std::string kls;
  for (int x : c.kl) kls += std::to_string(x) + " ";
  std::printf("%s %s%s B%d H%d Lq%d Lk%d D%d%s%s%s%s: o %.2e lse %.1e dq %.2e dk %.2e dv %.2e nan %d/%d/%d/%d/%d\n",
              ok ? "ok  " : "FAIL", bf ? "bf16" : f32 ? "f32 " : "f16 ", c.general || f32 ? " general" : " mma    ", c.B, c.H, c.Lq, c.Lk, c.D, c.causal ? " causal" : "",
              kls.empty() ? "" : " keys ", kls.c_str(), c.misalign ? " misaligned" : "", e_o, e_lse, e_dq, e_dk, e_dv,
              nan[0], nan[1], nan[2], nan[3], nan[4]);
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  std::vector<Case> cases = {
      {1, 1, 2, 1, 1, 64, false, {}},
      {1, 2, 1, 17, 17, 64, true, {10, 0}},
      {1, 1, 2, 130, 130, 64, false, {}},
      {1, 2, 1, 130, 130, 64, true, {100, 0}},
      {2, 1, 1, 70, 200, 64, true, {150}},
      {1, 1, 1, 200, 45, 64, true, {}},
      {1, 1, 2, 17, 17, 128, false, {}},
      {2, 2, 1, 100, 100, 128, true, {77, 0}},
      {1, 1, 1, 150, 90, 128, false, {200}},
      {1, 1, 2, 33, 33, 80, true, {}},
      {2, 1, 1, 40, 40, 33, true, {}},
      {1, 1, 1, 40, 40, 40, false, {}, true},
      {1, 1, 2, 9, 0, 64, false, {}},
      // general path: dtype 0 = float32
      {0, 2, 1, 33, 40, 80, true, {25, 0}, false, true},
      {1, 1, 2, 17, 17, 200, false, {}, false, true},
      {2, 2, 1, 20, 9, 33, true, {5, 0}, false, true},
  };
  if (quick) cases = {cases[1], cases[4], cases[7], cases[10], cases[11], cases[12], cases[13], cases[15]};
  bool all = true;
  for (const Case& c : cases)
    all = (c.dtype == 1 ? run_case<__nv_bfloat16>(c) : c.dtype == 2 ? run_case<__half>(c) : run_case<float>(c)) && all;
  std::printf("%s\n", all ? "OK" : "FAILED");
  return all ? 0 : 1;
}
