// Internal to CKernels: the Mamba (selective state space) kernels' shared pieces.
//
// The SIMD paths compute exp with the polynomial below (Cephes' expf: range reduction by
// ln 2, degree-5 polynomial, scaling by 2^n built in the exponent bits), as vectors; the
// scalar twin here runs exactly the same operations in the same order (separately rounded
// multiplies and adds, floor, exact int conversion), so a channel computed in a vector
// lane and one computed by the scalar tail get the same bits. That keeps a channel's
// result independent of how the channels are split over calls or threads.
#pragma once

#include "internal.h"

// Contraction off: a * b + c stays two roundings unless written as fmaf.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define ROOST_SSM_EXP_LO (-87.0f)
#define ROOST_SSM_EXP_HI (88.0f)
#define ROOST_SSM_LOG2E (1.44269504088896341f)
#define ROOST_SSM_LN2_HI (0.693359375f)
#define ROOST_SSM_LN2_LO (-2.12194440e-4f)
#define ROOST_SSM_P0 (1.9875691500e-4f)
#define ROOST_SSM_P1 (1.3981999507e-3f)
#define ROOST_SSM_P2 (8.3334519073e-3f)
#define ROOST_SSM_P3 (4.1665795894e-2f)
#define ROOST_SSM_P4 (1.6666665459e-1f)
#define ROOST_SSM_P5 (5.0000001201e-1f)

// exp(x) for x clamped to [-87, 88] (about 1 ulp from expf there).
static inline float roost_ssm_exp_poly(float x) {
    x = x < ROOST_SSM_EXP_LO ? ROOST_SSM_EXP_LO : x;
    x = x > ROOST_SSM_EXP_HI ? ROOST_SSM_EXP_HI : x;
    const float n = floorf(x * ROOST_SSM_LOG2E + 0.5f);
    float r = x - n * ROOST_SSM_LN2_HI;
    r = r - n * ROOST_SSM_LN2_LO;
    float p = ROOST_SSM_P0;
    p = p * r + ROOST_SSM_P1;
    p = p * r + ROOST_SSM_P2;
    p = p * r + ROOST_SSM_P3;
    p = p * r + ROOST_SSM_P4;
    p = p * r + ROOST_SSM_P5;
    const float r2 = r * r;
    float y = p * r2 + r;
    y = y + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

// silu(v) = v / (1 + exp(-v)) with the polynomial exp.
static inline float roost_ssm_silu_poly(float v) { return v / (1.0f + roost_ssm_exp_poly(-v)); }

// The conv step of one channel, as the SIMD lanes compute it (fused multiply-adds over
// the taps in order, the polynomial SiLU): the SIMD paths' tail for channel counts their
// vectors do not divide. K <= ROOST_SSM_CONV_MAX_K.
#define ROOST_SSM_CONV_MAX_K 8
static inline float roost_ssm_conv_lane(int64_t K, int64_t ld, const float *w, float b, float *s,
                                        float xt) {
    float acc = b;
    for (int64_t k = 0; k + 1 < K; k++) acc = fmaf(w[k * ld], s[k * ld], acc);
    acc = fmaf(w[(K - 1) * ld], xt, acc);
    for (int64_t k = 0; k + 2 < K; k++) s[k * ld] = s[(k + 1) * ld];
    if (K > 1) s[(K - 2) * ld] = xt;
    return roost_ssm_silu_poly(acc);
}

// dt = softplus(v) as torch and ggml define it (v itself above 20).
static inline float roost_ssm_softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); }

// The ref scan of one channel over one token (ref_ssm.c); the SIMD paths use it for state
// sizes their vectors do not divide.
float roost_ssm_scan_ref_channel(int64_t N, float xt, float dt_raw, float dt_bias, const float *A,
                                 const float *B, const float *C, float D, float zt, float *s);

// Per-path registration (ssm files), called once from dispatch.c through roost_register_ssm.
void roost_register_ref_ssm(roost_kernels *k);
void roost_register_avx2_ssm(roost_kernels *k);
void roost_register_avx512_ssm(roost_kernels *k);
void roost_register_neon_ssm(roost_kernels *k);
