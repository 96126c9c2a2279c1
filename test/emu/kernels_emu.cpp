// Runs the CUDA kernels of cuda/{gemm_sgemm,gemm,conv,cross_entropy,reduce,softmax,pool,optim,
// pointwise,layout}.cu on the host (test/emu/cuda_host.h: a host thread per CUDA thread, barriers,
// emulated shuffles, under ASan/UBSan) through their C ABI entry points, and compares them with the
// CPU kernels of the same contracts (cpp/kernels, linked in) or float64 references.
//
// Every device buffer is allocated at its exact size (ASan stops an access past either end; the
// bytes before a deliberately misaligned pointer are poisoned too), outputs are poisoned with NaN
// (an element a kernel forgets to write shows up), and elements between rows of a padded output
// hold a sentinel that must survive.
//
//   node test/emu/build.mjs && build/cuda-emu/kernels_emu [quick|full] [group...]
// groups: sgemm conv cross_entropy reduce softmax pool optim pointwise layout. Prints one line per
// case that fails (and a summary line per group); "OK" last; exits 1 on any failure.
#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <limits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tensorsmith.h"

namespace tsm_emu {
int64_t live_allocations();
void set_grid_cap(unsigned cap);  // 0: grids as launched; else grid-stride kernels get <= cap blocks
void set_conv_scratch_bytes(int64_t bytes);  // cuda/conv.cu's chunk budget (256 MiB on the GPU)
}

namespace {

bool g_full = false;
std::mt19937_64 rng(20261122);
int g_fail_lines = 0;

size_t Z(int64_t v) { return size_t(v); }
int64_t irand(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
float frand(float lo = -1.f, float hi = 1.f) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
template <class T>
const T& pick(const std::vector<T>& v) { return v[size_t(irand(0, int64_t(v.size()) - 1))]; }

// A "device" buffer of exactly n elements starting `off` bytes into its allocation (the bytes before
// are poisoned): any access outside [p, p + n) stops the run under ASan.
template <class T>
struct Buf {
  unsigned char* base = nullptr;
  size_t off = 0;
  T* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count, size_t off_bytes = 0) : off(off_bytes), n(count) {
    base = static_cast<unsigned char*>(std::malloc(off + n * sizeof(T) + 1));
    p = reinterpret_cast<T*>(base + off);
    if (off) ASAN_POISON_MEMORY_REGION(base, off);
    // the one spare byte keeps malloc(0)-like cases distinct; poison it too
    ASAN_POISON_MEMORY_REGION(base + off + n * sizeof(T), 1);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() {
    ASAN_UNPOISON_MEMORY_REGION(base, off + n * sizeof(T) + 1);
    std::free(base);
  }
  T& operator[](size_t i) { return p[i]; }
  std::vector<T> vec() const { return std::vector<T>(p, p + n); }
  void fill(T v) { for (size_t i = 0; i < n; ++i) p[i] = v; }
  void randomize(float lo = -1.f, float hi = 1.f) { for (size_t i = 0; i < n; ++i) p[i] = T(frand(lo, hi)); }
};

// Misalignment in bytes for a float buffer: 0 (16-byte aligned: float4 paths) or 4/8/12.
size_t mis(bool allow) { return allow && irand(0, 2) == 0 ? size_t(4 * irand(1, 3)) : 0; }

struct Group {
  const char* name;
  int cases = 0, failed = 0;
};
Group* g_group = nullptr;

// Records one case. ok == false prints the description (up to a limit).
std::string fmt(const char* f, ...);

// Each case runs with grid-stride kernels capped to 1-3 blocks or uncapped (chosen at random), so
// that their loops over gridDim are exercised at small sizes.
unsigned g_cap = 0;
void new_cap() {
  g_cap = irand(0, 1) ? 0 : unsigned(irand(1, 3));
  tsm_emu::set_grid_cap(g_cap);
}

bool report(bool ok, const std::string& what_) {
  const std::string what = g_cap ? what_ + fmt(" [grid cap %u]", g_cap) : what_;
  g_group->cases++;
  static const bool verbose = std::getenv("TSM_EMU_VERBOSE") != nullptr;
  static auto last = std::chrono::steady_clock::now();
  if (verbose) {
    const auto now = std::chrono::steady_clock::now();
    std::printf("  %.3f s  %s %s\n", std::chrono::duration<double>(now - last).count(), ok ? "ok" : "FAIL", what.c_str());
    last = now;
  }
  if (!ok) {
    g_group->failed++;
    if (g_fail_lines++ < 200) std::printf("FAIL %s: %s\n", g_group->name, what.c_str());
    std::fflush(stdout);
  }
  return ok;
}

std::string fmt(const char* f, ...) {
  char b[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

bool same_float(float a, double r, double tol) {
  if (std::isnan(r)) return std::isnan(a);
  if (std::isinf(r)) return a == float(r);
  return std::isfinite(a) && std::fabs(double(a) - r) <= tol;
}

// Compares got with ref elementwise: |got - ref| <= atol + rtol * |ref| (NaN must match NaN, inf
// must match inf). Returns "" or a description of the first mismatch.
std::string compare(const float* got, const double* ref, size_t n, double atol, double rtol, const float* scale = nullptr) {
  for (size_t i = 0; i < n; ++i) {
    const double tol = atol + rtol * (scale ? double(scale[i]) : std::fabs(ref[i]));
    if (!same_float(got[i], ref[i], tol))
      return fmt("element %zu of %zu: got %.9g, want %.9g (tol %.3g)", i, n, double(got[i]), ref[i], tol);
  }
  return "";
}
std::string compare(const float* got, const std::vector<float>& ref, double atol, double rtol) {
  std::vector<double> r(ref.begin(), ref.end());
  return compare(got, r.data(), r.size(), atol, rtol);
}
// Bitwise (NaN == NaN).
std::string compare_exact(const float* got, const float* ref, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &ref[i], 4);
    if (a != b && !(std::isnan(got[i]) && std::isnan(ref[i])))
      return fmt("element %zu of %zu: got %.9g (%08x), want %.9g (%08x)", i, n, double(got[i]), a, double(ref[i]), b);
  }
  return "";
}
std::string compare_i32(const int32_t* got, const int32_t* ref, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (got[i] != ref[i]) return fmt("index %zu of %zu: got %d, want %d", i, n, got[i], ref[i]);
  return "";
}

std::string status_msg(tsm_status s) { return fmt("status %d (%s)", int(s), tsm_last_error()); }

bool check_status(tsm_status s, const std::string& what) {
  if (s == TSM_OK) return true;
  report(false, what + ": " + status_msg(s));
  return false;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kSentinel = 12345.f;

// =============================================================================================
// SGEMM (gemm_sgemm.cu through gemm.cu): every transpose combination, alpha/beta, padded leading
// dimensions, misaligned bases (float4 loads taken and skipped), batches with stride-0 broadcast,
// K = 0, the fused epilogue (bias, ReLU, GELU).
void gemm_case(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, bool misalign, bool bcast_a,
               bool bcast_b, float alpha, float beta, bool bias, int act, bool use_ex) {
  new_cap();
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int64_t lda = std::max<int64_t>(1, ac) + (irand(0, 1) ? irand(0, 5) : 0);
  const int64_t ldb = std::max<int64_t>(1, bc) + (irand(0, 1) ? irand(0, 5) : 0);
  const int64_t ldc = std::max<int64_t>(1, n) + (irand(0, 1) ? irand(0, 3) : 0);
  const int64_t sa = bcast_a ? 0 : ar * lda + irand(0, 3), sb = bcast_b ? 0 : br * ldb + irand(0, 3);
  const int64_t sc = m * ldc + irand(0, 3);
  auto span = [](int64_t batch_, int64_t stride, int64_t rows, int64_t ld, int64_t cols) -> size_t {
    if (rows == 0 || cols == 0 || batch_ == 0) return 0;
    return size_t((batch_ - 1) * stride + (rows - 1) * ld + cols);
  };
  Buf<float> A(span(batch, sa, ar, lda, ac), mis(misalign)), B(span(batch, sb, br, ldb, bc), mis(misalign));
  Buf<float> C(span(batch, sc, m, ldc, n), mis(misalign)), bv(Z(n));
  A.randomize();
  B.randomize();
  bv.randomize();
  C.fill(kSentinel);
  std::vector<double> c0(C.n, 0.0);
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const size_t o = size_t(z * sc + i * ldc + j);
        C[o] = beta != 0.f ? frand() : kNaN;  // beta == 0: C must not be read
        c0[o] = C[o];
      }
  std::vector<float> before = C.vec();
  tsm_status s;
  if (use_ex)
    s = tsm_cuda_gemm_strided_batched_ex(TSM_CUDA_GEMM_F32, ta, tb, batch, m, n, k, alpha, A.p, lda, sa, B.p, ldb, sb,
                                         beta, C.p, TSM_CUDA_F32, ldc, sc, bias ? bv.p : nullptr,
                                         tsm_cuda_activation(act));
  else
    s = tsm_cuda_sgemm_strided_batched(ta, tb, batch, m, n, k, alpha, A.p, lda, sa, B.p, ldb, sb, beta, C.p, ldc, sc);
  const std::string what = fmt("ta %d tb %d batch %" PRId64 " m %" PRId64 " n %" PRId64 " k %" PRId64
                               " lda %" PRId64 " ldb %" PRId64 " ldc %" PRId64 " sa %" PRId64 " sb %" PRId64
                               " offsets %zu/%zu/%zu alpha %g beta %g bias %d act %d",
                               ta, tb, batch, m, n, k, lda, ldb, ldc, sa, sb, A.off, B.off, C.off, alpha, beta, bias,
                               act);
  if (!check_status(s, what)) return;
  std::string err;
  for (int64_t z = 0; z < batch && err.empty(); ++z)
    for (int64_t i = 0; i < m && err.empty(); ++i)
      for (int64_t j = 0; j < n && err.empty(); ++j) {
        double acc = 0, mag = 0;
        for (int64_t q = 0; q < k; ++q) {
          const double a = A[size_t(z * sa + (ta ? q * lda + i : i * lda + q))];
          const double b = B[size_t(z * sb + (tb ? j * ldb + q : q * ldb + j))];
          acc += a * b;
          mag += std::fabs(a * b);
        }
        const size_t o = size_t(z * sc + i * ldc + j);
        double v = double(alpha) * acc + (beta != 0.f ? double(beta) * c0[o] : 0.0) + (bias ? double(bv[size_t(j)]) : 0.0);
        double dv = 1;
        if (act == 1) { dv = v < 0 ? 0 : 1; v = v < 0 ? 0 : v; }
        if (act == 2) { v = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }
        mag = std::fabs(alpha) * mag + (beta != 0.f ? std::fabs(beta * c0[o]) : 0.0) + (bias ? std::fabs(bv[size_t(j)]) : 0);
        const double tol = 1e-6 + 4e-7 * (k + 4) * mag * (dv + 0.2);
        if (!same_float(C[o], v, tol))
          err = fmt("C[%" PRId64 "][%" PRId64 "][%" PRId64 "] = %.9g, want %.9g", z, i, j, double(C[o]), v);
      }
  // Elements outside the m x n views (row padding, batch padding) must be untouched.
  std::vector<char> inside(C.n, 0);
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) inside[size_t(z * sc + i * ldc + j)] = 1;
  for (size_t o = 0; o < C.n && err.empty(); ++o)
    if (!inside[o] && C[o] != before[o]) err = fmt("C[%zu] outside the matrices was written", o);
  report(err.empty(), what + (err.empty() ? "" : ": " + err));
}

void test_sgemm() {
  const std::vector<std::array<int64_t, 3>> shapes_quick = {
      {1, 1, 1}, {5, 3, 7}, {17, 33, 16}, {4, 8, 0}, {128, 128, 17}, {129, 131, 33}, {64, 200, 5}, {3, 130, 48},
      {1100, 260, 2},   // 9 x 3 tiles: the raster groups of 8 tile rows and a partial last group
      {70, 50, 600},    // one tile, 38 K tiles: split K (4 slices) and the ordered reduction
      {20, 20, 4100},   // K > 2048: the 128x128 tile with 32 K slices
      {1700, 1300, 3},  // 154 tiles of 128x128 (the others run 64x64 tiles under the emulator's 132 SMs)
      {2600, 1300, 9}};  // 121 tiles of 256x128 (K step 8: a partial second K tile)
  const std::vector<std::array<int64_t, 3>> shapes_full = {
      {2, 2, 2},   {1, 128, 16}, {128, 1, 16},   {127, 129, 15}, {130, 257, 40}, {256, 128, 64}, {31, 65, 100},
      {200, 3, 9}, {6, 6, 1},    {33, 17, 31},   {1, 300, 2},    {300, 1, 3},    {140, 140, 32},
      {2100, 130, 3}, {1300, 300, 2},
      {3, 130, 1000}, {257, 129, 300}};  // split K: uneven last slice, 18 tiles
  std::vector<std::array<int64_t, 3>> shapes = shapes_quick;
  if (g_full) shapes.insert(shapes.end(), shapes_full.begin(), shapes_full.end());
  for (const auto& sh : shapes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const int64_t batch = irand(0, 3) == 0 ? irand(2, 3) : 1;
      const float alpha = pick<float>({1.f, -0.5f, 2.f}), beta = pick<float>({0.f, 0.f, 1.f, -1.5f});
      const bool ex = irand(0, 1);
      gemm_case(ta, tb, batch, sh[0], sh[1], sh[2], irand(0, 1), batch > 1 && irand(0, 1), batch > 1 && irand(0, 2) == 0,
                alpha, beta, ex && irand(0, 1), ex ? int(irand(0, 2)) : 0, ex);
    }
  // Empty problems: nothing written, no launch error.
  gemm_case(false, false, 1, 0, 5, 3, false, false, false, 1.f, 0.f, false, 0, false);
  gemm_case(true, true, 0, 4, 5, 3, false, false, false, 1.f, 0.f, false, 0, true);
}

// =============================================================================================
// Convolution (conv.cu, with the SGEMM): forward, backward data, backward weight + bias against
// the CPU kernels, random geometries (groups, strides, padding, dilation, 1x1, kernel = input).
void conv_case(const tsm_conv2d_desc& d, bool bias) {
  new_cap();
  int64_t oh = 0, ow = 0;
  if (tsm_conv2d_output_size(&oh, &ow, &d) != TSM_OK || oh < 1 || ow < 1) return;
  const size_t nx = size_t(d.n * d.c * d.h * d.w), nw = size_t(d.oc * (d.c / d.groups) * d.kh * d.kw),
               ny = size_t(d.n * d.oc * oh * ow);
  Buf<float> x(nx, mis(true)), w(nw, mis(true)), b(Z(d.oc)), y(ny, mis(true)), dy(ny), dx(nx), dw(nw), db(Z(d.oc));
  x.randomize();
  w.randomize();
  b.randomize();
  dy.randomize();
  y.fill(kNaN);
  dx.fill(kNaN);
  dw.fill(kNaN);
  db.fill(kNaN);
  // Scratch budget: the GPU's (all images in one chunk) or one that fits 1 or 2 images (the chunk
  // loops, with a shorter last chunk); the weight gradient's per-image scratch also holds dw.
  const int64_t per_image = d.c * d.kh * d.kw * oh * ow, wlen = nw;
  const int chunking = int(irand(0, 2));
  tsm_emu::set_conv_scratch_bytes(chunking == 0 ? int64_t(256) << 20 : 4 * (per_image + wlen) * chunking);
  std::vector<float> ry(ny), rdx(nx), rdw(nw), rdb(Z(d.oc));
  const std::string what = fmt("n %" PRId64 " c %" PRId64 " h %" PRId64 " w %" PRId64 " oc %" PRId64 " k %" PRId64 "x%" PRId64
                               " stride %" PRId64 ",%" PRId64 " pad %" PRId64 ",%" PRId64 " dil %" PRId64 ",%" PRId64
                               " groups %" PRId64 " bias %d",
                               d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_h, d.pad_w, d.dil_h,
                               d.dil_w, d.groups, int(bias)) +
                           fmt(" scratch %s", chunking == 0 ? "256 MiB" : chunking == 1 ? "1 image" : "2 images");
  if (tsm_conv2d_forward(ry.data(), x.p, w.p, bias ? b.p : nullptr, &d) != TSM_OK ||
      tsm_conv2d_backward_data(rdx.data(), dy.p, w.p, &d) != TSM_OK ||
      tsm_conv2d_backward_weight(rdw.data(), bias ? rdb.data() : nullptr, dy.p, x.p, &d) != TSM_OK) {
    report(false, what + ": CPU reference failed: " + tsm_last_error());
    return;
  }
  const int64_t kg = (d.c / d.groups) * d.kh * d.kw;
  const double tf = 2e-6 * double(kg + 2), tdx = 2e-6 * double(d.oc * d.kh * d.kw + 2),
               tdw = 2e-6 * double(d.n * oh * ow + 2);
  if (!check_status(tsm_cuda_conv2d_forward(y.p, x.p, w.p, bias ? b.p : nullptr, &d), "forward " + what)) return;
  std::string e = compare(y.p, ry, tf, 1e-5);
  report(e.empty(), "forward " + what + ": " + e);
  if (!check_status(tsm_cuda_conv2d_backward_data(dx.p, dy.p, w.p, &d), "backward data " + what)) return;
  e = compare(dx.p, rdx, tdx, 1e-5);
  report(e.empty(), "backward data " + what + ": " + e);
  if (!check_status(tsm_cuda_conv2d_backward_weight(dw.p, bias ? db.p : nullptr, dy.p, x.p, &d), "backward weight " + what))
    return;
  e = compare(dw.p, rdw, tdw, 1e-5);
  if (e.empty() && bias) e = compare(db.p, rdb, tdw, 1e-5);
  report(e.empty(), "backward weight " + what + ": " + e);
}

void test_conv() {
  // Fixed cases first: the LeNet shapes (small), 1x1, kernel as large as the input, stride > kernel.
  std::vector<tsm_conv2d_desc> fixed = {
      {2, 1, 8, 8, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1},  {1, 3, 7, 5, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1},
      {2, 2, 5, 5, 3, 5, 5, 1, 1, 0, 0, 1, 1, 1},  {1, 4, 9, 9, 4, 2, 2, 3, 3, 0, 0, 1, 1, 2},
      {3, 4, 6, 7, 6, 3, 3, 2, 1, 1, 2, 2, 1, 2},  {1, 2, 4, 4, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1},
      {5, 2, 4, 5, 3, 3, 2, 1, 2, 1, 1, 1, 1, 1},
  };
  for (const auto& d : fixed) conv_case(d, true);
  const int n = g_full ? 60 : 14;
  for (int i = 0; i < n; ++i) {
    tsm_conv2d_desc d{};
    d.groups = pick<int64_t>({1, 1, 1, 2, 3});
    d.n = irand(1, 3);
    d.c = d.groups * irand(1, 3);
    d.oc = d.groups * irand(1, 3);
    d.h = irand(1, 9);
    d.w = irand(1, 9);
    d.kh = irand(1, 3);
    d.kw = irand(1, 3);
    d.stride_h = irand(1, 3);
    d.stride_w = irand(1, 3);
    d.pad_h = irand(0, 2);
    d.pad_w = irand(0, 2);
    d.dil_h = irand(1, 2);
    d.dil_w = irand(1, 2);
    conv_case(d, irand(0, 1));
  }
}

// =============================================================================================
// Cross-entropy (cross_entropy.cu): losses, log_probs, the mean/sum and count, the backward, with
// ignore_index, label smoothing, all rows ignored, out-of-range targets (NaN), c = 1, n = 0,
// against the CPU kernel (float64 sums there, float32 here).
void ce_case(int64_t n, int64_t c, float eps, int reduction, int64_t ignore, double p_ignore, bool bad_target) {
  new_cap();
  Buf<float> logits(Z(n * c), mis(true)), lp(Z(n * c)), losses(Z(n)), out(1), count(1),
      dl(size_t(reduction == 0 ? n : 1)), dlog(size_t(n * c));
  Buf<int32_t> t(Z(n));
  logits.randomize(-4.f, 4.f);
  if (n * c > 3 && irand(0, 2) == 0) logits[size_t(irand(0, n * c - 1))] = -INFINITY;  // one -inf logit
  if (n * c > 3 && irand(0, 3) == 0) logits[size_t(irand(0, n * c - 1))] = kNaN;       // a NaN row
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = frand(0.f, 1.f) < p_ignore ? int32_t(ignore) : int32_t(irand(0, c - 1));
  if (bad_target && n > 0) t[size_t(n - 1)] = int32_t(c);  // out of range: NaN loss and gradient for that row
  dl.randomize();
  lp.fill(kNaN);
  losses.fill(kNaN);
  out.fill(kNaN);
  count.fill(kNaN);
  dlog.fill(kNaN);
  const std::string what = fmt("n %" PRId64 " c %" PRId64 " eps %g reduction %d ignore %" PRId64 " p_ignore %g bad %d", n, c,
                               eps, reduction, ignore, p_ignore, int(bad_target));
  // Reference: the CPU kernel on the rows with valid targets; the bad row by hand.
  std::vector<float> rl(Z(n)), rlp(Z(n * c)), rdl(Z(n * c));
  std::vector<int32_t> tt(t.p, t.p + n);
  if (bad_target && n > 0) tt[size_t(n - 1)] = int32_t(ignore);
  if (n > 0 && tsm_cross_entropy_forward(rl.data(), rlp.data(), logits.p, tt.data(), n, c, ignore, eps) != TSM_OK) {
    report(false, what + ": CPU reference failed: " + tsm_last_error());
    return;
  }
  if (bad_target && n > 0) rl[size_t(n - 1)] = kNaN;
  double sum = 0, k = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += rl[size_t(i)];
    if (t[size_t(i)] != ignore) k += 1;
  }
  if (!check_status(tsm_cuda_cross_entropy_forward(losses.p, lp.p, reduction ? out.p : nullptr, reduction ? count.p : nullptr,
                                                   logits.p, t.p, n, c, ignore, eps, reduction),
                    "forward " + what))
    return;
  std::string e = compare(lp.p, rlp, 2e-6, 2e-6);
  if (e.empty()) e = compare(losses.p, rl, 1e-5, 1e-5);
  if (e.empty() && reduction) {
    const double want = reduction == 1 ? sum / k : sum;
    if (!same_float(count[0], k, 0)) e = fmt("count %g, want %g", double(count[0]), k);
    else if (!same_float(out[0], want, 1e-5 * (1 + std::fabs(want)) + 1e-6 * n)) e = fmt("out %.9g, want %.9g", double(out[0]), want);
  }
  report(e.empty(), "forward " + what + ": " + e);
  if (n == 0) return;
  // Backward: the CPU kernel takes per-row dlosses.
  std::vector<float> dlr(Z(n));
  for (int64_t i = 0; i < n; ++i)
    dlr[size_t(i)] = reduction == 0 ? dl[size_t(i)] : reduction == 2 ? dl[0] : float(double(dl[0]) / std::max(k, 1.0));
  if (tsm_cross_entropy_backward(rdl.data(), rlp.data(), tt.data(), dlr.data(), n, c, ignore, eps) != TSM_OK) {
    report(false, what + ": CPU backward failed: " + tsm_last_error());
    return;
  }
  if (bad_target) for (int64_t j = 0; j < c; ++j) rdl[size_t((n - 1) * c + j)] = kNaN;
  if (!check_status(tsm_cuda_cross_entropy_backward(dlog.p, lp.p, t.p, dl.p, reduction == 1 ? count.p : nullptr, n, c, ignore,
                                                    eps, reduction),
                    "backward " + what))
    return;
  e = compare(dlog.p, rdl, 2e-6, 1e-5);
  report(e.empty(), "backward " + what + ": " + e);
}

void test_cross_entropy() {
  const std::vector<int64_t> cs = {1, 2, 5, 31, 32, 33, 64, 100, 1000};
  for (int64_t c : cs)
    for (int red = 0; red < 3; ++red) ce_case(pick<int64_t>({1, 7, 20}), c, pick<float>({0.f, 0.1f}), red, -100, 0.2, false);
  ce_case(0, 5, 0.f, 1, -100, 0, false);                 // n = 0: mean = NaN, count 0
  ce_case(0, 5, 0.f, 2, -100, 0, false);                 // n = 0: sum = 0
  ce_case(6, 4, 0.f, 1, 2, 1.0, false);                  // every row ignored (ignore_index inside [0, c))
  ce_case(9, 10, 0.2f, 1, -1, 0.3, true);                // out-of-range target
  ce_case(70, 3, 1.f, 2, -100, 0.1, false);              // eps = 1
  if (g_full) ce_case(2100, 3, 0.05f, 1, -100, 0.1, false);  // more rows than the reduce block's threads
  if (g_full)
    for (int i = 0; i < 20; ++i)
      ce_case(irand(1, 300), irand(1, 200), pick<float>({0.f, 0.1f, 0.5f}), int(irand(0, 2)), pick<int64_t>({-100, 0}),
              frand(0.f, 0.5f), irand(0, 3) == 0);
}

// =============================================================================================
// Reductions (reduce.cu): sum (thread / warp / block per row, split rows, columns, split columns,
// float4 and scalar), arg max/min with NaN and ties, and the backward.
void sum_case(int64_t outer, int64_t dim, int64_t inner, bool misalign) {
  new_cap();
  const size_t total = size_t(outer * dim * inner);
  Buf<float> x(total, mis(misalign)), out(Z(outer * inner), mis(misalign));
  x.randomize();
  out.fill(kNaN);
  const float divisor = pick<float>({1.f, float(std::max<int64_t>(dim, 1))});
  const std::string what = fmt("outer %" PRId64 " dim %" PRId64 " inner %" PRId64 " x offset %zu divisor %g", outer, dim,
                               inner, x.off, divisor);
  const int64_t before = tsm_emu::live_allocations();
  if (!check_status(tsm_cuda_sum(out.p, x.p, outer, dim, inner, divisor), what)) return;
  std::vector<double> ref(Z(outer * inner)), mag(ref.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double s = 0, a = 0;
      for (int64_t d = 0; d < dim; ++d) {
        s += x[size_t((o * dim + d) * inner + i)];
        a += std::fabs(x[size_t((o * dim + d) * inner + i)]);
      }
      ref[size_t(o * inner + i)] = s / divisor;
      mag[size_t(o * inner + i)] = a / divisor;
    }
  std::string e;
  for (size_t i = 0; i < ref.size() && e.empty(); ++i)
    if (!same_float(out[i], ref[i], 1e-6 + 3e-7 * std::log2(double(dim) + 2) * 4 * mag[i]))
      e = fmt("out[%zu] = %.9g, want %.9g", i, double(out[i]), ref[i]);
  if (e.empty() && tsm_emu::live_allocations() != before) e = "scratch not freed";
  report(e.empty(), what + ": " + e);
}

void arg_case(int64_t outer, int64_t dim, int64_t inner, int is_max, int special) {
  new_cap();
  const size_t total = size_t(outer * dim * inner);
  Buf<float> x(total, mis(true)), vals(Z(outer * inner)), dy(Z(outer * inner)), dx(total);
  Buf<int32_t> idx(Z(outer * inner));
  // special: 0 random, 1 few distinct values (ties), 2 with NaNs, 3 +-inf
  for (size_t i = 0; i < total; ++i) {
    x[i] = special == 1 ? float(irand(0, 2)) : frand();
    if (special == 2 && irand(0, 9) == 0) x[i] = kNaN;
    if (special == 3 && irand(0, 4) == 0) x[i] = irand(0, 1) ? INFINITY : -INFINITY;
  }
  vals.fill(kNaN);
  idx.fill(-7);
  dy.randomize();
  dx.fill(kNaN);
  const std::string what = fmt("outer %" PRId64 " dim %" PRId64 " inner %" PRId64 " %s special %d", outer, dim, inner,
                               is_max ? "max" : "min", special);
  std::vector<int32_t> ridx(Z(outer * inner));
  if (tsm_arg_reduce(ridx.data(), x.p, outer, dim, inner, is_max) != TSM_OK) {
    report(false, what + ": CPU reference failed");
    return;
  }
  if (!check_status(tsm_cuda_arg_reduce(irand(0, 3) ? vals.p : nullptr, idx.p, x.p, outer, dim, inner, is_max), what)) return;
  std::string e = compare_i32(idx.p, ridx.data(), ridx.size());
  if (e.empty())
    for (int64_t o = 0; o < outer && e.empty(); ++o)
      for (int64_t i = 0; i < inner && e.empty(); ++i) {
        const size_t k = size_t(o * inner + i);
        if (!std::isnan(vals[k]) || !std::isnan(x[size_t((o * dim + ridx[k]) * inner + i)])) {
          // values may be NULL (then vals stays NaN)
        }
      }
  if (e.empty()) {
    if (!check_status(tsm_cuda_arg_reduce_backward(dx.p, dy.p, idx.p, outer, dim, inner), "backward " + what)) return;
    for (int64_t o = 0; o < outer && e.empty(); ++o)
      for (int64_t d = 0; d < dim && e.empty(); ++d)
        for (int64_t i = 0; i < inner && e.empty(); ++i) {
          const size_t k = size_t(o * inner + i), xi = size_t((o * dim + d) * inner + i);
          const float want = ridx[k] == d ? dy[k] : 0.f;
          if (dx[xi] != want) e = fmt("backward dx[%zu] = %g, want %g", xi, double(dx[xi]), double(want));
        }
  }
  report(e.empty(), what + ": " + e);
}

void test_reduce() {
  // rows: thread (dim <= 32), warp (<= 4096), block (> 4096), split (dim >= 16384, few rows)
  const std::vector<std::array<int64_t, 3>> sums = {
      {1, 1, 1},   {5, 0, 1},     {3, 0, 4},      {7, 32, 1},     {9, 33, 1},   {2, 4096, 1}, {3, 4097, 1},
      {2, 5000, 1}, {1, 20000, 1}, {2, 16387, 1}, {1, 1, 5},      {4, 7, 3},     {2, 100, 33}, {1, 1500, 3},
      {2, 1027, 40}, {0, 5, 3},   {3, 5, 0},     {1, 70001, 1}};
  for (const auto& s : sums)
    if (g_full || s[1] * s[0] * s[2] < 40000 || s[0] * s[2] == 1) sum_case(s[0], s[1], s[2], irand(0, 1));
  if (g_full)
    for (int i = 0; i < 20; ++i) sum_case(irand(1, 40), irand(0, 3000), pick<int64_t>({1, 1, 2, 31, 33}), irand(0, 1));
  for (int sp = 0; sp < 4; ++sp)
    for (int mx = 0; mx < 2; ++mx) {
      arg_case(3, 1, 1, mx, sp);
      arg_case(4, 37, 1, mx, sp);
      arg_case(2, 300, 1, mx, sp);
      arg_case(3, 9, 5, mx, sp);
      arg_case(1, 1, 7, mx, sp);
      if (g_full) arg_case(irand(1, 5), irand(1, 2000), pick<int64_t>({1, 3}), mx, sp);
    }
}

// =============================================================================================
// Softmax and log-softmax (softmax.cu): warp per row (dim <= 1024), block per row, columns; forward
// and backward against the CPU kernels; -inf entries and rows of -inf.
void softmax_case(int64_t outer, int64_t dim, int64_t inner, int log, int special) {
  new_cap();
  const size_t total = size_t(outer * dim * inner);
  Buf<float> x(total, mis(true)), y(total, mis(true)), dy(total), dx(total);
  x.randomize(-5.f, 5.f);
  dy.randomize();
  if (special == 1)
    for (size_t i = 0; i < total; ++i)
      if (irand(0, 4) == 0) x[i] = -INFINITY;
  if (special == 2)
    for (size_t i = 0; i < total; ++i) x[i] = 300.f + frand();  // large values: the max must be subtracted
  if ((special == 3 || special == 4) && total > 0)  // a NaN or a +inf in some rows (the whole row becomes NaN)
    for (int k = 0; k < 3; ++k) x[size_t(irand(0, int64_t(total) - 1))] = special == 3 ? kNaN : INFINITY;
  y.fill(kNaN);
  dx.fill(kNaN);
  const bool alias = irand(0, 2) == 0;  // in place: y = x
  const std::string what = fmt("outer %" PRId64 " dim %" PRId64 " inner %" PRId64 " log %d special %d%s", outer, dim, inner,
                               log, special, alias ? " in place" : "");
  std::vector<float> ry(total), rdx(total);
  if (tsm_softmax_forward(ry.data(), x.p, outer, dim, inner, log) != TSM_OK) {
    report(false, what + ": CPU reference failed");
    return;
  }
  if (alias) std::memcpy(y.p, x.p, total * 4);
  if (!check_status(tsm_cuda_softmax_forward(y.p, alias ? y.p : x.p, outer, dim, inner, log), "forward " + what)) return;
  std::string e = compare(y.p, ry, 1e-6, 1e-5);
  report(e.empty(), "forward " + what + ": " + e);
  if (tsm_softmax_backward(rdx.data(), ry.data(), dy.p, outer, dim, inner, log) != TSM_OK) return;
  if (!check_status(tsm_cuda_softmax_backward(dx.p, ry.data(), dy.p, outer, dim, inner, log), "backward " + what)) return;
  e = compare(dx.p, rdx, 1e-5, 1e-4);
  report(e.empty(), "backward " + what + ": " + e);
}

void test_softmax() {
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1}, {3, 5, 1}, {2, 32, 1}, {5, 33, 1}, {2, 1024, 1}, {2, 1025, 1},
                                                      {1, 3000, 1}, {2, 7, 3}, {1, 40, 33}, {0, 5, 1}, {2, 0, 1}, {9, 100, 1}};
  for (const auto& s : shapes)
    for (int log = 0; log < 2; ++log) softmax_case(s[0], s[1], s[2], log, int(irand(0, 4)));
  if (g_full)
    for (int i = 0; i < 20; ++i)
      softmax_case(irand(1, 10), irand(1, 2500), pick<int64_t>({1, 1, 2, 5}), int(irand(0, 1)), int(irand(0, 4)));
}

// =============================================================================================
// Pooling (pool.cu): max (values, indices, NaN, dilation, ceil_mode, padding) and average
// (count_include_pad, ceil_mode), forward and backward, bit-exact against the CPU kernels.
void pool_case(const tsm_pool2d_desc& d0, bool nan, bool ties) {
  new_cap();
  tsm_pool2d_desc d = d0;
  const int64_t oh = tsm_pool2d_output_size(d.h, d.kh, d.stride_h, d.pad_h, d.dil_h, d.ceil_mode);
  const int64_t ow = tsm_pool2d_output_size(d.w, d.kw, d.stride_w, d.pad_w, d.dil_w, d.ceil_mode);
  if (oh < 1 || ow < 1 || d.pad_h > d.kh / 2 || d.pad_w > d.kw / 2) return;
  const size_t nx = size_t(d.n * d.c * d.h * d.w), ny = size_t(d.n * d.c * oh * ow);
  Buf<float> x(nx, mis(true)), y(ny), dy(ny), dx(nx);
  Buf<int32_t> idx(ny);
  for (size_t i = 0; i < nx; ++i) x[i] = ties ? float(irand(0, 2)) : frand();
  if (nan)
    for (size_t i = 0; i < nx; ++i)
      if (irand(0, 6) == 0) x[i] = kNaN;
  dy.randomize();
  const std::string what = fmt("n %" PRId64 " c %" PRId64 " h %" PRId64 " w %" PRId64 " k %" PRId64 "x%" PRId64 " s %" PRId64
                               ",%" PRId64 " p %" PRId64 ",%" PRId64 " dil %" PRId64 ",%" PRId64 " ceil %d incl %d nan %d ties %d",
                               d.n, d.c, d.h, d.w, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_h, d.pad_w, d.dil_h, d.dil_w,
                               d.ceil_mode, d.count_include_pad, int(nan), int(ties));
  std::vector<float> ry(ny), rdx(nx);
  std::vector<int32_t> ridx(ny);
  // max
  if (tsm_max_pool2d_forward(ry.data(), ridx.data(), x.p, &d) != TSM_OK) {
    report(false, "max " + what + ": CPU reference failed: " + tsm_last_error());
    return;
  }
  y.fill(kNaN);
  idx.fill(-7);
  if (!check_status(tsm_cuda_max_pool2d_forward(y.p, idx.p, x.p, &d), "max forward " + what)) return;
  std::string e = compare_exact(y.p, ry.data(), ny);
  if (e.empty()) e = compare_i32(idx.p, ridx.data(), ny);
  report(e.empty(), "max forward " + what + ": " + e);
  tsm_pool2d_shape sh{d.n, d.c, d.h, d.w, oh, ow};
  if (tsm_max_pool2d_backward(rdx.data(), dy.p, ridx.data(), &sh) == TSM_OK) {
    dx.fill(kNaN);
    if (!check_status(tsm_cuda_max_pool2d_backward(dx.p, dy.p, ridx.data(), &d), "max backward " + what)) return;
    e = compare_exact(dx.p, rdx.data(), nx);
    report(e.empty(), "max backward " + what + ": " + e);
  }
  // average (no dilation)
  if (d.dil_h != 1 || d.dil_w != 1) return;
  if (tsm_avg_pool2d_forward(ry.data(), x.p, &d) != TSM_OK) {
    report(false, "avg " + what + ": CPU reference failed: " + tsm_last_error());
    return;
  }
  y.fill(kNaN);
  if (!check_status(tsm_cuda_avg_pool2d_forward(y.p, x.p, &d), "avg forward " + what)) return;
  e = compare_exact(y.p, ry.data(), ny);
  report(e.empty(), "avg forward " + what + ": " + e);
  if (tsm_avg_pool2d_backward(rdx.data(), dy.p, &d) != TSM_OK) return;
  dx.fill(kNaN);
  if (!check_status(tsm_cuda_avg_pool2d_backward(dx.p, dy.p, &d), "avg backward " + what)) return;
  e = compare_exact(dx.p, rdx.data(), nx);
  report(e.empty(), "avg backward " + what + ": " + e);
}

void test_pool() {
  pool_case({2, 3, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, 0, 1}, false, false);
  pool_case({1, 2, 7, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0}, true, false);
  pool_case({1, 1, 9, 9, 3, 3, 2, 2, 1, 1, 2, 2, 1, 1}, false, true);
  pool_case({1, 1, 5, 5, 2, 2, 3, 3, 1, 1, 3, 3, 1, 1}, false, false);  // dilation: all-padding windows possible
  pool_case({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1}, false, false);
  // All-padding windows (h = 1, dilation 2): every window's index is element 5 of its plane, which
  // is none of its taps. dx[5] must be the CPU's sum in window order, ((1 + 1e8) - 1e8) = 0; the
  // atomic pass that added such indices summed them in whatever order threads ran (1 ulp off the
  // CPU, not reproducible; here 1 instead of 0).
  for (int rep = 0; rep < 12; ++rep) {
    new_cap();
    const tsm_pool2d_desc d{1, 8, 1, 6, 2, 2, 3, 3, 1, 1, 2, 1, 1, 1};
    Buf<float> x(48), dy(24), dx(48);
    Buf<int32_t> idx(24);
    x.randomize();
    for (int i = 0; i < 24; ++i) dy[size_t(i)] = i % 3 == 0 ? 1.f : i % 3 == 1 ? 1e8f : -1e8f;
    std::vector<float> ry(24), rdx(48);
    std::vector<int32_t> ridx(24);
    tsm_pool2d_shape sh{1, 8, 1, 6, 1, 3};
    std::string e;
    if (tsm_max_pool2d_forward(ry.data(), ridx.data(), x.p, &d) != TSM_OK || tsm_pool2d_output_size(6, 2, 3, 1, 1, 1) != 3 ||
        tsm_max_pool2d_backward(rdx.data(), dy.p, ridx.data(), &sh) != TSM_OK)
      e = "CPU reference failed";
    if (e.empty() && check_status(tsm_cuda_max_pool2d_forward(dx.p, idx.p, x.p, &d), "stray forward")) {
      e = compare_i32(idx.p, ridx.data(), 24);
      dx.fill(kNaN);
      if (e.empty() && check_status(tsm_cuda_max_pool2d_backward(dx.p, dy.p, idx.p, &d), "stray backward"))
        e = compare_exact(dx.p, rdx.data(), 48);
    }
    report(e.empty(), "max backward, all-padding windows (h 1 w 6 k 2x2 s 3 p 1 dil 2,1 ceil): " + e);
  }
  const int n = g_full ? 150 : 30;
  for (int i = 0; i < n; ++i) {
    tsm_pool2d_desc d{};
    d.n = irand(1, 2);
    d.c = irand(1, 3);
    d.h = irand(1, 10);
    d.w = irand(1, 10);
    d.kh = irand(1, 4);
    d.kw = irand(1, 4);
    d.stride_h = irand(1, 3);
    d.stride_w = irand(1, 3);
    d.pad_h = irand(0, d.kh / 2);
    d.pad_w = irand(0, d.kw / 2);
    d.dil_h = irand(0, 2) == 0 ? irand(2, 3) : 1;
    d.dil_w = irand(0, 2) == 0 ? irand(2, 3) : 1;
    d.ceil_mode = int32_t(irand(0, 1));
    d.count_include_pad = int32_t(irand(0, 1));
    pool_case(d, irand(0, 3) == 0, irand(0, 2) == 0);
  }
}

// =============================================================================================
// Optimizers (optim.cu): SGD and Adam/AdamW, many tensors (more than 32: several launches), sizes
// 0, 1, odd, > 4096 (several chunks), bit-exact against the CPU kernels.
void optim_case(int count, bool adam, int variant) {
  new_cap();
  std::vector<int64_t> sizes(Z(count));
  for (auto& s : sizes) s = pick<int64_t>({0, 1, 3, 4, 17, 100, 4096, 4097, 9000});
  std::vector<std::unique_ptr<Buf<float>>> p, m, v, vm, g;
  std::vector<std::vector<float>> rp, rm, rv, rvm;
  std::vector<float*> pp, mp, vp, vmp, rpp, rmp, rvp, rvmp;
  std::vector<const float*> gp;
  for (int i = 0; i < count; ++i) {
    const size_t n = size_t(sizes[size_t(i)]);
    p.push_back(std::make_unique<Buf<float>>(n, mis(true)));
    m.push_back(std::make_unique<Buf<float>>(n));
    v.push_back(std::make_unique<Buf<float>>(n));
    vm.push_back(std::make_unique<Buf<float>>(n));
    g.push_back(std::make_unique<Buf<float>>(n));
    p.back()->randomize();
    m.back()->randomize(-0.1f, 0.1f);
    v.back()->randomize(0.f, 0.01f);
    vm.back()->randomize(0.f, 0.01f);
    g.back()->randomize();
    rp.push_back(p.back()->vec());
    rm.push_back(m.back()->vec());
    rv.push_back(v.back()->vec());
    rvm.push_back(vm.back()->vec());
  }
  for (int i = 0; i < count; ++i) {
    pp.push_back(p[size_t(i)]->p);
    mp.push_back(m[size_t(i)]->p);
    vp.push_back(v[size_t(i)]->p);
    vmp.push_back(vm[size_t(i)]->p);
    gp.push_back(g[size_t(i)]->p);
    rpp.push_back(rp[size_t(i)].data());
    rmp.push_back(rm[size_t(i)].data());
    rvp.push_back(rv[size_t(i)].data());
    rvmp.push_back(rvm[size_t(i)].data());
  }
  std::string what;
  tsm_status sc, sg;
  if (!adam) {
    const double lr = 0.1, mom = variant & 1 ? 0.9 : 0.0, damp = variant & 2 ? 0.1 : 0.0, wd = variant & 4 ? 0.01 : 0.0;
    const int nest = (variant & 8) && mom != 0 && damp == 0, maxi = variant & 16 ? 1 : 0, first = variant & 32 ? 1 : 0;
    what = fmt("sgd tensors %d momentum %g dampening %g wd %g nesterov %d maximize %d first %d", count, mom, damp, wd, nest,
               maxi, first);
    sc = tsm_sgd_step(rpp.data(), mom != 0 ? rmp.data() : nullptr, gp.data(), sizes.data(), count, lr, mom, damp, wd, nest,
                      maxi, first);
    sg = tsm_cuda_sgd_step(pp.data(), mom != 0 ? mp.data() : nullptr, gp.data(), sizes.data(), count, lr, mom, damp, wd, nest,
                           maxi, first);
  } else {
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = variant & 1 ? 0.01 : 0.0;
    const int64_t step = variant & 2 ? 1 : 7;
    const int ams = variant & 4 ? 1 : 0, dec = variant & 8 ? 1 : 0, maxi = variant & 16 ? 1 : 0;
    what = fmt("adam tensors %d wd %g step %" PRId64 " amsgrad %d decoupled %d maximize %d", count, wd, step, ams, dec, maxi);
    sc = tsm_adam_step(rpp.data(), rmp.data(), rvp.data(), ams ? rvmp.data() : nullptr, gp.data(), sizes.data(), count, lr, b1,
                       b2, eps, wd, step, ams, dec, maxi);
    sg = tsm_cuda_adam_step(pp.data(), mp.data(), vp.data(), ams ? vmp.data() : nullptr, gp.data(), sizes.data(), count, lr,
                            b1, b2, eps, wd, step, ams, dec, maxi);
  }
  if (sc != TSM_OK) {
    report(false, what + ": CPU reference failed: " + tsm_last_error());
    return;
  }
  if (!check_status(sg, what)) return;
  std::string e;
  for (int i = 0; i < count && e.empty(); ++i) {
    const size_t n = size_t(sizes[size_t(i)]);
    e = compare_exact(p[size_t(i)]->p, rp[size_t(i)].data(), n);
    if (e.empty()) e = compare_exact(m[size_t(i)]->p, rm[size_t(i)].data(), n);
    if (e.empty() && adam) e = compare_exact(v[size_t(i)]->p, rv[size_t(i)].data(), n);
    if (e.empty() && adam) e = compare_exact(vm[size_t(i)]->p, rvm[size_t(i)].data(), n);
    if (!e.empty()) e = fmt("tensor %d (size %zu): ", i, n) + e;
  }
  report(e.empty(), what + ": " + e);
}

void test_optim() {
  for (int v = 0; v < 64; v += g_full ? 1 : 7) optim_case(int(irand(1, 5)), false, v);
  for (int v = 0; v < 32; v += g_full ? 1 : 5) optim_case(int(irand(1, 5)), true, v);
  optim_case(40, false, 1 | 32);  // > 32 tensors: two launches
  optim_case(35, true, 4);
  optim_case(0, true, 0);
}

// =============================================================================================
// Pointwise (pointwise.cu): the 16 unary ops forward/backward, the 13 binary ops same-shape,
// scalar (both orders) and broadcast (rank up to 8, stride-0 dims), fill, casts; sizes around the
// float4/tail split, misaligned pointers, NaN and inf inputs; against the CPU kernels.
void test_pointwise() {
  const std::vector<int64_t> sizes = {0, 1, 3, 4, 7, 8, 1023, 1025};
  for (int op = 0; op < 16; ++op)
    for (int64_t n : sizes) {
      if (!g_full && n > 8 && (op % 3)) continue;
      new_cap();
      Buf<float> x(Z(n), mis(true)), y(Z(n), mis(true)), dy(Z(n), mis(true)), dx(Z(n), mis(true));
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] = (op == 6 || op == 7 || op == 15) ? frand(-0.2f, 3.f) : frand(-4.f, 4.f);
      if (n > 2) { x[0] = kNaN; x[1] = INFINITY; x[2] = -0.f; }
      dy.randomize();
      y.fill(kNaN);
      dx.fill(kNaN);
      std::vector<float> ry(Z(n)), rdx(Z(n));
      tsm_unary_forward(op, ry.data(), x.p, n);
      const std::string what = fmt("unary op %d n %" PRId64 " offsets %zu/%zu", op, n, x.off, y.off);
      // In place (y = x, dx = dy) for a third of the cases.
      const bool alias = irand(0, 2) == 0;
      if (alias) std::memcpy(y.p, x.p, size_t(n) * 4);
      if (!check_status(tsm_cuda_unary_forward(op, y.p, alias ? y.p : x.p, n), what)) continue;
      std::string e = compare(y.p, ry, 1e-6, 2e-6);
      report(e.empty(), "forward " + what + (alias ? " in place" : "") + ": " + e);
      tsm_unary_backward(op, rdx.data(), x.p, ry.data(), dy.p, n);
      if (alias) std::memcpy(dx.p, dy.p, size_t(n) * 4);
      if (!check_status(tsm_cuda_unary_backward(op, dx.p, x.p, ry.data(), alias ? dx.p : dy.p, n), "backward " + what)) continue;
      e = compare(dx.p, rdx, 1e-6, 2e-6);
      report(e.empty(), "backward " + what + (alias ? " in place" : "") + ": " + e);
    }
  for (int op = 0; op < 13; ++op)
    for (int64_t n : sizes) {
      if (!g_full && n > 8 && (op % 3)) continue;
      new_cap();
      Buf<float> a(Z(n), mis(true)), b(Z(n), mis(true)), out(Z(n), mis(true));
      for (int64_t i = 0; i < n; ++i) {
        a[size_t(i)] = float(irand(-3, 3)) * (irand(0, 1) ? 1.f : 0.5f);
        b[size_t(i)] = irand(0, 3) ? frand(-3.f, 3.f) : a[size_t(i)];
      }
      if (n > 3) { a[0] = kNaN; b[1] = kNaN; b[2] = 0.f; a[3] = -INFINITY; }
      std::vector<float> ref(Z(n));
      const int64_t shp = n, st = 1;
      tsm_binary_forward(op, ref.data(), a.p, b.p, 1, &shp, &st, &st);
      out.fill(kNaN);
      const std::string what = fmt("binary op %d n %" PRId64 " offsets %zu/%zu/%zu", op, n, a.off, b.off, out.off);
      const int alias = int(irand(0, 2));  // 0: out separate, 1: out = a, 2: out = b
      if (alias) std::memcpy(out.p, alias == 1 ? a.p : b.p, size_t(n) * 4);
      if (!check_status(tsm_cuda_binary_same(op, out.p, alias == 1 ? out.p : a.p, alias == 2 ? out.p : b.p, n), what)) continue;
      std::string e = compare(out.p, ref, 1e-6, 2e-6);
      report(e.empty(), "same " + what + (alias ? fmt(" in place (out = %s)", alias == 1 ? "a" : "b") : "") + ": " + e);
      for (int rev = 0; rev < 2; ++rev) {
        const float s = pick<float>({2.f, -0.5f, 0.f, kNaN});
        tsm_scalar_forward(op, ref.data(), a.p, s, rev, n);
        out.fill(kNaN);
        if (!check_status(tsm_cuda_scalar_forward(op, out.p, a.p, s, rev, n), "scalar " + what)) continue;
        e = compare(out.p, ref, 1e-6, 2e-6);
        report(e.empty(), fmt("scalar %g reverse %d ", double(s), rev) + what + ": " + e);
      }
    }
  // Broadcasting.
  const int nb = g_full ? 120 : 30;
  for (int it = 0; it < nb; ++it) {
    new_cap();
    const int nd = int(irand(0, 8));
    std::vector<int64_t> shape(Z(nd)), sa(Z(nd)), sb(Z(nd));
    int64_t total = 1;
    for (int d = 0; d < nd; ++d) {
      shape[size_t(d)] = nd > 5 ? irand(1, 3) : pick<int64_t>({1, 2, 3, 5, 7});
      if (irand(0, 15) == 0) shape[size_t(d)] = 0;
      total *= shape[size_t(d)];
    }
    int64_t na = 1, nbb = 1;
    for (int d = nd - 1; d >= 0; --d) {
      const bool ba = irand(0, 2) == 0, bb = irand(0, 2) == 0;
      sa[size_t(d)] = ba ? 0 : na;
      sb[size_t(d)] = bb ? 0 : nbb;
      if (!ba) na *= shape[size_t(d)];
      if (!bb) nbb *= shape[size_t(d)];
    }
    const int op = int(irand(0, 12));
    Buf<float> a(Z(total ? na : 0), mis(true)), b(Z(total ? nbb : 0), mis(true)), out(Z(total), mis(true));
    a.randomize(-2.f, 2.f);
    b.randomize(-2.f, 2.f);
    std::vector<float> ref(Z(total));
    tsm_binary_forward(op, ref.data(), a.p, b.p, nd, shape.data(), sa.data(), sb.data());
    out.fill(kNaN);
    std::string sh;
    for (int d = 0; d < nd; ++d) sh += fmt("%" PRId64 "(%" PRId64 ",%" PRId64 ") ", shape[size_t(d)], sa[size_t(d)], sb[size_t(d)]);
    const std::string what = fmt("broadcast op %d shape(strides a,b) %s", op, sh.c_str());
    if (!check_status(tsm_cuda_binary_forward(op, out.p, a.p, b.p, nd, shape.data(), sa.data(), sb.data()), what)) continue;
    std::string e = compare(out.p, ref, 1e-6, 2e-6);
    report(e.empty(), what + ": " + e);
  }
  // fill and casts
  for (int64_t n : sizes) {
    new_cap();
    Buf<float> f(Z(n), mis(true));
    Buf<int32_t> iv(Z(n), mis(true));
    f.fill(kNaN);
    std::string e;
    if (check_status(tsm_cuda_fill32(f.p, 0x3fc00000u, n), fmt("fill32 n %" PRId64, n)))
      for (int64_t i = 0; i < n && e.empty(); ++i)
        if (f[size_t(i)] != 1.5f) e = fmt("fill32[%" PRId64 "] = %g", i, double(f[size_t(i)]));
    for (int64_t i = 0; i < n; ++i) f[size_t(i)] = pick<float>({2.7f, -2.7f, kNaN, INFINITY, 3e9f, -0.5f, 4294967296.f + 512.f});
    if (e.empty() && check_status(tsm_cuda_cast_f32_i32(iv.p, f.p, n), "cast f32 i32"))
      for (int64_t i = 0; i < n && e.empty(); ++i) {
        const float v = f[size_t(i)];
        int32_t want = 0;
        if (std::isfinite(v)) {
          const double t = std::trunc(double(v));
          const double m = std::fmod(t, 4294967296.0);
          want = int32_t(uint32_t(int64_t(m < 0 ? m + 4294967296.0 : m)));
        }
        if (iv[size_t(i)] != want) e = fmt("cast_f32_i32(%.9g) = %d, want %d", double(v), iv[size_t(i)], want);
      }
    for (int64_t i = 0; i < n; ++i) iv[size_t(i)] = int32_t(irand(INT32_MIN, INT32_MAX));
    if (e.empty() && check_status(tsm_cuda_cast_i32_f32(f.p, iv.p, n), "cast i32 f32"))
      for (int64_t i = 0; i < n && e.empty(); ++i)
        if (f[size_t(i)] != float(iv[size_t(i)])) e = fmt("cast_i32_f32(%d) = %.9g", iv[size_t(i)], double(f[size_t(i)]));
    report(e.empty(), fmt("fill/cast n %" PRId64 ": ", n) + e);
  }
}

// =============================================================================================
// Strided copies (layout.cu): permutes (the tiled transpose and the general kernel), expands
// (stride 0), slices with offsets, strided destinations, rank 0..8, int32 elements.
void test_layout() {
  const int n = g_full ? 150 : 40;
  for (int it = 0; it < n; ++it) {
    new_cap();
    const int nd = int(irand(0, it % 5 == 0 ? 8 : 4));
    std::vector<int64_t> shape(Z(nd));
    int64_t total = 1;
    for (int d = 0; d < nd; ++d) {
      shape[size_t(d)] = nd > 4 ? irand(1, 3) : pick<int64_t>({1, 2, 3, 31, 32, 33, 40});
      if (irand(0, 30) == 0) shape[size_t(d)] = 0;
      total *= shape[size_t(d)];
    }
    if (total > 60000) continue;
    // Source: a contiguous parent of a padded shape, permuted, sliced (offset), some dims expanded.
    std::vector<int64_t> parent(Z(nd)), perm(Z(nd));
    for (int d = 0; d < nd; ++d) {
      parent[size_t(d)] = shape[size_t(d)] + (irand(0, 3) == 0 ? irand(1, 3) : 0);
      perm[size_t(d)] = d;
    }
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<int64_t> pstride(Z(nd));
    int64_t ps = 1, span = 1;
    for (int d = nd - 1; d >= 0; --d) {
      pstride[size_t(perm[size_t(d)])] = ps;
      ps *= parent[size_t(perm[size_t(d)])];
    }
    span = ps;
    std::vector<int64_t> sst(Z(nd));
    int64_t soff = 0;
    for (int d = 0; d < nd; ++d) {
      const bool expand = shape[size_t(d)] > 0 && irand(0, 5) == 0;
      sst[size_t(d)] = expand ? 0 : pstride[size_t(d)];
      const int64_t slack = parent[size_t(d)] - shape[size_t(d)];
      if (!expand && slack > 0) soff += irand(0, slack) * pstride[size_t(d)];
    }
    // Destination: contiguous (NULL strides) or a strided view of a larger buffer with an offset.
    const bool dst_contig = irand(0, 1);
    std::vector<int64_t> dst(Z(nd));
    int64_t dspan = 1;
    for (int d = nd - 1; d >= 0; --d) {
      dst[size_t(d)] = dspan;
      dspan *= shape[size_t(d)] + (dst_contig ? 0 : irand(0, 1));
    }
    const int64_t doff = dst_contig ? 0 : irand(0, 3);
    const bool i32 = irand(0, 1);
    Buf<float> s(Z(total ? span : 0), mis(true)), o(Z(total ? dspan + doff : 0), mis(true));
    s.randomize();
    if (i32)
      for (size_t i = 0; i < s.n; ++i) { const int32_t v = int32_t(irand(-1000000, 1000000)); std::memcpy(&s[i], &v, 4); }
    o.fill(kSentinel);
    std::vector<float> want = o.vec();
    std::vector<int64_t> idx(Z(nd), 0);
    for (int64_t e = 0; e < total; ++e) {
      int64_t so = soff, dof = doff;
      for (int d = 0; d < nd; ++d) {
        so += idx[size_t(d)] * sst[size_t(d)];
        dof += idx[size_t(d)] * dst[size_t(d)];
      }
      want[size_t(dof)] = s[size_t(so)];
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[size_t(d)] < shape[size_t(d)]) break;
        idx[size_t(d)] = 0;
      }
    }
    std::string sh;
    for (int d = 0; d < nd; ++d)
      sh += fmt("%" PRId64 "(%" PRId64 "->%" PRId64 ") ", shape[size_t(d)], sst[size_t(d)], dst[size_t(d)]);
    const std::string what = fmt("strided copy %s src offset %" PRId64 " dst offset %" PRId64 "%s", sh.c_str(), soff, doff,
                                 dst_contig ? " (dst contiguous)" : "");
    if (!check_status(tsm_cuda_strided_copy(o.p, doff, dst_contig ? nullptr : dst.data(), s.p, soff, sst.data(), nd,
                                            shape.data()),
                      what))
      continue;
    std::string e = compare_exact(o.p, want.data(), o.n);
    report(e.empty(), what + ": " + e);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "full") g_full = true;
    else if (a != "quick") only.push_back(a);
  }
  struct Entry { const char* name; void (*fn)(); };
  const Entry entries[] = {{"sgemm", test_sgemm}, {"conv", test_conv}, {"cross_entropy", test_cross_entropy},
                           {"reduce", test_reduce}, {"softmax", test_softmax}, {"pool", test_pool},
                           {"optim", test_optim}, {"pointwise", test_pointwise}, {"layout", test_layout}};
  bool all = true;
  for (const Entry& en : entries) {
    if (!only.empty() && std::find(only.begin(), only.end(), en.name) == only.end()) continue;
    Group g{en.name};
    g_group = &g;
    const auto t0 = std::chrono::steady_clock::now();
    en.fn();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %-14s %4d cases, %d failed (%.1f s)\n", g.failed ? "FAIL" : "ok  ", g.name, g.cases, g.failed, secs);
    std::fflush(stdout);
    all = all && g.failed == 0;
  }
  if (tsm_emu::live_allocations() != 0) {
    std::printf("FAIL %lld device allocations were not freed\n", (long long)tsm_emu::live_allocations());
    all = false;
  }
  std::printf("%s\n", all ? "OK" : "FAILED");
  return all ? 0 : 1;
}
