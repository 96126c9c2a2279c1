// AVX-512 pieces of conv2d.cpp (simd/conv_direct_avx512.cpp): a direct backward-weight kernel for
// stride-1 unpadded convolutions with few taps, and the packers / col2im of the implicit GEMM.
// Shapes, per image: x (C, H, W), w (OC, C/G, KH, KW), y and dy (OC, OH, OW).
#pragma once
#include <cstdint>

namespace tsm {

struct DirectConvShape {
  int64_t c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow;
};

bool conv_direct_avx512_available();

// dw (OC, C/G, KH, KW), rows [oc_begin, oc_end) only, = sum over nimg images of
// dy (nimg, OC, OH, OW) and x (nimg, C, H, W); stride 1, no padding, KH*KW <= 9 (else false).
bool conv_direct_backward_weight_avx512(float* dw, const float* dy, const float* x, int64_t nimg,
                                        int64_t oc_begin, int64_t oc_end,
                                        const DirectConvShape& s);

// Forward B panels (NR = 32), no padding: B(t, q) = xg[pix[q] + tap_off[t]], zero for q >= ohw.
void conv_pack_b_gather_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                               const int32_t* pix, int64_t ohw);
// Forward B panels (NR = 32) for stride_w 1 without padding, from runs of consecutive pixels:
// chunk ch (pixels 16ch .. 16ch+15) merges nseg runs, lanes seg_mask[ch*nseg+s] from
// xg + tap_off[t] + seg_off[ch*nseg+s] + lane; lanes in no mask are 0. Only the panels of pixels
// [j_begin, j_end) (multiples of 32), written from dst on. xg holds limit readable floats (reads
// stay inside them; tap offsets are >= 0).
void conv_pack_b_runs_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                             const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                             int64_t ohw, int64_t j_begin, int64_t j_end, int64_t limit);
// The same for the AVX2 6x16 kernel (simd/conv_pack_avx2.cpp): panels of NR = 16 pixels, one
// chunk each, `depth` >= kk rows deep, rows kk .. depth-1 all ones (the bias row). x86-64 only;
// the caller checks that AVX2 is the active path.
void conv_pack_b_runs_avx2(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                           const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                           int64_t ohw, int64_t j_begin, int64_t j_end, int64_t limit, int64_t depth);
// A panel (k = pixel, mr <= 16 taps per k) of the few-taps backward-weight, from the forward's runs:
// dst[q*mr + t] = x tap t at pixel q for t < kk; 1 at t = kk when ones (the bias row); 0 above.
void conv_pack_a_taps_avx512(float* dst, const float* xg, const int64_t* tap_off, int64_t kk,
                             const int32_t* seg_off, const uint16_t* seg_mask, int nseg,
                             int64_t ohw, int mr, bool ones, int64_t limit);
// xt ((H+2PH), (W+2PW), Cg) = one image's group xg (Cg, H, W) moved to channels-last, with zero
// borders; Cg % 16 == 0 (16x16 transposes in registers).
void conv_nhwc_group_avx512(float* xt, const float* xg, int64_t cg, int64_t h, int64_t w,
                            int64_t ph, int64_t pw);
// dst[q*nch + c] = src[c*ld + q] for q < npix, c < nch: a block of channels-first rows moved to
// pixels-major (channels-last); nch % 16 == 0.
void conv_pixels_major_avx512(float* dst, const float* src, int64_t ld, int64_t nch, int64_t npix);
// dxg (Cg, H, W) = the interior of xt ((H+2PH), (W+2PW), Cg), back to channels-first; Cg % 16 == 0.
void conv_nchw_from_nhwc_avx512(float* dxg, const float* xt, int64_t cg, int64_t h, int64_t w,
                                int64_t ph, int64_t pw);
// Backward-weight B panels (NR = 32) from the channels-last copy xt (row width wp): column
// j = tap * Cg + c (tap = kh * KW + kw) at pixel q is xt[(oh*SH + kh*DH) * wp + ow*SW + kw*DW][c],
// so each 16-column half of a panel row is one 64-byte copy (Cg % 16 == 0); rows at k-offset p0 of
// panels ktot long, zero for j >= Cg*KH*KW. Any stride and dilation; padding is in xt.
void conv_pack_bt_nhwc_avx512(float* dst, const float* xt, int64_t cg, int64_t wp,
                              const DirectConvShape& s, int64_t p0, int64_t ktot);
// Backward-weight B panels (NR = 32), no padding: B(q, t) = xg[pix[q] + tap_off[t]] at k-offset p0
// of panels ktot long; zero for t >= kk.
void conv_pack_bt_gather_avx512(float* dst, const float* xg, const int32_t* tap_off32, int64_t kk,
                                const int64_t* pix, int64_t ohw, int64_t p0, int64_t ktot);
// dxg (Cg, H, W) = col2im(col (Cg*KH*KW, ld)) for stride_w == 1; overwritten. Row by row: each
// 16-wide piece of a dx row sums its KH*KW contributions in a register and is stored once.
void conv_col2im_rows_avx512(float* dxg, const float* col, int64_t ld, int64_t cg,
                             const DirectConvShape& s);
// The same, tap by tap (read-modify-write of dx rows): the faster order when col is too large to
// stay in L2 while the KH*KW rows of the row-wise version stream from it.
void conv_col2im_s1_avx512(float* dxg, const float* col, int64_t ld, int64_t cg,
                           const DirectConvShape& s);

// conv_col2im_s1_avx512's AVX2 form (simd/conv_pack_avx2.cpp) for the output rows [oh_begin,
// oh_end): col's column 0 is pixel (oh_begin, 0); adds into dxg, which the caller zeroes first.
// Output rows narrower than 16 pixels go dx row by dx row, 8 floats summed in a register over the
// taps (masked loads); wider ones tap by tap, 8, 4 and 1 floats.
void conv_col2im_s1_avx2(float* dxg, const float* col, int64_t ld, int64_t cg, const DirectConvShape& s,
                         int64_t oh_begin, int64_t oh_end);

// One tile of the row-wise forward and backward-data (stride 1): C(i, j) for mr (1..14) consecutive output pixels of
// one output row and 32 output channels,
//   C(i, j) = sum_p x[koff[p] + i] * b[p*32 + j]     (c + i*ldc + j; overwritten)
// x points at the tile's first pixel in the (padded) input group, koff[p] is tap p's offset
// (c*Hp*Wp + kh*DH*Wp + kw*DW) and b a 64-byte aligned panel of the weights, k x 32 (w transposed).
// The inputs are broadcast straight from x: no packed copy of the image (the im2col panels of the
// implicit GEMM cost a quarter of the CNN's conv2 forward).
void conv_rows_tile_avx512(int mr, int64_t k, const float* x, const int32_t* koff, const float* b,
                           float* c, int64_t ldc);

// One dx row of the scatter backward-data (stride 1, KW = 3, DW = 1, PW <= 2), 16 channels:
//   C(x, j) = sum_r sum_o sum_kw rows[r][o*ostride + q] * b[((r*ocg + o)*3 + kw)*16 + j],
//   q = x + first - kw, 0 <= q < ow
// for x in [0, width) (c + x*ldc + j; overwritten): rows[r] is the dy row (of one image's group,
// channel 0) that tap row r reads, ostride the distance between dy channels, b a 64-byte aligned
// panel (nrows*ocg*3 x 16), first = PW. Each dy value is broadcast once and multiplied into its
// three dx pixels, so unlike the gather tiles nothing multiplies padding. ow in 1..22 (false
// otherwise, nothing written).
bool conv_scatter3_row_avx512(int ow, int64_t nrows, const float* const* rows, int64_t ocg,
                              int64_t ostride, const float* b, float* c, int64_t ldc, int first,
                              int width);

// Its AVX2 form (simd/conv_scatter_avx2.cpp) for 8 channels, written straight into dx's channel
// rows: for x in [0, width) and j < 8, dx[j*ldx + x] = the sum above (+ bias[j] when bias is not
// null) with b's rows 8 wide (a 32-byte aligned panel, nrows*ocg*3 x 8). Any ow >= 1: rows of more
// than 12 dy pixels go in segments of 6..12 dx pixels, each in registers. The forward is the same
// sum with x's rows for dy's and the kernel mirrored in kw (conv2d.cpp's forward_scatter_avx2).
void conv_scatter3_row_avx2(int ow, int64_t nrows, const float* const* rows, int64_t ocg, int64_t ostride,
                            const float* b, const float* bias, float* dx, int64_t ldx, int first, int width);

// The AVX2 backward-weight of a 3-wide kernel, stride 1 (simd/conv_bw3_avx2.cpp), for one image,
// 8 output channels and one input channel xc (h x w):
//   acc_io[(r*3 + kw)*8 + j] += sum over oh < oh_n, x pixels q of x row ih = oh - ph + r*dh in
//                               [0, h): xc[ih*w + q] * dyt[oh*dyt_row + (q + pw - kw + 2)*8 + j]
// for r < kh_n (<= 3). dyt is the 8 channels' dy, channels-inner (conv_dy_rows8_avx2): rows of
// (OW + 4) pixels of 8 floats, the two first and last zero; 32-byte aligned.
void conv_bw3_channel_avx2(const float* dyt, int64_t oh_n, int64_t dyt_row, const float* xc, int64_t h, int64_t w,
                           int64_t ph, int64_t dh, int kh_n, int pw, float* acc_io);
// dyt (oh_n rows of dyt_row >= (ow + 4) * 8 floats) from 8 dy planes (oh_n x ow, ostride apart):
// pixel q of row oh at dyt + oh*dyt_row + (q + 2)*8, two zero pixels each side.
void conv_dy_rows8_avx2(float* dyt, int64_t dyt_row, const float* dy, int64_t ostride, int64_t oh_n, int64_t ow);

// One tile of the row-wise backward-weight: mr (1..12) output channels x 32 input channels of one
// tap, summed over the pixels of nrows output rows of ow pixels,
//   C(i, j) (+)= sum_r sum_x a[(r*ow + x)*lda + i] * b[rowoff[r] + x*bstep + j]
// (c + i*ldc + j; added to when accumulate, else overwritten): a is dy pixels-major (lda = OCg),
// b the channels-last input at the tap's and the channel block's offset, rowoff[r] the offset of
// output row r's first pixel in it and bstep = SW*Cg. No packed copy of either operand.
void conv_bw_rows_tile_avx512(int mr, int64_t nrows, const int64_t* rowoff, int64_t ow,
                              int64_t bstep, const float* b, const float* a, int64_t lda, float* c,
                              int64_t ldc, bool accumulate);

// y[o*ld + q] = ct[q*ocg + o] + (bias ? bias[o] : 0) for q < npix, o < ocg: a block of row tiles
// (pixels x channels) moved to channels-first; ocg % 16 == 0.
void conv_rows_store_avx512(float* y, int64_t ld, const float* ct, int64_t npix, int64_t ocg,
                            const float* bias);

}  // namespace tsm
