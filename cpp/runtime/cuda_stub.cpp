// Stand-ins for the CUDA entry points in builds without CUDA (TSM_CUDA=OFF or no nvcc). Keep in sync
// with the "section: cuda", "section: cuda tensor kernels" and "section: cuda nn kernels" blocks of tensorsmith.h: every tsm_cuda_* function exists here and, apart
// from the queries, fails with TSM_ERR_UNSUPPORTED and a message naming the call.
#include "runtime.h"

namespace {
tsm_status unsupported(const char* call) {
  return tsm::fail(TSM_ERR_UNSUPPORTED, "%s: this build has no CUDA support", call);
}
}  // namespace

extern "C" {

TSM_API int tsm_cuda_compiled(void) { return 0; }

TSM_API tsm_status tsm_cuda_device_count(int* count) {
  if (count) *count = 0;
  return unsupported("cuda_device_count");
}

TSM_API int tsm_cuda_runtime_version(void) { return 0; }

TSM_API tsm_status tsm_cuda_set_device(int) { return unsupported("cuda_set_device"); }
TSM_API tsm_status tsm_cuda_get_device(int* device) {
  if (device) *device = -1;
  return unsupported("cuda_get_device");
}
TSM_API tsm_status tsm_cuda_device_info(int, char* name, size_t name_len, int*, int*, int*, size_t*) {
  if (name && name_len) name[0] = '\0';
  return unsupported("cuda_device_info");
}
TSM_API tsm_status tsm_cuda_get_stream(void** stream) {
  if (stream) *stream = nullptr;
  return unsupported("cuda_get_stream");
}
TSM_API tsm_status tsm_cuda_synchronize(void) { return unsupported("cuda_synchronize"); }
TSM_API tsm_status tsm_cuda_malloc(void** ptr, size_t) {
  if (ptr) *ptr = nullptr;
  return unsupported("cuda_malloc");
}
TSM_API tsm_status tsm_cuda_free(void* ptr) {
  return ptr ? unsupported("cuda_free") : TSM_OK;
}
TSM_API tsm_status tsm_cuda_empty_cache(void) { return unsupported("cuda_empty_cache"); }
TSM_API tsm_status tsm_cuda_memory_stats_get(tsm_cuda_memory_stats* stats) {
  if (stats) *stats = tsm_cuda_memory_stats{};
  return unsupported("cuda_memory_stats_get");
}
TSM_API tsm_status tsm_cuda_memcpy_h2d(void*, const void*, size_t) { return unsupported("cuda_memcpy_h2d"); }
TSM_API tsm_status tsm_cuda_memcpy_d2h(void*, const void*, size_t) { return unsupported("cuda_memcpy_d2h"); }
TSM_API tsm_status tsm_cuda_memcpy_d2d(void*, const void*, size_t) { return unsupported("cuda_memcpy_d2d"); }
TSM_API tsm_status tsm_cuda_memset(void*, int, size_t) { return unsupported("cuda_memset"); }
TSM_API tsm_status tsm_cuda_gemm_set_algo(tsm_cuda_gemm_algo) { return unsupported("cuda_gemm_set_algo"); }
TSM_API tsm_cuda_gemm_algo tsm_cuda_gemm_last_algo(void) { return TSM_CUDA_ALGO_AUTO; }

TSM_API tsm_status tsm_cuda_sgemm(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                  const float*, int64_t, float, float*, int64_t) {
  return unsupported("cuda_sgemm");
}
TSM_API tsm_status tsm_cuda_sgemm_strided_batched(int, int, int64_t, int64_t, int64_t, int64_t, float,
                                                  const float*, int64_t, int64_t, const float*, int64_t,
                                                  int64_t, float, float*, int64_t, int64_t) {
  return unsupported("cuda_sgemm_strided_batched");
}
TSM_API tsm_status tsm_cuda_gemm_ex(tsm_cuda_gemm_type, int, int, int64_t, int64_t, int64_t, float,
                                    const void*, int64_t, const void*, int64_t, float, void*,
                                    tsm_cuda_dtype, int64_t, const float*, tsm_cuda_activation) {
  return unsupported("cuda_gemm_ex");
}
TSM_API tsm_status tsm_cuda_gemm_strided_batched_ex(tsm_cuda_gemm_type, int, int, int64_t, int64_t,
                                                    int64_t, int64_t, float, const void*, int64_t,
                                                    int64_t, const void*, int64_t, int64_t, float, void*,
                                                    tsm_cuda_dtype, int64_t, int64_t, const float*,
                                                    tsm_cuda_activation) {
  return unsupported("cuda_gemm_strided_batched_ex");
}

TSM_API tsm_status tsm_cuda_attention_forward(void*, float*, const void*, const void*, const void*,
                                              const tsm_cuda_attention_desc*) {
  return unsupported("cuda_attention_forward");
}
TSM_API tsm_status tsm_cuda_attention_backward(void*, void*, void*, const void*, const void*, const void*,
                                               const void*, const void*, const float*,
                                               const tsm_cuda_attention_desc*) {
  return unsupported("cuda_attention_backward");
}
// ---- section: cuda tensor kernels ----
TSM_API tsm_status tsm_cuda_unary_forward(int, float*, const float*, int64_t) {
  return unsupported("cuda_unary_forward");
}
TSM_API tsm_status tsm_cuda_unary_backward(int, float*, const float*, const float*, const float*, int64_t) {
  return unsupported("cuda_unary_backward");
}
TSM_API tsm_status tsm_cuda_binary_same(int, float*, const float*, const float*, int64_t) {
  return unsupported("cuda_binary_same");
}
TSM_API tsm_status tsm_cuda_scalar_forward(int, float*, const float*, float, int, int64_t) {
  return unsupported("cuda_scalar_forward");
}
TSM_API tsm_status tsm_cuda_binary_forward(int, float*, const float*, const float*, int, const int64_t*,
                                           const int64_t*, const int64_t*) {
  return unsupported("cuda_binary_forward");
}
TSM_API tsm_status tsm_cuda_strided_copy(void*, int64_t, const int64_t*, const void*, int64_t, const int64_t*, int,
                                         const int64_t*) {
  return unsupported("cuda_strided_copy");
}
TSM_API tsm_status tsm_cuda_fill32(void*, uint32_t, int64_t) { return unsupported("cuda_fill32"); }
TSM_API tsm_status tsm_cuda_cast_f32_i32(int32_t*, const float*, int64_t) { return unsupported("cuda_cast_f32_i32"); }
TSM_API tsm_status tsm_cuda_cast_i32_f32(float*, const int32_t*, int64_t) { return unsupported("cuda_cast_i32_f32"); }
TSM_API tsm_status tsm_cuda_sum(float*, const float*, int64_t, int64_t, int64_t, float) {
  return unsupported("cuda_sum");
}
TSM_API tsm_status tsm_cuda_arg_reduce(float*, int32_t*, const float*, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_arg_reduce");
}
TSM_API tsm_status tsm_cuda_arg_reduce_backward(float*, const float*, const int32_t*, int64_t, int64_t, int64_t) {
  return unsupported("cuda_arg_reduce_backward");
}
TSM_API tsm_status tsm_cuda_softmax_forward(float*, const float*, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_softmax_forward");
}
TSM_API tsm_status tsm_cuda_softmax_backward(float*, const float*, const float*, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_softmax_backward");
}
TSM_API tsm_status tsm_cuda_sgd_step(float* const*, float* const*, const float* const*, const int64_t*, int64_t,
                                     double, double, double, double, int, int, int) {
  return unsupported("cuda_sgd_step");
}
TSM_API tsm_status tsm_cuda_adam_step(float* const*, float* const*, float* const*, float* const*,
                                      const float* const*, const int64_t*, int64_t, double, double, double,
                                      double, double, int64_t, int, int, int) {
  return unsupported("cuda_adam_step");
}

// section: cuda nn kernels
TSM_API tsm_status tsm_cuda_conv2d_forward(float*, const float*, const float*, const float*, const tsm_conv2d_desc*) {
  return unsupported("cuda_conv2d_forward");
}
TSM_API tsm_status tsm_cuda_conv2d_backward_data(float*, const float*, const float*, const tsm_conv2d_desc*) {
  return unsupported("cuda_conv2d_backward_data");
}
TSM_API tsm_status tsm_cuda_conv2d_backward_weight(float*, float*, const float*, const float*, const tsm_conv2d_desc*) {
  return unsupported("cuda_conv2d_backward_weight");
}
TSM_API tsm_status tsm_cuda_max_pool2d_forward(float*, int32_t*, const float*, const tsm_pool2d_desc*) {
  return unsupported("cuda_max_pool2d_forward");
}
TSM_API tsm_status tsm_cuda_max_pool2d_backward(float*, const float*, const int32_t*, const tsm_pool2d_desc*) {
  return unsupported("cuda_max_pool2d_backward");
}
TSM_API tsm_status tsm_cuda_avg_pool2d_forward(float*, const float*, const tsm_pool2d_desc*) {
  return unsupported("cuda_avg_pool2d_forward");
}
TSM_API tsm_status tsm_cuda_avg_pool2d_backward(float*, const float*, const tsm_pool2d_desc*) {
  return unsupported("cuda_avg_pool2d_backward");
}
TSM_API tsm_status tsm_cuda_cross_entropy_forward(float*, float*, float*, float*, const float*, const int32_t*, int64_t,
                                                  int64_t, int64_t, float, int) {
  return unsupported("cuda_cross_entropy_forward");
}
TSM_API tsm_status tsm_cuda_cross_entropy_backward(float*, const float*, const int32_t*, const float*, const float*,
                                                   int64_t, int64_t, int64_t, float, int) {
  return unsupported("cuda_cross_entropy_backward");
}

// section: cuda norm kernels (tensorsmith.h "section: cuda norm kernels")
TSM_API tsm_status tsm_cuda_layer_norm_forward(float*, float*, float*, const float*, const float*, const float*, int64_t,
                                               int64_t, float) {
  return unsupported("cuda_layer_norm_forward");
}
TSM_API tsm_status tsm_cuda_layer_norm_backward(float*, float*, float*, const float*, const float*, const float*,
                                                const float*, const float*, int64_t, int64_t) {
  return unsupported("cuda_layer_norm_backward");
}
TSM_API tsm_status tsm_cuda_batch_norm_forward(float*, float*, float*, float*, float*, const float*, const float*,
                                               const float*, int64_t, int64_t, int64_t, int, float, float, int32_t*) {
  return unsupported("cuda_batch_norm_forward");
}
TSM_API tsm_status tsm_cuda_batch_norm_backward(float*, float*, float*, const float*, const float*, const float*,
                                                const float*, const float*, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_batch_norm_backward");
}
TSM_API tsm_status tsm_cuda_embedding_forward(float*, const int32_t*, const float*, int64_t, int64_t, int64_t) {
  return unsupported("cuda_embedding_forward");
}
TSM_API tsm_status tsm_cuda_embedding_backward(float*, const float*, const int32_t*, int64_t, int64_t, int64_t, int64_t) {
  return unsupported("cuda_embedding_backward");
}
TSM_API tsm_status tsm_cuda_dropout_forward(float*, float*, const float*, double, uint64_t, uint64_t, int64_t) {
  return unsupported("cuda_dropout_forward");
}
TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_forward(float*, const float*, const tsm_pool2d_shape*) {
  return unsupported("cuda_adaptive_avg_pool2d_forward");
}
TSM_API tsm_status tsm_cuda_adaptive_avg_pool2d_backward(float*, const float*, const tsm_pool2d_shape*) {
  return unsupported("cuda_adaptive_avg_pool2d_backward");
}
// ---- section: cuda sequence kernels ----
TSM_API tsm_status tsm_cuda_lstm_forward(float*, float*, float*, float*, float*, const float*, const float*,
                                         const float*, const float*, const float*, const float*, const float*,
                                         int64_t, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_lstm_forward");
}
TSM_API tsm_status tsm_cuda_lstm_backward(float*, float*, float*, float*, float*, float*, float*, const float*,
                                          const float*, const float*, const float*, const float*, const float*,
                                          const float*, const float*, const float*, const float*, const float*,
                                          int64_t, int64_t, int64_t, int64_t, int) {
  return unsupported("cuda_lstm_backward");
}
TSM_API tsm_status tsm_cuda_gather(void*, const void*, const int32_t*, int, const int64_t*, const int64_t*, int) {
  return unsupported("cuda_gather");
}
TSM_API tsm_status tsm_cuda_gather_backward(float*, const float*, const int32_t*, int, const int64_t*,
                                            const int64_t*, int) {
  return unsupported("cuda_gather_backward");
}
TSM_API tsm_status tsm_cuda_index_select(void*, const void*, const int32_t*, int64_t, int64_t, int64_t, int64_t) {
  return unsupported("cuda_index_select");
}
TSM_API tsm_status tsm_cuda_index_select_backward(float*, const float*, const int32_t*, const int32_t*, int64_t,
                                                  int64_t, int64_t, int64_t) {
  return unsupported("cuda_index_select_backward");
}
TSM_API tsm_status tsm_cuda_where(void*, const void*, int, const void*, const void*, int, const int64_t*,
                                  const int64_t*, const int64_t*, const int64_t*) {
  return unsupported("cuda_where");
}
// section: mixed precision (cuda)
TSM_API tsm_status tsm_cuda_cast_float(void*, tsm_cuda_dtype, const void*, tsm_cuda_dtype, int64_t) {
  return unsupported("cuda_cast_float");
}
TSM_API tsm_status tsm_cuda_amp_unscale(float* const*, const int64_t*, int64_t, float, float*) {
  return unsupported("cuda_amp_unscale");
}

}  // extern "C"
