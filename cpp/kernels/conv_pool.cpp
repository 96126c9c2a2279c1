// A convolution followed by max pooling (through a ReLU or not) without the convolution's output:
//
//   tsm_conv2d_max_pool2d_forward          y, indices = max_pool2d([relu](conv2d(x, w) + bias))
//   tsm_conv2d_max_pool2d_backward         dx, dw, dbias of that convolution from the pooling's dy
//   tsm_conv2d_max_pool2d_backward_weight  the same without dx
//
// For the first layer of a CNN (few input channels, many output channels), the convolution's
// output is many times its input and the layer is bound by memory: in the MNIST CNN's step, conv1
// writes 5.3 MiB that the pooling then reads, and backward the pooling scatters into a zeroed
// tensor of that size that the weight gradient then reads. Here each output plane is computed into
// a buffer that stays in L1 and pooled there; backward, each pooled gradient goes straight to the
// weight gradient from the input patch of its winner, so the full-size gradient (three quarters
// zeros under a 2x2 pooling) is never formed either. The backward serves any pooled convolution,
// its output computed by this forward or by tsm_conv2d_forward (the library takes it for a CNN's
// later layers too, where the input takes a gradient): its work is the winners', a quarter of the
// outputs' under a 2x2 pooling.
//
// The forward's work is per (image, output channel) plane in the direct loop below: C/groups * KH * KW
// multiply-adds per convolution output, so it suits convolutions with few taps per output (the
// library uses it for those); any geometry is accepted. The summation order is the kernel's own
// (bias, then the taps channel by channel, row by row), so y agrees with the composition of
// tsm_conv2d_forward and tsm_max_pool2d_forward to rounding, and an index can differ where two
// taps tie to within it.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../runtime/runtime.h"
#include "pool_plane.h"
#include "simd/isa_target.h"

namespace tsm {
namespace {

// Vectors of VW floats, loads and stores unaligned: the forward's are 16 floats in the AVX-512 build,
// 8 in the AVX2 one, 4 (SSE2) in the generic one; the backward's patch rows are 8 (v8) everywhere.
// (The helpers are inlined into each ISA's build, so GCC's note that passing a 32-byte vector
// without AVX changes the calling convention concerns no call that exists.)
#pragma GCC diagnostic ignored "-Wpsabi"
template <int VW>
struct Vec {
  typedef float type __attribute__((vector_size(VW * 4)));
};
typedef Vec<8>::type v8;
template <int VW>
struct VecI {
  typedef int32_t type __attribute__((vector_size(VW * 4)));
};

template <int VW>
inline __attribute__((always_inline)) typename Vec<VW>::type loadv(const float* p) {
  typename Vec<VW>::type v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// dy, or with y (the pooled output of a ReLU) dy where y > 0 and 0 elsewhere, as a select (also for
// a NaN dy) done on the bits: GCC makes a branch of the ?: form, and whether a ReLU was active is
// as good as random.
inline __attribute__((always_inline)) float masked_grad(const float* dy, const float* y, int64_t e) {
  if (y == nullptr) return dy[e];
  uint32_t bits;
  __builtin_memcpy(&bits, dy + e, 4);
  bits &= 0u - static_cast<uint32_t>(y[e] > 0.0f);
  float g;
  __builtin_memcpy(&g, &bits, 4);
  return g;
}

// The patch offset of index i (pos has lim entries); an index outside [0, lim) reads entry 0
// instead and sets bad, so that no read leaves the table whatever the indices hold.
inline __attribute__((always_inline)) int64_t patch_at(const int64_t* pos, int32_t i, uint32_t lim,
                                                      uint32_t& bad) {
  const uint32_t u = static_cast<uint32_t>(i);
  const bool out = u >= lim;
  bad |= out;
  return pos[out ? 0u : u];
}

// The widest column chunk of the forward (two 16-float vectors).
constexpr int64_t kChunkMax = 32;

// The sizes of one convolution, and the row width wq of the padded copy of one image's group of
// input channels: (Cg, HP, WQ) with the zero padding on every side and zeros to the right far
// enough that the forward's column chunks and the backward's 8-wide patch rows read inside it.
struct Geo {
  int64_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int64_t cg, ocg, oh, ow, hp, wq;
};

Geo make_geo(const tsm_conv2d_desc& d, int64_t oh, int64_t ow) {
  Geo g{d.n,     d.c,      d.h,      d.w,   d.oc,     d.kh,  d.kw, d.stride_h, d.stride_w, d.pad_h,
        d.pad_w, d.dil_h, d.dil_w, d.groups, 0,     0,     oh,   ow,         0,          0};
  g.cg = d.c / d.groups;
  g.ocg = d.oc / d.groups;
  g.hp = d.h + 2 * d.pad_h;
  const int64_t span_w = (d.kw - 1) * d.dil_w;
  const int64_t chunks = (ow + kChunkMax - 1) / kChunkMax * kChunkMax;
  g.wq = std::max({d.w + 2 * d.pad_w, (chunks - 1) * d.stride_w + span_w + 1,
                   (ow - 1) * d.stride_w + span_w + 8});
  return g;
}

// xq (Cg, HP, WQ) = one image's group xg (Cg, H, W) with its padding and right margin as zeros.
void pad_group(float* xq, const float* xg, const Geo& g) {
  std::memset(xq, 0, sizeof(float) * g.cg * g.hp * g.wq);
  for (int64_t c = 0; c < g.cg; ++c)
    for (int64_t ih = 0; ih < g.h; ++ih)
      std::memcpy(xq + (c * g.hp + ih + g.ph) * g.wq + g.pw, xg + (c * g.h + ih) * g.w,
                  sizeof(float) * g.w);
}

// Rows oh0 .. oh0+ROWS-1, columns ow0 .. ow0+2VW-1 of z = bias + sum over c, r, s of
// wo[(c*KH + r)*KW + s] * xq[c][oh*SH + r*DH][ow*SW + s*DW], in 2*ROWS registers (ROWS * 2
// independent chains of multiply-adds). Each row is stored whole, 2VW floats from (oh, ow0) with the
// row stride OW: what lies past OW lands on the start of later rows (see conv_plane_body).
template <int VW, int ROWS, bool UnitStride, int KW>
inline __attribute__((always_inline)) void conv_tile(float* z, const float* xq, const float* wo, float bias,
                                                     const Geo& g, int64_t oh0, int64_t ow0) {
  const int64_t kw = KW > 0 ? KW : g.kw;  // KW > 0: a width known at compile time (unrolled)
  typedef typename Vec<VW>::type V;
  V acc[ROWS][2];
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < 2; ++j)
      for (int l = 0; l < VW; ++l) acc[i][j][l] = bias;
  const int64_t row_step = g.sh * g.wq;
  const float* wp = wo;
  for (int64_t c = 0; c < g.cg; ++c) {
    for (int64_t r = 0; r < g.kh; ++r) {
      const float* xr = xq + (c * g.hp + oh0 * g.sh + r * g.dh) * g.wq + ow0 * g.sw;
      for (int64_t s = 0; s < kw; ++s, ++wp) {
        const float* xs = xr + s * g.dw;
        const float wv = *wp;
        for (int i = 0; i < ROWS; ++i) {
          const float* xi = xs + i * row_step;
          if (UnitStride) {
            acc[i][0] += wv * loadv<VW>(xi);
            acc[i][1] += wv * loadv<VW>(xi + VW);
          } else {
            V x0, x1;
            for (int l = 0; l < VW; ++l) {
              x0[l] = xi[l * g.sw];
              x1[l] = xi[(l + VW) * g.sw];
            }
            acc[i][0] += wv * x0;
            acc[i][1] += wv * x1;
          }
        }
      }
    }
  }
  for (int i = 0; i < ROWS; ++i)
    __builtin_memcpy(z + (oh0 + i) * g.ow + ow0, &acc[i][0], sizeof acc[i]);
}

// One output plane z (OH, OW) of the convolution (z holds 2 * kChunkMax floats past OH*OW), in
// tiles of 4 rows (8 accumulators; 8- and 6-row tiles measured slower), the rows left in tiles of 2
// and 1. Stores run whole past the end of a row: tiles go down the plane, and within a tile the
// column chunks go from the last to the first and the rows downwards, so whatever a store puts past
// its row's end lands on elements of later rows that are stored afterwards.
template <int VW, bool UnitStride, int KW>
inline __attribute__((always_inline)) void conv_plane_tiles(float* z, const float* xq, const float* wo,
                                                            float bias, const Geo& g) {
  const int64_t chunk = 2 * VW, last = (g.ow - 1) / chunk * chunk;
  int64_t oh = 0;
  for (; oh + 4 <= g.oh; oh += 4)
    for (int64_t ow0 = last; ow0 >= 0; ow0 -= chunk) conv_tile<VW, 4, UnitStride, KW>(z, xq, wo, bias, g, oh, ow0);
  if (oh + 2 <= g.oh) {
    for (int64_t ow0 = last; ow0 >= 0; ow0 -= chunk) conv_tile<VW, 2, UnitStride, KW>(z, xq, wo, bias, g, oh, ow0);
    oh += 2;
  }
  if (oh < g.oh)
    for (int64_t ow0 = last; ow0 >= 0; ow0 -= chunk) conv_tile<VW, 1, UnitStride, KW>(z, xq, wo, bias, g, oh, ow0);
}

template <int VW, bool UnitStride>
inline __attribute__((always_inline)) void conv_plane_body(float* z, const float* xq, const float* wo,
                                                           float bias, const Geo& g) {
  if (g.kw == 3) conv_plane_tiles<VW, UnitStride, 3>(z, xq, wo, bias, g);
  else conv_plane_tiles<VW, UnitStride, 0>(z, xq, wo, bias, g);
}

// The weight gradient of one output plane of one image, from its pooled gradient: for each pooled
// output e, g_e = dy[e] (with y: only where y[e] > 0, as a select) goes to every tap of the patch
// under its winner idx[e]; a[(c*KH + r)*8 + s] += g_e * xq[c][oh*SH + r*DH][ow*SW + s] for the 8
// columns s of each patch row (DW = 1, KW <= 8: the columns past KW are not used), R = Cg*KH rows
// in registers, in two sets for short rows so that consecutive outputs do not wait on each other.
// pos[i] is the offset in xq of the patch under convolution output i (no division per output).
// Returns the sum of g_e (the bias gradient).
template <int R, int Sets>
inline __attribute__((always_inline)) float bw_plane_rows(float* a, const float* dy, const float* y,
                                                          const int32_t* idx, int64_t np,
                                                          const float* xq, const int64_t* pos,
                                                          uint32_t lim, uint32_t& bad, const Geo& g) {
  int64_t roff[R];
  for (int rr = 0; rr < R; ++rr) {
    const int64_t c = rr / g.kh, r = rr - c * g.kh;
    roff[rr] = (c * g.hp + r * g.dh) * g.wq;
  }
  v8 acc[Sets][R];
  for (int k = 0; k < Sets; ++k)
    for (int i = 0; i < R; ++i) acc[k][i] = v8{0, 0, 0, 0, 0, 0, 0, 0};
  float gs[Sets] = {};
  int64_t e = 0;
  for (; e + Sets <= np; e += Sets) {
    for (int k = 0; k < Sets; ++k) {
      const float gv = masked_grad(dy, y, e + k);
      gs[k] += gv;
      const float* base = xq + patch_at(pos, idx[e + k], lim, bad);
      for (int rr = 0; rr < R; ++rr) acc[k][rr] += gv * loadv<8>(base + roff[rr]);
    }
  }
  for (; e < np; ++e) {
    const float gv = masked_grad(dy, y, e);
    gs[0] += gv;
    const float* base = xq + patch_at(pos, idx[e], lim, bad);
    for (int rr = 0; rr < R; ++rr) acc[0][rr] += gv * loadv<8>(base + roff[rr]);
  }
  float total = 0.0f;
  for (int k = 0; k < Sets; ++k) total += gs[k];
  for (int rr = 0; rr < R; ++rr) {
    v8 s = acc[0][rr];
    for (int k = 1; k < Sets; ++k) s += acc[k][rr];
    __builtin_memcpy(a + rr * 8, &s, sizeof s);
  }
  return total;
}

// Whether bw_plane_rows serves a geometry, and the rows R = Cg*KH it then has.
inline bool rows_path(const Geo& g) { return g.dw == 1 && g.kw <= 8 && g.cg * g.kh <= 12; }

// One plane's weight gradient (rows_path only): a holds Cg*KH rows of 8.
template <int R>
inline __attribute__((always_inline)) float bw_rows(float* a, const float* dy, const float* y,
                                                    const int32_t* idx, int64_t np, const float* xq,
                                                    const int64_t* pos, uint32_t lim, uint32_t& bad,
                                                    const Geo& g) {
  return bw_plane_rows<R, (R <= 6 ? 2 : 1)>(a, dy, y, idx, np, xq, pos, lim, bad, g);
}

inline __attribute__((always_inline)) float bw_plane_body(float* a, const float* dy, const float* y,
                                                          const int32_t* idx, int64_t np,
                                                          const float* xq, const int64_t* pos,
                                                          uint32_t lim, uint32_t& bad, const Geo& g) {
  switch (g.cg * g.kh) {
    case 1: return bw_rows<1>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 2: return bw_rows<2>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 3: return bw_rows<3>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 4: return bw_rows<4>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 5: return bw_rows<5>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 6: return bw_rows<6>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 7: return bw_rows<7>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 8: return bw_rows<8>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 9: return bw_rows<9>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 10: return bw_rows<10>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    case 11: return bw_rows<11>(a, dy, y, idx, np, xq, pos, lim, bad, g);
    default: return bw_rows<12>(a, dy, y, idx, np, xq, pos, lim, bad, g);
  }
}

// The full backward through the channels (dx, dw, dbias), for any geometry. One image's group of
// input channels is laid out as pixels of Cg channels with its padding as zeros,
// xt[(ih*WP + iw)*Cg + c] (HP = H + 2PH rows of WP = W + 2PW pixels), and the weights of output
// channel o in the same order, wt[o][(r*KW + s)*Cg + c]. The patch under a convolution output is then
// KH rows of KW*Cg consecutive floats (DW = 1), or KH*KW runs of Cg (otherwise): its segments, the
// k-th at seg_off[k] from the patch's first float and at k*seg_len in wt. Only the winners with a
// pooled gradient g != 0 take part: under a 2x2 pooling a quarter of the convolution's outputs
// (fewer through the ReLU), where the dense backward takes all of them.
//   dw: for each plane (image, o), the sum of g * the winner's patch, into o's row (patch order);
//   dx: for each convolution output of an image, the sum of g * wt[o] over the planes whose winner
//       it is, added once to its patch of dxt (laid out as xt).
// Both are one operation, dst += sum over a list of (g, offset) of g * src[offset ..], the segments
// of src or dst being the patch's and those of the other the row's.
struct Winner {
  float g;
  int32_t at;   // the convolution output (its index in the plane)
  int64_t off;  // offset of the source: of the patch in xt (dw), of o's row in wt (dx)
};

struct ChanGeo {
  int64_t hp, wp, seg_len, segs;
  int64_t row_len;  // seg_len rounded up to 16: the segments' spacing in wt and the weight gradient
  const int64_t* seg_off;
  bool even;  // seg_off[k] = k * seg_off[1] (the rows of the patch, DW = 1)
};

// NV vectors at the same place in each of NS segments (src and dst point at the first one's; the
// segments lie sstride apart in src and dstride apart in dst; the list's offsets are added to src):
// dst += the sum of g * src[off ..] over the list, in NS*NV registers.
template <int VW, int NV, int NS, bool Masked = false>
inline __attribute__((always_inline)) void chan_chunk(const Winner* wl, int64_t m, const float* __restrict src,
                                                      float* __restrict dst, int64_t sstride, int64_t dstride,
                                                      int rem = VW) {
  typedef typename Vec<VW>::type V;
  V acc[NS][NV], old[NS][NV];
  for (int k = 0; k < NS; ++k)
    for (int j = 0; j < NV; ++j) old[k][j] = acc[k][j] = loadv<VW>(dst + k * dstride + j * VW);
  for (int64_t e = 0; e < m; ++e) {
    const float g = wl[e].g;
    for (int k = 0; k < NS; ++k) {
      // One base per segment, the vectors at constant displacements from it (the empty asm keeps
      // GCC from hoisting NS*NV separate offsets out of the loop, which spills them).
      const float* sk = src + wl[e].off + k * sstride;
      __asm__("" : "+r"(sk));
      for (int j = 0; j < NV; ++j) acc[k][j] += g * loadv<VW>(sk + j * VW);
    }
  }
  if (Masked) {
    // Lanes from rem on lie past the segment: they keep what they held.
    typename VecI<VW>::type lane;
    for (int l = 0; l < VW; ++l) lane[l] = l;
    for (int k = 0; k < NS; ++k)
      for (int j = 0; j < NV; ++j) acc[k][j] = lane < rem ? acc[k][j] : old[k][j];
  }
  for (int k = 0; k < NS; ++k)
    for (int j = 0; j < NV; ++j) __builtin_memcpy(dst + k * dstride + j * VW, &acc[k][j], sizeof acc[k][j]);
}

// NS segments of len floats together: chunks of whole vectors (at most 24 accumulators with AVX-512's
// 32 registers, 12 otherwise), then the floats past the last whole vector as one more vector per
// segment, a segment at a time: it reads past the segment (into the buffers' margins or padding),
// and where dst is a patch of dxt (Masked) stores back only the segment's lanes; a row of the weight
// gradient has its padding to 16 floats for the rest.
template <int VW, int NS, bool Masked>
inline __attribute__((always_inline)) void chan_segments(const Winner* wl, int64_t m, const float* src, float* dst,
                                                         int64_t len, int64_t sstride, int64_t dstride) {
  constexpr int kMax = std::min(8, (VW == 16 ? 24 : 12) / NS);
  int64_t v = 0;
  for (; v + VW <= len;) {
    const int64_t cnt = std::min<int64_t>((len - v) / VW, kMax);
#define TSM_CHAN_CASE(k)                                                                          \
  case k:                                                                                         \
    if (k <= kMax) chan_chunk<VW, (k <= kMax ? k : 1), NS>(wl, m, src + v, dst + v, sstride, dstride); \
    break;
    switch (cnt) {
      TSM_CHAN_CASE(1) TSM_CHAN_CASE(2) TSM_CHAN_CASE(3) TSM_CHAN_CASE(4)
      TSM_CHAN_CASE(5) TSM_CHAN_CASE(6) TSM_CHAN_CASE(7) TSM_CHAN_CASE(8)
      default: break;
    }
#undef TSM_CHAN_CASE
    v += cnt * VW;
  }
  if (v < len)
    for (int k = 0; k < NS; ++k)
      chan_chunk<VW, 1, 1, Masked>(wl, m, src + k * sstride + v, dst + k * dstride + v, 0, 0,
                                   static_cast<int>(len - v));
}

// dst += the sum over the list of g * src[off ..], segment by segment, three at a time where they lie
// evenly apart (the rows of the patch). SrcPatch: src is xt (its segments the patch's), dst a row of
// the weight gradient; otherwise src is wt, dst a patch of dxt.
template <int VW, bool SrcPatch>
inline __attribute__((always_inline)) void chan_accumulate(const Winner* wl, int64_t m, const float* src, float* dst,
                                                           const ChanGeo& c) {
  for (int64_t k = 0; k < c.segs;) {
    const int64_t patch_k = c.seg_off[k], row_k = k * c.row_len;
    const float* s = src + (SrcPatch ? patch_k : row_k);
    float* d = dst + (SrcPatch ? row_k : patch_k);
    if (c.even && k + 3 <= c.segs) {
      const int64_t patch_stride = c.seg_off[k + 1] - patch_k, row_stride = c.row_len;
      chan_segments<VW, 3, !SrcPatch>(wl, m, s, d, c.seg_len, SrcPatch ? patch_stride : row_stride,
                                      SrcPatch ? row_stride : patch_stride);
      k += 3;
    } else {
      chan_segments<VW, 1, !SrcPatch>(wl, m, s, d, c.seg_len, 0, 0);
      k += 1;
    }
  }
}

// 8 x 8 transpose of r (rows in, columns out) in three rounds of two-vector shuffles.
typedef int32_t v8i __attribute__((vector_size(32)));
inline __attribute__((always_inline)) void transpose8(v8 r[8]) {
  const v8i lo1{0, 8, 1, 9, 4, 12, 5, 13}, hi1{2, 10, 3, 11, 6, 14, 7, 15};
  const v8i lo2{0, 1, 8, 9, 4, 5, 12, 13}, hi2{2, 3, 10, 11, 6, 7, 14, 15};
  const v8i lo3{0, 1, 2, 3, 8, 9, 10, 11}, hi3{4, 5, 6, 7, 12, 13, 14, 15};
  v8 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], lo1);
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi1);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shuffle(t[i], t[i + 2], lo2);
    u[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi2);
    u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo2);
    u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi2);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shuffle(u[i], u[i + 4], lo3);
    r[i + 4] = __builtin_shuffle(u[i], u[i + 4], hi3);
  }
}

// One image's group of channels (Cg, H, W) to the channels layout xt (ToChannels: in is that group,
// out is xt, whose padding is left as it is) or back (in is xt, out the group): blocks of 8 channels x
// 8 columns through transpose8 (the last block of a row overlapping the one before it when W is not a
// multiple of 8), what is left one float at a time.
template <bool ToChannels>
inline __attribute__((always_inline)) void channels_copy(float* out, const float* in, const Geo& g, const ChanGeo& c) {
  const int64_t hw = g.h * g.w, cb = g.w >= 8 ? g.cg / 8 * 8 : 0;
  // element (channel ci, column iw) of row ih, in the group and in xt
  auto at_g = [&](int64_t ih, int64_t ci, int64_t iw) { return ci * hw + ih * g.w + iw; };
  auto at_t = [&](int64_t ih, int64_t ci, int64_t iw) { return ((ih + g.ph) * c.wp + g.pw + iw) * g.cg + ci; };
  for (int64_t ih = 0; ih < g.h; ++ih) {
    for (int64_t c0 = 0; c0 < cb; c0 += 8)
      for (int64_t w0 = 0; w0 < g.w; w0 += 8) {
        const int64_t iw = std::min(w0, g.w - 8);
        v8 r[8];
        for (int i = 0; i < 8; ++i) r[i] = loadv<8>(in + (ToChannels ? at_g(ih, c0 + i, iw) : at_t(ih, c0, iw + i)));
        transpose8(r);
        for (int i = 0; i < 8; ++i)
          __builtin_memcpy(out + (ToChannels ? at_t(ih, c0, iw + i) : at_g(ih, c0 + i, iw)), &r[i], sizeof r[i]);
      }
    for (int64_t ci = cb; ci < g.cg; ++ci)
      for (int64_t iw = 0; iw < g.w; ++iw) {
        if (ToChannels) out[at_t(ih, ci, iw)] = in[at_g(ih, ci, iw)];
        else out[at_g(ih, ci, iw)] = in[at_t(ih, ci, iw)];
      }
  }
}

#define TSM_CONV_POOL_ISA(name, attr, vw)                                                           \
  attr void conv_plane_##name(float* z, const float* xq, const float* wo, float bias, const Geo& g) { \
    if (g.sw == 1) conv_plane_body<vw, true>(z, xq, wo, bias, g);                                   \
    else conv_plane_body<vw, false>(z, xq, wo, bias, g);                                            \
  }                                                                                                 \
  attr float bw_plane_##name(float* a, const float* dy, const float* y, const int32_t* idx,         \
                             int64_t np, const float* xq, const int64_t* pos, uint32_t lim,         \
                             uint32_t& bad, const Geo& g) {                                         \
    return bw_plane_body(a, dy, y, idx, np, xq, pos, lim, bad, g);                                  \
  }                                                                                                 \
  attr void chan_dw_##name(const Winner* wl, int64_t m, const float* xt, float* a,                 \
                           const ChanGeo& c) {                                                      \
    chan_accumulate<vw, true>(wl, m, xt, a, c);                                                     \
  }                                                                                                 \
  attr void chan_dx_##name(const Winner* wl, int64_t m, const float* wt, float* dxp,                \
                           const ChanGeo& c) {                                                      \
    chan_accumulate<vw, false>(wl, m, wt, dxp, c);                                                  \
  }                                                                                                 \
  attr void to_channels_##name(float* xt, const float* xg, const Geo& g, const ChanGeo& c) {        \
    channels_copy<true>(xt, xg, g, c);                                                              \
  }                                                                                                 \
  attr void from_channels_##name(float* dxg, const float* dxt, const Geo& g, const ChanGeo& c) {    \
    channels_copy<false>(dxg, dxt, g, c);                                                           \
  }
TSM_CONV_POOL_ISA(generic, , 4)
#if TSM_ISA_X86
TSM_CONV_POOL_ISA(avx2, TSM_TARGET_AVX2, 8)
TSM_CONV_POOL_ISA(avx512, TSM_TARGET_AVX512, 16)
#endif
#undef TSM_CONV_POOL_ISA

// Validates the convolution (as tsm_conv2d_forward does) and that its planes fit int32 indices; *g
// its sizes.
tsm_status check_conv(const char* op, const tsm_conv2d_desc* cd, Geo* g) {
  if (!cd) return fail(TSM_ERR_INVALID_ARGUMENT, "%s: conv descriptor is NULL", op);
  int64_t oh = 0, ow = 0;
  const tsm_status s = tsm_conv2d_output_size(&oh, &ow, cd);
  if (s != TSM_OK) return s;
  if (oh * ow > INT32_MAX)
    return fail(TSM_ERR_INVALID_ARGUMENT, "%s: the convolution's planes (%lld x %lld) do not fit the int32 indices",
                op, (long long)oh, (long long)ow);
  *g = make_geo(*cd, oh, ow);
  return TSM_OK;
}

// dw (with dbias) when the patch rows fit registers (rows_path, no dx): each plane's patch rows of 8
// in the image's own layout.
bool backward_rows(float* dw, float* dbias, const float* dy, const float* y, const int32_t* indices,
                   const float* x, const Geo& g, int64_t poh, int64_t pow_) {
  const auto bw_plane = TSM_PICK_ISA(active_simd(), bw_plane);
  const int64_t pp = poh * pow_, zhw = g.oh * g.ow, kk = g.cg * g.kh * g.kw;
  const int64_t alen = g.cg * g.kh * 8;
  const int nt = num_threads();
  const int64_t tasks = g.n * g.oc * pp * kk < 65536 ? 1 : std::min<int64_t>(g.oc, 2 * nt);
  // The offset in the padded input of the patch under each convolution output.
  std::vector<int64_t> pos(zhw);
  for (int64_t i = 0; i < zhw; ++i) pos[i] = (i / g.ow) * g.sh * g.wq + (i % g.ow) * g.sw;
  std::atomic<bool> bad{false};
  parallel_for(tasks, [&](int64_t t) {
    const int64_t o0 = g.oc * t / tasks, o1 = g.oc * (t + 1) / tasks;
    if (o0 == o1) return;
    // Sums over the images in double; one image's plane is summed in float registers.
    std::vector<double> acc((o1 - o0) * kk, 0.0), bacc(o1 - o0, 0.0);
    std::vector<float> xq(g.cg * g.hp * g.wq), a(alen);
    for (int64_t n = 0; n < g.n; ++n) {
      int64_t padded = -1;
      for (int64_t o = o0; o < o1; ++o) {
        const int64_t grp = o / g.ocg, plane = n * g.oc + o;
        const int32_t* ip = indices + plane * pp;
        if (grp != padded) {
          padded = grp;
          pad_group(xq.data(), x + (n * g.c + grp * g.cg) * g.h * g.w, g);
        }
        // An index outside the convolution's plane reads a harmless patch and flags the plane,
        // whose sums are then dropped (the call fails).
        uint32_t plane_bad = 0;
        const float gsum = bw_plane(a.data(), dy + plane * pp, y ? y + plane * pp : nullptr, ip,
                                    pp, xq.data(), pos.data(), static_cast<uint32_t>(zhw), plane_bad, g);
        if (plane_bad) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        bacc[o - o0] += gsum;
        double* ao = acc.data() + (o - o0) * kk;
        for (int64_t rr = 0; rr < g.cg * g.kh; ++rr)
          for (int64_t sidx = 0; sidx < g.kw; ++sidx) ao[rr * g.kw + sidx] += a[rr * 8 + sidx];
      }
    }
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t k = 0; k < kk; ++k) dw[o * kk + k] = static_cast<float>(acc[(o - o0) * kk + k]);
      if (dbias) dbias[o] = static_cast<float>(bacc[o - o0]);
    }
  });
  return !bad.load();
}

// n floats from a 64-byte boundary (a whole 16-float vector at a multiple of 16 floats from it then
// reads one cache line, not two).
struct Aligned64 {
  std::vector<float> v;
  float* p;
  explicit Aligned64(size_t n) : v(n + 16) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(v.data());
    p = v.data() + (64 - a % 64) % 64 / sizeof(float);
  }
};

// dx, dw, dbias (each may be null) through the channels (see Winner); images split between
// the threads, each summing its own weight gradient. False when an index lies outside the plane.
bool backward_channels(float* dx, float* dw, float* dbias, const float* dy, const float* y,
                       const int32_t* indices, const float* x, const float* w, const Geo& g,
                       int64_t poh, int64_t pow_) {
  const auto chan_dw = TSM_PICK_ISA(active_simd(), chan_dw);
  const auto chan_dx = TSM_PICK_ISA(active_simd(), chan_dx);
  const auto to_channels = TSM_PICK_ISA(active_simd(), to_channels);
  const auto from_channels = TSM_PICK_ISA(active_simd(), from_channels);
  const int64_t pp = poh * pow_, zhw = g.oh * g.ow, kk = g.cg * g.kh * g.kw;
  ChanGeo c{g.h + 2 * g.ph, g.w + 2 * g.pw, 0, 0, 0, nullptr, g.dw == 1};
  std::vector<int64_t> seg_off;
  if (g.dw == 1) {
    c.seg_len = g.kw * g.cg;
    for (int64_t r = 0; r < g.kh; ++r) seg_off.push_back(r * g.dh * c.wp * g.cg);
  } else {
    c.seg_len = g.cg;
    for (int64_t r = 0; r < g.kh; ++r)
      for (int64_t s = 0; s < g.kw; ++s) seg_off.push_back((r * g.dh * c.wp + s * g.dw) * g.cg);
  }
  c.segs = static_cast<int64_t>(seg_off.size());
  c.row_len = (c.seg_len + 15) / 16 * 16;
  c.seg_off = seg_off.data();
  const int64_t kkp = c.segs * c.row_len;  // a weight row with its segments padded
  std::vector<int64_t> pos(zhw);
  for (int64_t i = 0; i < zhw; ++i) pos[i] = ((i / g.ow) * g.sh * c.wp + (i % g.ow) * g.sw) * g.cg;
  // The weights in the patch order (for dx), each segment padded with zeros to row_len floats; the
  // tap (r, s) lies in segment r at s*Cg (DW = 1) or in segment r*KW + s at 0.
  auto patch_at_tap = [&](int64_t r, int64_t s, int64_t ci) {
    return g.dw == 1 ? r * c.row_len + s * g.cg + ci : (r * g.kw + s) * c.row_len + ci;
  };
  Aligned64 wt_buf(dx ? g.oc * kkp : 0);
  float* wt = wt_buf.p;
  if (dx)
    for (int64_t o = 0; o < g.oc; ++o)
      for (int64_t ci = 0; ci < g.cg; ++ci)
        for (int64_t r = 0; r < g.kh; ++r)
          for (int64_t s = 0; s < g.kw; ++s) wt[o * kkp + patch_at_tap(r, s, ci)] = w[o * kk + (ci * g.kh + r) * g.kw + s];
  const int64_t tasks =
      g.n * g.oc * pp * kk < 65536 ? 1 : std::min<int64_t>(g.n, num_threads());
  // Per task: the weight gradient (OC, KK) in the patch order, at a 64-byte boundary.
  const int64_t astride = g.oc * kkp + 16;  // 16 floats for the last tail vector's reach
  Aligned64 acc(dw ? tasks * astride : 0);
  std::vector<std::vector<double>> bacc(tasks);  // per task: (OC)
  const int64_t xsz = c.hp * c.wp * g.cg;
  std::atomic<bool> bad{false};
  parallel_for(tasks, [&](int64_t t) {
    const int64_t n0 = g.n * t / tasks, n1 = g.n * (t + 1) / tasks;
    float* a = acc.p + t * astride;
    if (dw) std::fill(a, a + astride, 0.0f);
    bacc[t].assign(g.oc, 0.0);
    // 16 floats of margin past the end: a segment's last vector may read (and, masked, rewrite) them.
    // xt's padding stays as allocated, zeros: to_channels writes only the image's pixels.
    Aligned64 xt_buf(dw ? xsz + 16 : 0), dxt_buf(dx ? xsz + 16 : 0);
    float* xt = xt_buf.p;
    float* dxt = dxt_buf.p;
    // A plane's winners; for dx, those of the image's group and the same sorted by output.
    std::vector<Winner> wl(pp), all(dx ? g.ocg * pp : 0), sorted(all.size());
    std::vector<int64_t> first(dx ? zhw + 1 : 0);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const int64_t img = (n * g.c + grp * g.cg) * g.h * g.w;
        if (dw) to_channels(xt, x + img, g, c);
        int64_t na = 0;
        for (int64_t o = grp * g.ocg; o < (grp + 1) * g.ocg; ++o) {
          const int64_t plane = n * g.oc + o;
          const float* dyp = dy + plane * pp;
          const float* yp = y ? y + plane * pp : nullptr;
          const int32_t* ip = indices + plane * pp;
          uint32_t plane_bad = 0;
          float gsum = 0.0f;
          int64_t m = 0;
          for (int64_t e = 0; e < pp; ++e) {
            const float gv = masked_grad(dyp, yp, e);
            gsum += gv;
            // Kept when g != 0 (a NaN included), without a branch: whether the ReLU was active is
            // as good as random. An index outside the plane reads entry 0 and flags the call.
            const uint32_t u = static_cast<uint32_t>(ip[e]);
            const bool out = u >= static_cast<uint32_t>(zhw);
            plane_bad |= out;
            const int32_t at = out ? 0 : static_cast<int32_t>(u);
            wl[m] = Winner{gv, at, pos[at]};
            m += gv != 0.0f;
          }
          // A plane with an index outside it adds nothing (the call fails).
          if (plane_bad) {
            bad.store(true, std::memory_order_relaxed);
            continue;
          }
          bacc[t][o] += gsum;
          if (dw && m > 0) chan_dw(wl.data(), m, xt, a + o * kkp, c);
          if (dx)
            for (int64_t e = 0; e < m; ++e) all[na++] = Winner{wl[e].g, wl[e].at, o * kkp};
        }
        if (!dx) continue;
        // The group's winners by convolution output (a counting sort), then each output's sum of
        // g * wt[o] into its patch.
        std::fill(first.begin(), first.end(), 0);
        for (int64_t e = 0; e < na; ++e) ++first[all[e].at + 1];
        for (int64_t i = 0; i < zhw; ++i) first[i + 1] += first[i];
        for (int64_t e = 0; e < na; ++e) sorted[first[all[e].at]++] = all[e];
        std::memset(dxt, 0, sizeof(float) * xsz);
        for (int64_t i = 0, start = 0; i < zhw; ++i) {
          // first[i] is now the end of output i's run (the start of the next)
          if (first[i] > start) chan_dx(sorted.data() + start, first[i] - start, wt, dxt + pos[i], c);
          start = first[i];
        }
        from_channels(dx + img, dxt, g, c);
      }
  });
  if (bad.load()) return false;
  for (int64_t o = 0; o < g.oc; ++o) {
    if (dw)
      for (int64_t ci = 0; ci < g.cg; ++ci)
        for (int64_t r = 0; r < g.kh; ++r)
          for (int64_t s = 0; s < g.kw; ++s) {
            float sum = 0.0f;
            for (int64_t t = 0; t < tasks; ++t) sum += acc.p[t * astride + o * kkp + patch_at_tap(r, s, ci)];
            dw[o * kk + (ci * g.kh + r) * g.kw + s] = sum;
          }
    if (dbias) {
      double sum = 0.0;
      for (int64_t t = 0; t < tasks; ++t) sum += bacc[t][o];
      dbias[o] = static_cast<float>(sum);
    }
  }
  return true;
}

}  // namespace
}  // namespace tsm

extern "C" {

TSM_API tsm_status tsm_conv2d_max_pool2d_forward(float* y, int32_t* indices, const float* x,
                                                 const float* w, const float* bias,
                                                 const tsm_conv2d_desc* cd,
                                                 const tsm_pool2d_desc* pd, int relu) {
  const char* op = "conv2d_max_pool2d_forward";
  tsm::Geo g;
  tsm_status s = tsm::check_conv(op, cd, &g);
  if (s != TSM_OK) return s;
  if (!pd) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: pool descriptor is NULL", op);
  if (pd->n != g.n || pd->c != g.oc || pd->h != g.oh || pd->w != g.ow)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT,
                     "%s: the pooling's input (%lld, %lld, %lld, %lld) is not the convolution's "
                     "output (%lld, %lld, %lld, %lld)",
                     op, (long long)pd->n, (long long)pd->c, (long long)pd->h, (long long)pd->w,
                     (long long)g.n, (long long)g.oc, (long long)g.oh, (long long)g.ow);
  int64_t poh = 0, pow_ = 0;
  s = tsm::max_pool2d_check(op, pd, &poh, &pow_);
  if (s != TSM_OK) return s;
  if (!y || !indices || !x || !w)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                     !y ? "y" : !indices ? "indices" : !x ? "x" : "w");
  const auto conv_plane = TSM_PICK_ISA(tsm::active_simd(), tsm::conv_plane);
  const int64_t planes = g.n * g.oc, pp = poh * pow_, kk = g.cg * g.kh * g.kw;
  const int nt = tsm::num_threads();
  const int64_t tasks = planes * g.oh * g.ow * kk < 65536 ? 1 : std::min<int64_t>(planes, 4 * nt);
  tsm_pool2d_desc plane = *pd;
  plane.n = plane.c = 1;
  tsm::parallel_for(tasks, [&](int64_t t) {
    const int64_t p0 = planes * t / tasks, p1 = planes * (t + 1) / tasks;
    std::vector<float> xq(g.cg * g.hp * g.wq), z(g.oh * g.ow + 2 * tsm::kChunkMax);
    int64_t padded = -1;  // the (image, group) whose input xq holds
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / g.oc, o = p - n * g.oc, grp = o / g.ocg;
      if (n * g.groups + grp != padded) {
        padded = n * g.groups + grp;
        tsm::pad_group(xq.data(), x + (n * g.c + grp * g.cg) * g.h * g.w, g);
      }
      conv_plane(z.data(), xq.data(), w + o * kk, bias ? bias[o] : 0.0f, g);
      tsm::max_pool2d_plane(y + p * pp, indices + p * pp, z.data(), plane, poh, pow_, relu != 0);
    }
  });
  return TSM_OK;
}

TSM_API tsm_status tsm_conv2d_max_pool2d_backward(float* dx, float* dw, float* dbias,
                                                  const float* dy, const float* y,
                                                  const int32_t* indices, const float* x,
                                                  const float* w, const tsm_conv2d_desc* cd,
                                                  int64_t poh, int64_t pow_) {
  const char* op = "conv2d_max_pool2d_backward";
  tsm::Geo g;
  tsm_status s = tsm::check_conv(op, cd, &g);
  if (s != TSM_OK) return s;
  if (poh < 1 || pow_ < 1)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: the pooled size must be >= 1, got %lld x %lld",
                     op, (long long)poh, (long long)pow_);
  if (!dy || !indices || (dw && !x) || (dx && !w))
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op,
                     !dy ? "dy" : !indices ? "indices" : (dw && !x) ? "x (for dw)" : "w (for dx)");
  if (!dx && !dw && !dbias) return TSM_OK;
  const bool ok = !dx && dw && tsm::rows_path(g)
                      ? tsm::backward_rows(dw, dbias, dy, y, indices, x, g, poh, pow_)
                      : tsm::backward_channels(dx, dw, dbias, dy, y, indices, x, w, g, poh, pow_);
  if (!ok)
    return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "%s: an index lies outside the convolution's %lld x %lld plane",
                     op, (long long)g.oh, (long long)g.ow);
  return TSM_OK;
}

TSM_API tsm_status tsm_conv2d_max_pool2d_backward_weight(float* dw, float* dbias, const float* dy,
                                                         const float* y, const int32_t* indices,
                                                         const float* x, const tsm_conv2d_desc* cd,
                                                         int64_t poh, int64_t pow_) {
  if (!dw) return tsm::fail(TSM_ERR_INVALID_ARGUMENT, "conv2d_max_pool2d_backward_weight: dw is NULL");
  return tsm_conv2d_max_pool2d_backward(nullptr, dw, dbias, dy, y, indices, x, nullptr, cd, poh, pow_);
}

}  // extern "C"
