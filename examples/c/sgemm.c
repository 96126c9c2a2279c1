/*
 * Calling tensorsmith's kernels from C through its stable ABI (tensorsmith.h + libtensorsmith.so).
 *
 * Build against the source tree (after `npm install`, which builds build/Release/libtensorsmith.so):
 *   cc -O2 -std=c99 examples/c/sgemm.c -Icpp/include -Lbuild/Release -ltensorsmith \
 *      -Wl,-rpath,$PWD/build/Release -o sgemm && ./sgemm
 * or against an installed copy (`cmake --install build --prefix /opt/tsm`) with CMake:
 *   cmake -S examples/c -B /tmp/ex -DCMAKE_PREFIX_PATH=/opt/tsm && cmake --build /tmp/ex && /tmp/ex/sgemm
 *
 * It multiplies a 3x4 matrix by a 4x5 one with tsm_sgemm, checks the product against a naive loop,
 * then shows how failures are reported: a status code, tsm_status_string() and tsm_last_error().
 * Exit status 0 when everything checks out.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tensorsmith.h"

enum { M = 3, N = 5, K = 4 };

int main(void) {
  int failures = 0;
  printf("tensorsmith %s, simd %s\n", tsm_version(), tsm_simd_name(tsm_get_simd()));

  tsm_status st = tsm_set_num_threads(2);
  printf("tsm_set_num_threads(2): %s, threads now %d\n", tsm_status_string(st), tsm_get_num_threads());
  if (st != TSM_OK) ++failures;

  /* Row-major A (M x K), B (K x N), C (M x N). */
  float a[M * K], b[K * N], c[M * N];
  for (int i = 0; i < M * K; ++i) a[i] = (float)(i % 7) - 3.0f;
  for (int i = 0; i < K * N; ++i) b[i] = 0.5f * (float)(i % 5) - 1.0f;
  for (int i = 0; i < M * N; ++i) c[i] = 1.0f;

  /* C = 2 * A * B + 0.5 * C */
  const float alpha = 2.0f, beta = 0.5f;
  st = tsm_sgemm(0, 0, M, N, K, alpha, a, K, b, N, beta, c, N);
  printf("tsm_sgemm(%dx%dx%d): %s\n", M, N, K, tsm_status_string(st));
  if (st != TSM_OK) {
    fprintf(stderr, "error: %s\n", tsm_last_error());
    return 1;
  }

  double max_err = 0.0;
  for (int i = 0; i < M; ++i) {
    printf("  C[%d] =", i);
    for (int j = 0; j < N; ++j) {
      double ref = 0.0;
      for (int p = 0; p < K; ++p) ref += (double)a[i * K + p] * (double)b[p * N + j];
      ref = alpha * ref + beta * 1.0;
      const double err = fabs(ref - (double)c[i * N + j]);
      if (err > max_err) max_err = err;
      printf(" %7.2f", c[i * N + j]);
    }
    printf("\n");
  }
  printf("max |C - reference| = %g\n", max_err);
  if (max_err > 1e-4) {
    fprintf(stderr, "error: the product does not match the naive loop\n");
    ++failures;
  }

  /* Errors are status codes, never crashes: lda must be >= K for an untransposed A. */
  st = tsm_sgemm(0, 0, M, N, K, 1.0f, a, K - 1, b, N, 0.0f, c, N);
  printf("tsm_sgemm with lda=%d (< k=%d): %s (%d)\n", K - 1, K, tsm_status_string(st), (int)st);
  printf("  tsm_last_error(): %s\n", tsm_last_error());
  if (st != TSM_ERR_INVALID_ARGUMENT) {
    fprintf(stderr, "error: expected TSM_ERR_INVALID_ARGUMENT\n");
    ++failures;
  }

  st = tsm_set_num_threads(0);
  printf("tsm_set_num_threads(0): %s\n", tsm_status_string(st));
  if (st != TSM_ERR_INVALID_ARGUMENT) ++failures;

  printf("%s\n", failures == 0 ? "OK" : "FAILED");
  return failures == 0 ? 0 : 1;
}
