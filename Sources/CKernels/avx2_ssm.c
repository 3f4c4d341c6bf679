// Mamba-1 kernels, avx2 path (AVX2 + FMA).
//
// conv: 8 channels per vector (taps [K][ld] make the 8 channels' taps one load); the
//   group's taps, bias and K - 1 state rows stay in registers over the chunk's tokens.
//   Fused multiply-adds over the taps in order and the polynomial exp (ssm_internal.h);
//   channels past the last full vector take roost_ssm_conv_lane, the same operations in
//   scalar, so every channel gets the same bits wherever it falls.
// scan: channel by channel, the state vector (N floats, N a multiple of 8 up to 64) and
//   A in registers over the chunk's tokens; exp(d * A) with the polynomial exp, the sum
//   over the state by vector lanes then a fixed horizontal reduction. Softplus and the
//   SiLU gate are scalar libm, as in the ref. Other N take the ref's per-channel step.
#include "ssm_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#define UNROLL _Pragma("GCC unroll 8")

INLINE __m256 exp_poly8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(ROOST_SSM_EXP_LO));
    x = _mm256_min_ps(x, _mm256_set1_ps(ROOST_SSM_EXP_HI));
    const __m256 n = _mm256_floor_ps(
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(ROOST_SSM_LOG2E)), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(ROOST_SSM_LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(ROOST_SSM_LN2_LO)));
    __m256 p = _mm256_set1_ps(ROOST_SSM_P0);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(ROOST_SSM_P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(ROOST_SSM_P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(ROOST_SSM_P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(ROOST_SSM_P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(ROOST_SSM_P5));
    const __m256 r2 = _mm256_mul_ps(r, r);
    __m256 y = _mm256_add_ps(_mm256_mul_ps(p, r2), r);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

INLINE __m256 silu_poly8(__m256 v) {
    const __m256 neg = _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_poly8(neg)));
}

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TARGET static void ssm_conv_avx2(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x, int64_t x_stride,
                                 const float *w, const float *b, float *state, float *y, int64_t y_stride) {
    int64_t c0 = 0;
    for (; K <= ROOST_SSM_CONV_MAX_K && c0 + 8 <= n; c0 += 8) {
        __m256 wk[ROOST_SSM_CONV_MAX_K], sk[ROOST_SSM_CONV_MAX_K];
        for (int64_t k = 0; k < K; k++) wk[k] = _mm256_loadu_ps(w + k * ld + c0);
        for (int64_t k = 0; k + 1 < K; k++) sk[k] = _mm256_loadu_ps(state + k * ld + c0);
        const __m256 bv = _mm256_loadu_ps(b + c0);
        for (int64_t t = 0; t < T; t++) {
            const __m256 xv = _mm256_loadu_ps(x + t * x_stride + c0);
            __m256 acc = bv;
            for (int64_t k = 0; k + 1 < K; k++) acc = _mm256_fmadd_ps(wk[k], sk[k], acc);
            acc = _mm256_fmadd_ps(wk[K - 1], xv, acc);
            for (int64_t k = 0; k + 2 < K; k++) sk[k] = sk[k + 1];
            if (K > 1) sk[K - 2] = xv;
            _mm256_storeu_ps(y + t * y_stride + c0, silu_poly8(acc));
        }
        for (int64_t k = 0; k + 1 < K; k++) _mm256_storeu_ps(state + k * ld + c0, sk[k]);
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = c0; c < n; c++)
            y[t * y_stride + c] = roost_ssm_conv_lane(K, ld, w + c, b[c], state + c, x[t * x_stride + c]);
}

TARGET static void ssm_scan_avx2(int64_t T, int64_t n, int64_t N, const float *x, int64_t x_stride,
                                 const float *dt, int64_t dt_stride, const float *dt_bias, const float *A,
                                 const float *B, const float *C, int64_t bc_stride, const float *D,
                                 const float *z, int64_t z_stride, float *state, float *y, int64_t y_stride) {
    if (N % 8 != 0 || N > 64) {
        for (int64_t c = 0; c < n; c++)
            for (int64_t t = 0; t < T; t++)
                y[t * y_stride + c] = roost_ssm_scan_ref_channel(
                    N, x[t * x_stride + c], dt[t * dt_stride + c], dt_bias[c], A + c * N, B + t * bc_stride,
                    C + t * bc_stride, D[c], z[t * z_stride + c], state + c * N);
        return;
    }
    const int64_t nv = N / 8;
    for (int64_t c = 0; c < n; c++) {
        __m256 sv[8], av[8];
        float *s = state + c * N;
        for (int64_t i = 0; i < nv; i++) {
            sv[i] = _mm256_loadu_ps(s + 8 * i);
            av[i] = _mm256_loadu_ps(A + c * N + 8 * i);
        }
        for (int64_t t = 0; t < T; t++) {
            const float xt = x[t * x_stride + c];
            const float d = roost_ssm_softplus(dt[t * dt_stride + c] + dt_bias[c]);
            const __m256 dv = _mm256_set1_ps(d), dxv = _mm256_set1_ps(d * xt);
            const float *Bt = B + t * bc_stride, *Ct = C + t * bc_stride;
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < nv; i++) {
                const __m256 dA = exp_poly8(_mm256_mul_ps(dv, av[i]));
                sv[i] = _mm256_fmadd_ps(sv[i], dA, _mm256_mul_ps(dxv, _mm256_loadu_ps(Bt + 8 * i)));
                acc = _mm256_fmadd_ps(sv[i], _mm256_loadu_ps(Ct + 8 * i), acc);
            }
            const float zt = z[t * z_stride + c];
            const float yv = hsum8(acc) + D[c] * xt;
            y[t * y_stride + c] = yv * (zt / (1.0f + expf(-zt)));
        }
        for (int64_t i = 0; i < nv; i++) _mm256_storeu_ps(s + 8 * i, sv[i]);
    }
}

void roost_register_avx2_ssm(roost_kernels *k) {
    k->ssm_conv = ssm_conv_avx2;
    k->ssm_scan = ssm_scan_avx2;
}

#else

void roost_register_avx2_ssm(roost_kernels *k) { (void)k; }

#endif
