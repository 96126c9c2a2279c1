// Host emulation of cuda/lstm.cu and cuda/index.cu (run by test/cuda-seq-emu.test.ts).
//
// The two .cu files are compiled as C++ with TSM_SEQ_EMULATE (test/emu/seq_emu_shim.h: every
// (block, thread) of a launch runs in turn, the grid capped at 3 blocks so the grid-stride loops
// iterate; device memory is host memory). Their C entry points are called here exactly as the
// binding calls them, with NaN-poisoned outputs, and compared with float64 references: the LSTM
// forward (y, h_n, c_n, saved gates and cs) and backward through time (every gradient, with and
// without h0/c0, biases, dy/dh_n/dc_n, batch_first, T = 0, B = 0); gather, index_select (negative
// and out-of-range indices), their atomic-free backward (bit-identical to the CPU's sequential
// scatter-add), and where with broadcasting and float/int conditions (-0 is false, NaN true).
// Also checks that every scratch allocation is returned. Prints "OK" last when everything passed.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "seq_emu_shim.h"

// ---- the other files' kernels the entry points call: plain host loops ----
extern "C" tsm_status tsm_cuda_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.f;
      for (int64_t p = 0; p < k; ++p) s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = beta == 0.f ? alpha * s : alpha * s + beta * c[i * ldc + j];
    }
  return TSM_OK;
}
extern "C" tsm_status tsm_cuda_sum(float* out, const float* x, int64_t outer, int64_t dim, int64_t inner, float divisor) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      float s = 0.f;
      for (int64_t d = 0; d < dim; ++d) s += x[(o * dim + d) * inner + i];
      out[o * inner + i] = s / divisor;
    }
  return TSM_OK;
}

static int failures = 0;
static std::mt19937 rng(1234);

static std::vector<float> rand_vec(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
static std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::nanf("")); }

static void expect_close(const char* what, const float* got, const std::vector<double>& want, double rtol, double atol) {
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      std::printf("FAIL %s: element %zu is %.9g, expected %.9g\n", what, i, g, w);
      ++failures;
      return;
    }
  }
}
static void expect_status(const char* what, tsm_status s) {
  if (s != TSM_OK) {
    std::printf("FAIL %s: status %d (%s)\n", what, int(s), emu_last_error);
    ++failures;
  }
}

// ---- LSTM: float64 reference ----
struct LstmCase {
  int64_t T, B, I, H;
  bool bf, state, bias, dy, dhn, dcn;
};

static double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

static void lstm_case(const LstmCase& k) {
  char name[160];
  std::snprintf(name, sizeof name, "lstm T=%lld B=%lld I=%lld H=%lld bf=%d state=%d bias=%d dy=%d dhn=%d dcn=%d",
                (long long)k.T, (long long)k.B, (long long)k.I, (long long)k.H, k.bf, k.state, k.bias, k.dy, k.dhn, k.dcn);
  const int64_t T = k.T, B = k.B, I = k.I, H = k.H, G = 4 * H;
  auto row = [&](int64_t t, int64_t b) { return k.bf ? b * T + t : t * B + b; };
  const float s = 1.f / std::sqrt(float(H));
  auto x = rand_vec(T * B * I), h0 = rand_vec(B * H), c0 = rand_vec(B * H);
  auto wih = rand_vec(G * I, -s, s), whh = rand_vec(G * H, -s, s), bih = rand_vec(G, -s, s), bhh = rand_vec(G, -s, s);
  auto y = poisoned(T * B * H), hn = poisoned(B * H), cn = poisoned(B * H), gates = poisoned(T * B * G),
       cs = poisoned(T * B * H);
  const float* H0 = k.state ? h0.data() : nullptr;
  const float* C0 = k.state ? c0.data() : nullptr;
  const float* BI = k.bias ? bih.data() : nullptr;
  const float* BH = k.bias ? bhh.data() : nullptr;
  expect_status(name, tsm_cuda_lstm_forward(y.data(), hn.data(), cn.data(), gates.data(), cs.data(), x.data(), H0, C0,
                                            wih.data(), whh.data(), BI, BH, T, B, I, H, k.bf));
  // Reference forward, keeping activations and states.
  std::vector<double> ry(T * B * H), rc(T * B * H), ract(T * B * G), rhn(B * H), rcn(B * H);
  std::vector<double> h(B * H), c(B * H);
  for (int64_t i = 0; i < B * H; ++i) {
    h[i] = k.state ? h0[i] : 0.0;
    c[i] = k.state ? c0[i] : 0.0;
  }
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> hnew(B * H), cnew(B * H);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t r = row(t, b);
      std::vector<double> pre(G);
      for (int64_t q = 0; q < G; ++q) {
        double v = k.bias ? double(bih[q]) + bhh[q] : 0.0;
        for (int64_t p = 0; p < I; ++p) v += double(x[r * I + p]) * wih[q * I + p];
        for (int64_t p = 0; p < H; ++p) v += h[b * H + p] * whh[q * H + p];
        pre[q] = v;
      }
      for (int64_t j = 0; j < H; ++j) {
        const double ig = sig(pre[j]), fg = sig(pre[H + j]), gg = std::tanh(pre[2 * H + j]), og = sig(pre[3 * H + j]);
        const double cv = fg * c[b * H + j] + ig * gg;
        cnew[b * H + j] = cv;
        hnew[b * H + j] = og * std::tanh(cv);
        ract[r * G + j] = ig;
        ract[r * G + H + j] = fg;
        ract[r * G + 2 * H + j] = gg;
        ract[r * G + 3 * H + j] = og;
        ry[r * H + j] = hnew[b * H + j];
        rc[r * H + j] = cv;
      }
    }
    h = hnew;
    c = cnew;
  }
  rhn = h;
  rcn = c;
  char what[220];
  auto chk = [&](const char* part, const float* got, const std::vector<double>& want, double tol) {
    std::snprintf(what, sizeof what, "%s: %s", name, part);
    expect_close(what, got, want, tol, tol);
  };
  chk("y", y.data(), ry, 2e-5);
  chk("h_n", hn.data(), rhn, 2e-5);
  chk("c_n", cn.data(), rcn, 2e-5);
  chk("gates (activations)", gates.data(), ract, 2e-5);
  chk("cs", cs.data(), rc, 2e-5);

  // Backward.
  auto dy = rand_vec(T * B * H), dhn = rand_vec(B * H), dcn = rand_vec(B * H);
  auto dx = poisoned(T * B * I), dh0 = poisoned(B * H), dc0 = poisoned(B * H), dwih = poisoned(G * I),
       dwhh = poisoned(G * H), dbih = poisoned(G), dbhh = poisoned(G);
  expect_status(name, tsm_cuda_lstm_backward(dx.data(), dh0.data(), dc0.data(), dwih.data(), dwhh.data(), dbih.data(),
                                             dbhh.data(), k.dy ? dy.data() : nullptr, k.dhn ? dhn.data() : nullptr,
                                             k.dcn ? dcn.data() : nullptr, x.data(), H0, C0, wih.data(), whh.data(),
                                             y.data(), gates.data(), cs.data(), T, B, I, H, k.bf));
  std::vector<double> rdx(T * B * I, 0.0), rdwih(G * I, 0.0), rdwhh(G * H, 0.0), rdb(G, 0.0);
  std::vector<double> dh(B * H), dc(B * H);
  for (int64_t i = 0; i < B * H; ++i) {
    dh[i] = k.dhn ? dhn[i] : 0.0;
    dc[i] = k.dcn ? dcn[i] : 0.0;
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    std::vector<double> dhp(B * H, 0.0), dcp(B * H, 0.0);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t r = row(t, b);
      std::vector<double> dG(G);
      for (int64_t j = 0; j < H; ++j) {
        const double ig = ract[r * G + j], fg = ract[r * G + H + j], gg = ract[r * G + 2 * H + j],
                     og = ract[r * G + 3 * H + j];
        const double cv = rc[r * H + j];
        const double cprev = t > 0 ? rc[row(t - 1, b) * H + j] : (k.state ? c0[b * H + j] : 0.0);
        const double dht = dh[b * H + j] + (k.dy ? dy[r * H + j] : 0.0);
        const double tc = std::tanh(cv);
        const double dct = dc[b * H + j] + dht * og * (1 - tc * tc);
        dG[j] = dct * gg * ig * (1 - ig);
        dG[H + j] = dct * cprev * fg * (1 - fg);
        dG[2 * H + j] = dct * ig * (1 - gg * gg);
        dG[3 * H + j] = dht * tc * og * (1 - og);
        dcp[b * H + j] = dct * fg;
      }
      for (int64_t q = 0; q < G; ++q) {
        rdb[q] += dG[q];
        for (int64_t p = 0; p < I; ++p) {
          rdwih[q * I + p] += dG[q] * x[r * I + p];
          rdx[r * I + p] += dG[q] * wih[q * I + p];
        }
        for (int64_t p = 0; p < H; ++p) {
          const double hp = t > 0 ? ry[row(t - 1, b) * H + p] : (k.state ? h0[b * H + p] : 0.0);
          rdwhh[q * H + p] += dG[q] * hp;
          dhp[b * H + p] += dG[q] * whh[q * H + p];
        }
      }
    }
    dh = dhp;
    dc = dcp;
  }
  if (T == 0) {  // nothing flows: dh0/dc0 are dh_n/dc_n
    for (int64_t i = 0; i < B * H; ++i) {
      dh[i] = k.dhn ? dhn[i] : 0.0;
      dc[i] = k.dcn ? dcn[i] : 0.0;
    }
  }
  chk("dx", dx.data(), rdx, 1e-4);
  chk("dh0", dh0.data(), dh, 1e-4);
  chk("dc0", dc0.data(), dc, 1e-4);
  chk("dw_ih", dwih.data(), rdwih, 1e-4);
  chk("dw_hh", dwhh.data(), rdwhh, 1e-4);
  chk("db_ih", dbih.data(), rdb, 1e-4);
  chk("db_hh", dbhh.data(), rdb, 1e-4);
  // Only dw_hh wanted (others NULL): the same dw_hh.
  auto dwhh2 = poisoned(G * H);
  expect_status(name, tsm_cuda_lstm_backward(nullptr, nullptr, nullptr, nullptr, dwhh2.data(), nullptr, nullptr,
                                             k.dy ? dy.data() : nullptr, k.dhn ? dhn.data() : nullptr,
                                             k.dcn ? dcn.data() : nullptr, x.data(), H0, C0, wih.data(), whh.data(),
                                             y.data(), gates.data(), cs.data(), T, B, I, H, k.bf));
  chk("dw_hh alone", dwhh2.data(), rdwhh, 1e-4);
}

// ---- index ops ----
static std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}
static int64_t count_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}
static bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

static void gather_case(std::vector<int64_t> xs, std::vector<int64_t> is, int dim) {
  char name[128];
  std::snprintf(name, sizeof name, "gather rank %zu dim %d", xs.size(), dim);
  const int64_t nx = count_of(xs), ni = count_of(is);
  auto x = rand_vec(nx);
  std::vector<int32_t> idx(ni);
  std::uniform_int_distribution<int> d(0, int(xs[dim]) - 1);
  for (auto& v : idx) v = d(rng);
  if (ni > 2) idx[1] = int32_t(xs[dim]);  // out of range: the NaN bits, no read
  auto out = poisoned(ni);
  expect_status(name, tsm_cuda_gather(out.data(), x.data(), idx.data(), int(xs.size()), xs.data(), is.data(), dim));
  const auto xst = strides_of(xs), ist = strides_of(is);
  std::vector<float> dy = rand_vec(ni), want_dx(nx, 0.f);
  for (int64_t e = 0; e < ni; ++e) {
    int64_t off = 0, rem = e;
    for (size_t kk = 0; kk < is.size(); ++kk) {
      const int64_t p = rem / ist[kk];
      rem %= ist[kk];
      off += (int(kk) == dim ? idx[e] : p) * xst[kk];
    }
    const bool bad = idx[e] < 0 || idx[e] >= xs[dim];
    const float want = bad ? __uint_as_float(0x7FC00000u) : x[off];
    if (!same_bits(out[e], want)) {
      std::printf("FAIL %s: out[%lld] = %g, expected %g\n", name, (long long)e, out[e], want);
      ++failures;
      return;
    }
    if (!bad) want_dx[off] += dy[e];  // the CPU's scatter-add order
  }
  // The backward with in-range indices only.
  if (ni > 2) idx[1] = 0;
  std::fill(want_dx.begin(), want_dx.end(), 0.f);
  for (int64_t e = 0; e < ni; ++e) {
    int64_t off = 0, rem = e;
    for (size_t kk = 0; kk < is.size(); ++kk) {
      const int64_t p = rem / ist[kk];
      rem %= ist[kk];
      off += (int(kk) == dim ? idx[e] : p) * xst[kk];
    }
    want_dx[off] += dy[e];
  }
  auto dx = poisoned(nx);
  expect_status(name, tsm_cuda_gather_backward(dx.data(), dy.data(), idx.data(), int(xs.size()), xs.data(), is.data(), dim));
  for (int64_t e = 0; e < nx; ++e)
    if (!same_bits(dx[e], want_dx[e])) {
      std::printf("FAIL %s backward: dx[%lld] = %.9g, expected %.9g (bit-identical)\n", name, (long long)e, dx[e],
                  want_dx[e]);
      ++failures;
      return;
    }
}

static void index_select_case(int64_t outer, int64_t n, int64_t inner, std::vector<int32_t> idx) {
  char name[128];
  std::snprintf(name, sizeof name, "index_select outer %lld n %lld inner %lld k %zu", (long long)outer, (long long)n,
                (long long)inner, idx.size());
  const int64_t k = int64_t(idx.size());
  auto x = rand_vec(outer * n * inner);
  auto out = poisoned(outer * k * inner);
  expect_status(name, tsm_cuda_index_select(out.data(), x.data(), idx.data(), outer, n, k, inner));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < inner; ++j) {
        const int64_t r = idx[i] < 0 ? idx[i] + n : idx[i];
        const float want = r >= 0 && r < n ? x[(o * n + r) * inner + j] : __uint_as_float(0x7FC00000u);
        const float got = out[(o * k + i) * inner + j];
        if (!same_bits(got, want)) {
          std::printf("FAIL %s: out (%lld, %lld, %lld) = %g, expected %g\n", name, (long long)o, (long long)i,
                      (long long)j, got, want);
          ++failures;
          return;
        }
      }
  // Backward over the in-range indices: CSR built as lib/cuda-seq.ts indexRows does.
  std::vector<int32_t> ok;
  for (int32_t v : idx)
    if (v >= -n && v < n) ok.push_back(v);
  const int64_t kk = int64_t(ok.size());
  std::vector<int32_t> rs(n + 1, 0), pos(kk);
  for (int32_t v : ok) rs[(v < 0 ? v + n : v) + 1]++;
  for (int64_t r = 0; r < n; ++r) rs[r + 1] += rs[r];
  std::vector<int32_t> fill(rs.begin(), rs.end() - 1);
  for (int64_t i = 0; i < kk; ++i) pos[fill[ok[i] < 0 ? ok[i] + n : ok[i]]++] = int32_t(i);
  auto dy = rand_vec(outer * kk * inner);
  std::vector<float> want(outer * n * inner, 0.f);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < kk; ++i)
      for (int64_t j = 0; j < inner; ++j) want[(o * n + (ok[i] < 0 ? ok[i] + n : ok[i])) * inner + j] += dy[(o * kk + i) * inner + j];
  auto dx = poisoned(outer * n * inner);
  expect_status(name, tsm_cuda_index_select_backward(dx.data(), dy.data(), rs.data(), pos.data(), outer, n, kk, inner));
  for (size_t e = 0; e < want.size(); ++e)
    if (!same_bits(dx[e], want[e])) {
      std::printf("FAIL %s backward: dx[%zu] = %.9g, expected %.9g (bit-identical)\n", name, e, dx[e], want[e]);
      ++failures;
      return;
    }
}

static void where_case(std::vector<int64_t> shape, std::vector<int64_t> cs, std::vector<int64_t> as,
                       std::vector<int64_t> bs, bool int_cond) {
  const int64_t n = count_of(shape);
  auto reach = [&](const std::vector<int64_t>& st) {
    int64_t r = 1;
    for (size_t d = 0; d < shape.size(); ++d) r += (shape[d] - 1) * st[d];
    return r;
  };
  std::vector<uint32_t> cond(reach(cs));
  for (size_t i = 0; i < cond.size(); ++i) {
    if (int_cond) cond[i] = uint32_t(int32_t(rng() % 3) - 1);
    else {
      const float v = i % 5 == 3 ? -0.0f : i % 7 == 2 ? std::nanf("") : (rng() % 2 ? 0.0f : 0.5f);
      std::memcpy(&cond[i], &v, 4);
    }
  }
  auto a = rand_vec(reach(as)), b = rand_vec(reach(bs));
  auto out = poisoned(n);
  expect_status("where", tsm_cuda_where(out.data(), cond.data(), int_cond, a.data(), b.data(), int(shape.size()),
                                        shape.data(), cs.data(), as.data(), bs.data()));
  std::vector<int64_t> p(shape.size(), 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t co = 0, ao = 0, bo = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      co += p[d] * cs[d];
      ao += p[d] * as[d];
      bo += p[d] * bs[d];
    }
    const bool take = int_cond ? cond[co] != 0 : __uint_as_float(cond[co]) != 0.0f;
    const float want = take ? a[ao] : b[bo];
    if (!same_bits(out[e], want)) {
      std::printf("FAIL where int=%d: out[%lld] = %g, expected %g\n", int_cond, (long long)e, out[e], want);
      ++failures;
      return;
    }
    for (size_t d = shape.size(); d-- > 0;) {
      if (++p[d] < shape[d]) break;
      p[d] = 0;
    }
  }
}

int main() {
  const LstmCase cases[] = {
      {5, 3, 4, 7, false, true, true, true, true, true},   {6, 2, 9, 5, true, true, true, true, false, true},
      {1, 4, 3, 33, false, false, false, true, true, false}, {9, 1, 1, 2, true, false, true, false, true, true},
      {4, 5, 0, 3, false, true, true, true, true, true},    {3, 70, 6, 5, true, true, false, true, true, true},
      {0, 3, 4, 5, false, true, true, true, true, true},    {0, 2, 3, 4, true, false, true, false, false, false},
      {7, 33, 17, 129, false, true, true, true, true, true},
  };
  for (const auto& k : cases) lstm_case(k);
  // B = 0: nothing to do, no failure.
  expect_status("lstm B=0", tsm_cuda_lstm_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                  nullptr, nullptr, nullptr, nullptr, 4, 0, 3, 5, 0));
  if (tsm_cuda_lstm_forward(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                            nullptr, nullptr, 4, 2, 3, 0, 0) != TSM_ERR_INVALID_ARGUMENT) {
    std::printf("FAIL lstm H=0 must be an invalid argument\n");
    ++failures;
  }
  gather_case({5, 7}, {5, 3}, 1);
  gather_case({5, 7}, {9, 7}, 0);
  gather_case({3, 4, 6}, {2, 4, 11}, 2);
  gather_case({3, 4, 6}, {3, 8, 5}, 1);
  gather_case({2, 3, 1, 4, 2, 3, 2, 2}, {2, 2, 1, 4, 2, 5, 2, 1}, 5);
  gather_case({2000}, {3001}, 0);
  index_select_case(1, 10, 7, {3, -1, 3, 0, 9, 3, 10, -11});
  index_select_case(4, 9, 5, {8, -9, 2, 2});
  index_select_case(6, 1023, 1, {5, 1022, 0, 5});
  index_select_case(3, 5, 2, {});
  index_select_case(1, 7, 1, {6, 6, 6, 1});
  for (bool ic : {false, true}) {
    where_case({7, 5}, {5, 1}, {5, 1}, {5, 1}, ic);
    where_case({3, 4, 5}, {5, 0, 1}, {0, 1, 0}, {0, 0, 1}, ic);
    where_case({1023}, {1}, {0}, {1}, ic);
    where_case({2, 4, 3, 5}, {3, 0, 1, 0}, {0, 5, 0, 1}, {60, 15, 5, 1}, ic);
    where_case({}, {}, {}, {}, ic);
  }
  if (emu_live_allocs != 0) {
    std::printf("FAIL %ld scratch allocations were not returned\n", emu_live_allocs);
    ++failures;
  }
  if (failures) {
    std::printf("%d FAILURES\n", failures);
    return 1;
  }
  std::printf("OK\n");
  return 0;
}
