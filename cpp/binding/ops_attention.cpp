// N-API entry points for the attention kernels. Outputs come first and are preallocated by the
// caller. Every buffer length (the mask's included, from its strides) is checked here, so that no
// call from JavaScript can make a kernel read or write out of bounds.
//
//   attentionForward(out, lse, q, k, v, mask|null, s0, s1, s2, s3, B, H, Lq, Lk, D, scale, isCausal,
//                    dropoutP, seed, offset)
//   attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, mask|null, s0, s1, s2, s3, B, H, Lq, Lk,
//                     D, scale, isCausal, dropoutP, seed, offset)
//   attentionForwardReference(out, lse, ...same as attentionForward from q on)
// The mask's kind follows its type: Float32Array = additive, Int32Array or Uint8Array = boolean
// (nonzero attends). s0..s3 are its element strides over (b, h, i, j).
#include <string>

#include "binding.h"

using namespace tsm_binding;

namespace {

constexpr int64_t kMaxSafe = 9007199254740991;

int64_t mul(Napi::Env env, const char* op, int64_t a, int64_t b) {
  if (a != 0 && b > kMaxSafe / a) range_error(env, std::string(op) + ": sizes are too large");
  return a * b;
}

float* f32_need(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, int64_t want) {
  size_t len = 0;
  float* p = arg_f32(info, i, op, name, &len);
  need(info.Env(), op, name, len, want);
  return p;
}

// Parses mask (at index i) and the sizes that follow it into desc; returns the element counts.
struct Sizes {
  int64_t q, kv, lse;
};

Sizes parse_desc(const Napi::CallbackInfo& info, size_t i, const char* op, tsm_attention_desc* d) {
  Napi::Env env = info.Env();
  *d = tsm_attention_desc{};
  int64_t st[4];
  for (int s = 0; s < 4; ++s) {
    st[s] = arg_int(info, i + 1 + s, op, "mask stride");
    if (st[s] < 0) range_error(env, std::string(op) + ": mask strides must be >= 0");
  }
  const char* names[5] = {"B", "H", "Lq", "Lk", "D"};
  int64_t sz[5];
  for (int s = 0; s < 5; ++s) {
    sz[s] = arg_int(info, i + 5 + s, op, names[s]);
    if (sz[s] < 0) range_error(env, std::string(op) + ": " + names[s] + " must be >= 0");
  }
  d->b = sz[0]; d->h = sz[1]; d->lq = sz[2]; d->lk = sz[3]; d->d = sz[4];
  d->scale = static_cast<float>(arg_num(info, i + 10, op, "scale"));
  d->is_causal = arg_bool(info, i + 11) ? 1 : 0;
  d->dropout_p = arg_num(info, i + 12, op, "dropoutP");
  const int64_t seed = arg_int(info, i + 13, op, "seed"), offset = arg_int(info, i + 14, op, "offset");
  if (seed < 0 || offset < 0) range_error(env, std::string(op) + ": seed and offset must be >= 0");
  d->seed = static_cast<uint64_t>(seed);
  d->offset = static_cast<uint64_t>(offset);
  const int64_t bh = mul(env, op, d->b, d->h);
  Sizes out{mul(env, op, mul(env, op, bh, d->lq), d->d), mul(env, op, mul(env, op, bh, d->lk), d->d),
            mul(env, op, bh, d->lq)};
  // The mask: the largest offset any (b, h, i, j) reaches must lie inside it.
  const bool has_mask = i < info.Length() && !info[i].IsNull() && !info[i].IsUndefined();
  if (has_mask) {
    if (!info[i].IsTypedArray()) type_error(env, std::string(op) + ": mask must be a Float32Array, Int32Array, Uint8Array or null");
    Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
    size_t len = ta.ElementLength();
    switch (ta.TypedArrayType()) {
      case napi_float32_array: d->mask_kind = TSM_ATTN_MASK_FLOAT; break;
      case napi_int32_array: d->mask_kind = TSM_ATTN_MASK_BOOL_I32; break;
      case napi_uint8_array: d->mask_kind = TSM_ATTN_MASK_BOOL_U8; break;
      default: type_error(env, std::string(op) + ": mask must be a Float32Array, Int32Array, Uint8Array or null");
    }
    int64_t reach = 1;
    bool any_empty = false;
    for (int s = 0; s < 4; ++s) if (sz[s] == 0) any_empty = true;
    if (!any_empty) {
      const int64_t ext[4] = {d->b, d->h, d->lq, d->lk};
      for (int s = 0; s < 4; ++s) reach += mul(env, op, ext[s] - 1, st[s]);
      if (reach > kMaxSafe || reach < 1) range_error(env, std::string(op) + ": mask strides are too large");
      need(env, op, "mask", len, reach);
    }
    // napi_get_typedarray_info works for SharedArrayBuffer backing too (ArrayBuffer().Data() throws).
    void* mask_data = nullptr;
    if (len && napi_get_typedarray_info(env, ta, nullptr, nullptr, &mask_data, nullptr, nullptr) != napi_ok)
      type_error(env, std::string(op) + ": cannot read the mask's memory");
    d->mask = len ? static_cast<const uint8_t*>(mask_data) : nullptr;
    for (int s = 0; s < 4; ++s) d->mask_strides[s] = st[s];
  }
  return out;
}

Napi::Value AttentionForwardImpl(const Napi::CallbackInfo& info, bool reference) {
  Napi::Env env = info.Env();
  const char* op = reference ? "attentionForwardReference" : "attentionForward";
  tsm_attention_desc d;
  const Sizes n = parse_desc(info, 5, op, &d);
  float* out = f32_need(info, 0, op, "out", n.q);
  float* lse = f32_need(info, 1, op, "lse", n.lse);
  const float* q = f32_need(info, 2, op, "q", n.q);
  const float* k = f32_need(info, 3, op, "k", n.kv);
  const float* v = f32_need(info, 4, op, "v", n.kv);
  check(env, reference ? tsm_attention_forward_reference(out, lse, q, k, v, &d)
                       : tsm_attention_forward(out, lse, q, k, v, &d));
  return env.Undefined();
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) { return AttentionForwardImpl(info, false); }
Napi::Value AttentionForwardReference(const Napi::CallbackInfo& info) { return AttentionForwardImpl(info, true); }

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "attentionBackward";
  tsm_attention_desc d;
  const Sizes n = parse_desc(info, 9, op, &d);
  float* dq = f32_need(info, 0, op, "dq", n.q);
  float* dk = f32_need(info, 1, op, "dk", n.kv);
  float* dv = f32_need(info, 2, op, "dv", n.kv);
  const float* dout = f32_need(info, 3, op, "dout", n.q);
  const float* q = f32_need(info, 4, op, "q", n.q);
  const float* k = f32_need(info, 5, op, "k", n.kv);
  const float* v = f32_need(info, 6, op, "v", n.kv);
  const float* out = f32_need(info, 7, op, "out", n.q);
  const float* lse = f32_need(info, 8, op, "lse", n.lse);
  check(env, tsm_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, &d));
  return env.Undefined();
}

}  // namespace

void register_ops_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("attentionForwardReference",
              Napi::Function::New(env, AttentionForwardReference, "attentionForwardReference"));
}
