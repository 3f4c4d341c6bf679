// Mamba-1 kernels, avx512 path (AVX-512 F): the scheme of avx2_ssm.c with 16-float
// vectors: conv 16 channels per vector, scan with N a multiple of 16 up to 128 (one
// vector for Mamba's usual N = 16). Other N take the ref's per-channel step; channels
// past the last full vector take roost_ssm_conv_lane (the same bits as a lane).
#include "ssm_internal.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

INLINE __m512 exp_poly16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(ROOST_SSM_EXP_LO));
    x = _mm512_min_ps(x, _mm512_set1_ps(ROOST_SSM_EXP_HI));
    const __m512 n = _mm512_roundscale_ps(
        _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(ROOST_SSM_LOG2E)), _mm512_set1_ps(0.5f)),
        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(ROOST_SSM_LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(ROOST_SSM_LN2_LO)));
    __m512 p = _mm512_set1_ps(ROOST_SSM_P0);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(ROOST_SSM_P1));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(ROOST_SSM_P2));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(ROOST_SSM_P3));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(ROOST_SSM_P4));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(ROOST_SSM_P5));
    const __m512 r2 = _mm512_mul_ps(r, r);
    __m512 y = _mm512_add_ps(_mm512_mul_ps(p, r2), r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
}

INLINE __m512 silu_poly16(__m512 v) {
    const __m512 neg = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int32_t)0x80000000u)));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_poly16(neg)));
}

TARGET static void ssm_conv_avx512(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x,
                                   int64_t x_stride, const float *w, const float *b, float *state, float *y,
                                   int64_t y_stride) {
    int64_t c0 = 0;
    for (; K <= ROOST_SSM_CONV_MAX_K && c0 + 16 <= n; c0 += 16) {
        __m512 wk[ROOST_SSM_CONV_MAX_K], sk[ROOST_SSM_CONV_MAX_K];
        for (int64_t k = 0; k < K; k++) wk[k] = _mm512_loadu_ps(w + k * ld + c0);
        for (int64_t k = 0; k + 1 < K; k++) sk[k] = _mm512_loadu_ps(state + k * ld + c0);
        const __m512 bv = _mm512_loadu_ps(b + c0);
        for (int64_t t = 0; t < T; t++) {
            const __m512 xv = _mm512_loadu_ps(x + t * x_stride + c0);
            __m512 acc = bv;
            for (int64_t k = 0; k + 1 < K; k++) acc = _mm512_fmadd_ps(wk[k], sk[k], acc);
            acc = _mm512_fmadd_ps(wk[K - 1], xv, acc);
            for (int64_t k = 0; k + 2 < K; k++) sk[k] = sk[k + 1];
            if (K > 1) sk[K - 2] = xv;
            _mm512_storeu_ps(y + t * y_stride + c0, silu_poly16(acc));
        }
        for (int64_t k = 0; k + 1 < K; k++) _mm512_storeu_ps(state + k * ld + c0, sk[k]);
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = c0; c < n; c++)
            y[t * y_stride + c] = roost_ssm_conv_lane(K, ld, w + c, b[c], state + c, x[t * x_stride + c]);
}

TARGET static void ssm_scan_avx512(int64_t T, int64_t n, int64_t N, const float *x, int64_t x_stride,
                                   const float *dt, int64_t dt_stride, const float *dt_bias, const float *A,
                                   const float *B, const float *C, int64_t bc_stride, const float *D,
                                   const float *z, int64_t z_stride, float *state, float *y, int64_t y_stride) {
    if (N % 16 != 0 || N > 128) {
        for (int64_t c = 0; c < n; c++)
            for (int64_t t = 0; t < T; t++)
                y[t * y_stride + c] = roost_ssm_scan_ref_channel(
                    N, x[t * x_stride + c], dt[t * dt_stride + c], dt_bias[c], A + c * N, B + t * bc_stride,
                    C + t * bc_stride, D[c], z[t * z_stride + c], state + c * N);
        return;
    }
    const int64_t nv = N / 16;
    for (int64_t c = 0; c < n; c++) {
        __m512 sv[8], av[8];
        float *s = state + c * N;
        for (int64_t i = 0; i < nv; i++) {
            sv[i] = _mm512_loadu_ps(s + 16 * i);
            av[i] = _mm512_loadu_ps(A + c * N + 16 * i);
        }
        for (int64_t t = 0; t < T; t++) {
            const float xt = x[t * x_stride + c];
            const float d = roost_ssm_softplus(dt[t * dt_stride + c] + dt_bias[c]);
            const __m512 dv = _mm512_set1_ps(d), dxv = _mm512_set1_ps(d * xt);
            const float *Bt = B + t * bc_stride, *Ct = C + t * bc_stride;
            __m512 acc = _mm512_setzero_ps();
            for (int64_t i = 0; i < nv; i++) {
                const __m512 dA = exp_poly16(_mm512_mul_ps(dv, av[i]));
                sv[i] = _mm512_fmadd_ps(sv[i], dA, _mm512_mul_ps(dxv, _mm512_loadu_ps(Bt + 16 * i)));
                acc = _mm512_fmadd_ps(sv[i], _mm512_loadu_ps(Ct + 16 * i), acc);
            }
            const float zt = z[t * z_stride + c];
            const float yv = _mm512_reduce_add_ps(acc) + D[c] * xt;
            y[t * y_stride + c] = yv * (zt / (1.0f + expf(-zt)));
        }
        for (int64_t i = 0; i < nv; i++) _mm512_storeu_ps(s + 16 * i, sv[i]);
    }
}

void roost_register_avx512_ssm(roost_kernels *k) {
    k->ssm_conv = ssm_conv_avx512;
    k->ssm_scan = ssm_scan_avx512;
}

#else

void roost_register_avx512_ssm(roost_kernels *k) { (void)k; }

#endif
