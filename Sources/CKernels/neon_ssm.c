// Mamba-1 kernels, neon path (AArch64 Advanced SIMD): the scheme of avx2_ssm.c with
// 4-float vectors: conv 4 channels per vector, scan with N a multiple of 4 up to 64. Other
// N take the ref's per-channel step; channels past the last full vector take
// roost_ssm_conv_lane (the same bits as a lane).
#include "ssm_internal.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))

INLINE float32x4_t exp_poly4(float32x4_t x) {
    x = vmaxq_f32(x, vdupq_n_f32(ROOST_SSM_EXP_LO));
    x = vminq_f32(x, vdupq_n_f32(ROOST_SSM_EXP_HI));
    const float32x4_t n = vrndmq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(ROOST_SSM_LOG2E)), vdupq_n_f32(0.5f)));
    float32x4_t r = vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(ROOST_SSM_LN2_HI)));
    r = vsubq_f32(r, vmulq_f32(n, vdupq_n_f32(ROOST_SSM_LN2_LO)));
    float32x4_t p = vdupq_n_f32(ROOST_SSM_P0);
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(ROOST_SSM_P1));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(ROOST_SSM_P2));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(ROOST_SSM_P3));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(ROOST_SSM_P4));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(ROOST_SSM_P5));
    const float32x4_t r2 = vmulq_f32(r, r);
    float32x4_t y = vaddq_f32(vmulq_f32(p, r2), r);
    y = vaddq_f32(y, vdupq_n_f32(1.0f));
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(bits));
}

INLINE float32x4_t silu_poly4(float32x4_t v) {
    return vdivq_f32(v, vaddq_f32(vdupq_n_f32(1.0f), exp_poly4(vnegq_f32(v))));
}

static void ssm_conv_neon(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x, int64_t x_stride,
                          const float *w, const float *b, float *state, float *y, int64_t y_stride) {
    int64_t c0 = 0;
    for (; K <= ROOST_SSM_CONV_MAX_K && c0 + 4 <= n; c0 += 4) {
        float32x4_t wk[ROOST_SSM_CONV_MAX_K], sk[ROOST_SSM_CONV_MAX_K];
        for (int64_t k = 0; k < K; k++) wk[k] = vld1q_f32(w + k * ld + c0);
        for (int64_t k = 0; k + 1 < K; k++) sk[k] = vld1q_f32(state + k * ld + c0);
        const float32x4_t bv = vld1q_f32(b + c0);
        for (int64_t t = 0; t < T; t++) {
            const float32x4_t xv = vld1q_f32(x + t * x_stride + c0);
            float32x4_t acc = bv;
            for (int64_t k = 0; k + 1 < K; k++) acc = vfmaq_f32(acc, wk[k], sk[k]);
            acc = vfmaq_f32(acc, wk[K - 1], xv);
            for (int64_t k = 0; k + 2 < K; k++) sk[k] = sk[k + 1];
            if (K > 1) sk[K - 2] = xv;
            vst1q_f32(y + t * y_stride + c0, silu_poly4(acc));
        }
        for (int64_t k = 0; k + 1 < K; k++) vst1q_f32(state + k * ld + c0, sk[k]);
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = c0; c < n; c++)
            y[t * y_stride + c] = roost_ssm_conv_lane(K, ld, w + c, b[c], state + c, x[t * x_stride + c]);
}

static void ssm_scan_neon(int64_t T, int64_t n, int64_t N, const float *x, int64_t x_stride, const float *dt,
                          int64_t dt_stride, const float *dt_bias, const float *A, const float *B,
                          const float *C, int64_t bc_stride, const float *D, const float *z, int64_t z_stride,
                          float *state, float *y, int64_t y_stride) {
    if (N % 4 != 0 || N > 64) {
        for (int64_t c = 0; c < n; c++)
            for (int64_t t = 0; t < T; t++)
                y[t * y_stride + c] = roost_ssm_scan_ref_channel(
                    N, x[t * x_stride + c], dt[t * dt_stride + c], dt_bias[c], A + c * N, B + t * bc_stride,
                    C + t * bc_stride, D[c], z[t * z_stride + c], state + c * N);
        return;
    }
    const int64_t nv = N / 4;
    for (int64_t c = 0; c < n; c++) {
        float32x4_t sv[16], av[16];
        float *s = state + c * N;
        for (int64_t i = 0; i < nv; i++) {
            sv[i] = vld1q_f32(s + 4 * i);
            av[i] = vld1q_f32(A + c * N + 4 * i);
        }
        for (int64_t t = 0; t < T; t++) {
            const float xt = x[t * x_stride + c];
            const float d = roost_ssm_softplus(dt[t * dt_stride + c] + dt_bias[c]);
            const float32x4_t dv = vdupq_n_f32(d), dxv = vdupq_n_f32(d * xt);
            const float *Bt = B + t * bc_stride, *Ct = C + t * bc_stride;
            float32x4_t acc = vdupq_n_f32(0.0f);
            for (int64_t i = 0; i < nv; i++) {
                const float32x4_t dA = exp_poly4(vmulq_f32(dv, av[i]));
                sv[i] = vfmaq_f32(vmulq_f32(dxv, vld1q_f32(Bt + 4 * i)), sv[i], dA);
                acc = vfmaq_f32(acc, sv[i], vld1q_f32(Ct + 4 * i));
            }
            const float zt = z[t * z_stride + c];
            const float yv = vaddvq_f32(acc) + D[c] * xt;
            y[t * y_stride + c] = yv * (zt / (1.0f + expf(-zt)));
        }
        for (int64_t i = 0; i < nv; i++) vst1q_f32(s + 4 * i, sv[i]);
    }
}

void roost_register_neon_ssm(roost_kernels *k) {
    k->ssm_conv = ssm_conv_neon;
    k->ssm_scan = ssm_scan_neon;
}

#else

void roost_register_neon_ssm(roost_kernels *k) { (void)k; }

#endif
