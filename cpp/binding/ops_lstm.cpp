// N-API entry points for the lstm kernels (cpp/kernels/lstm.cpp). Outputs come first and are
// preallocated by the caller; null stands for an optional buffer (C NULL). Every buffer length is
// checked here against the sizes, so that no call from JavaScript can read or write out of bounds.
//
//   lstmForward(y, hN, cN, gates, cs, x, h0|null, c0|null, wIh, wHh, bIh|null, bHh|null,
//               T, B, I, H, batchFirst)
//     y, cs: T*B*H   hN, cN, h0, c0: B*H   gates: T*B*4H   x: T*B*I   wIh: 4H*I   wHh: 4H*H
//     bIh, bHh: 4H   (layouts as tsm_lstm_forward in tensorsmith.h)
//   lstmBackward(dx|null, dh0|null, dc0|null, dwIh|null, dwHh|null, dbIh|null, dbHh|null,
//                dy|null, dhN|null, dcN|null, x, h0|null, c0|null, wIh, wHh, y, gates, cs,
//                T, B, I, H, batchFirst)
#include <string>

#include "binding.h"

using namespace tsm_binding;

namespace {


float* f32_need(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t want) {
  size_t len = 0;
  float* p = arg_f32(info, i, op, name, &len);
  need(info.Env(), op, name, len, want);
  return p;
}

float* opt_f32_need(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t want) {
  if (is_null(info, i)) return nullptr;
  return f32_need(info, i, op, name, want);
}

struct Sizes {
  int64_t T, B, I, H;
  bool batch_first;
};

Sizes sizes(const Napi::CallbackInfo& info, size_t at, const char* op) {
  Napi::Env env = info.Env();
  Sizes s{arg_int(info, at, op, "T"), arg_int(info, at + 1, op, "B"), arg_int(info, at + 2, op, "I"),
          arg_int(info, at + 3, op, "H"), arg_bool(info, at + 4)};
  if (s.T < 0 || s.B < 0 || s.I < 0 || s.H < 1)
    range_error(env, std::string(op) + ": need T, B, I >= 0 and H >= 1");
  const double lim = 9007199254740991.0;
  if (double(s.T) * double(s.B) * double(4 * s.H) > lim / 4 || double(s.T) * double(s.B) * double(s.I) > lim / 4 ||
      double(4 * s.H) * double(s.I + s.H) > lim / 4)
    range_error(env, std::string(op) + ": sizes are too large");
  return s;
}

Napi::Value LstmForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "lstmForward";
  const Sizes s = sizes(info, 12, op);
  const int64_t TB = s.T * s.B, G = 4 * s.H;
  float* y = f32_need(info, 0, op, "y", TB * s.H);
  float* h_n = f32_need(info, 1, op, "hN", s.B * s.H);
  float* c_n = f32_need(info, 2, op, "cN", s.B * s.H);
  float* gates = f32_need(info, 3, op, "gates", TB * G);
  float* cs = f32_need(info, 4, op, "cs", TB * s.H);
  const float* x = f32_need(info, 5, op, "x", TB * s.I);
  const float* h0 = opt_f32_need(info, 6, op, "h0", s.B * s.H);
  const float* c0 = opt_f32_need(info, 7, op, "c0", s.B * s.H);
  const float* w_ih = f32_need(info, 8, op, "wIh", G * s.I);
  const float* w_hh = f32_need(info, 9, op, "wHh", G * s.H);
  const float* b_ih = opt_f32_need(info, 10, op, "bIh", G);
  const float* b_hh = opt_f32_need(info, 11, op, "bHh", G);
  check(env, tsm_lstm_forward(y, h_n, c_n, gates, cs, x, h0, c0, w_ih, w_hh, b_ih, b_hh, s.T, s.B, s.I, s.H,
                              s.batch_first ? 1 : 0));
  return env.Undefined();
}

Napi::Value LstmBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "lstmBackward";
  const Sizes s = sizes(info, 18, op);
  const int64_t TB = s.T * s.B, G = 4 * s.H, BH = s.B * s.H;
  float* dx = opt_f32_need(info, 0, op, "dx", TB * s.I);
  float* dh0 = opt_f32_need(info, 1, op, "dh0", BH);
  float* dc0 = opt_f32_need(info, 2, op, "dc0", BH);
  float* dw_ih = opt_f32_need(info, 3, op, "dwIh", G * s.I);
  float* dw_hh = opt_f32_need(info, 4, op, "dwHh", G * s.H);
  float* db_ih = opt_f32_need(info, 5, op, "dbIh", G);
  float* db_hh = opt_f32_need(info, 6, op, "dbHh", G);
  const float* dy = opt_f32_need(info, 7, op, "dy", TB * s.H);
  const float* dh_n = opt_f32_need(info, 8, op, "dhN", BH);
  const float* dc_n = opt_f32_need(info, 9, op, "dcN", BH);
  const float* x = f32_need(info, 10, op, "x", TB * s.I);
  const float* h0 = opt_f32_need(info, 11, op, "h0", BH);
  const float* c0 = opt_f32_need(info, 12, op, "c0", BH);
  const float* w_ih = f32_need(info, 13, op, "wIh", G * s.I);
  const float* w_hh = f32_need(info, 14, op, "wHh", G * s.H);
  const float* y = f32_need(info, 15, op, "y", TB * s.H);
  const float* gates = f32_need(info, 16, op, "gates", TB * G);
  const float* cs = f32_need(info, 17, op, "cs", TB * s.H);
  check(env, tsm_lstm_backward(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dy, dh_n, dc_n, x, h0, c0, w_ih, w_hh, y,
                               gates, cs, s.T, s.B, s.I, s.H, s.batch_first ? 1 : 0));
  return env.Undefined();
}

}  // namespace

void register_ops_lstm(Napi::Env env, Napi::Object exports) {
  exports.Set("lstmForward", Napi::Function::New(env, LstmForward, "lstmForward"));
  exports.Set("lstmBackward", Napi::Function::New(env, LstmBackward, "lstmBackward"));
}
