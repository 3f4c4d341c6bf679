// AArch64 NEON kernels for the K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K weights with Q8_K
// activations (gemv, gemm), the Q8_K activation quantizer, and dequantize of Q2_K..Q6_K
// and Q8_K.
//
// Dot products. Per super-block and per (weight row, activation row) pair, the integer
// sums isum and msum of ref_kquants.c are computed exactly with NEON (int32 lanes, any
// order: integer addition is exact), then combined into the pair's one float accumulator
// by the same scalar float operations, in the same order, as the ref. So every result is
// bitwise the ref's, and in particular independent of the tile shape (1 row x 1 column in
// gemv, 1 row x up to 4 columns in gemm): gemm is bitwise gemv, and gemv is bitwise the
// same for any row split. A weight super-block is unpacked once into 16 vectors of 16
// int8 quants (element order) and reused for every activation column of the tile.
//
// The 16-element group dots come in two variants chosen at run time by roost_cpu.dotprod:
// SDOT (vdotq_s32, Armv8.2 dotprod) and plain NEON (SMULL + SADALP). Both give exact int32
// group sums, so the two variants give bitwise the same results. The variant-specific code
// is this file's second half, compiled twice (the file includes itself) with different
// function suffixes and target attributes.
//
// Dequantize and quantize are bitwise equal to the ref: every float product / difference
// is a separate vmulq_f32 / vsubq_f32 (the pragma below keeps compilers from fusing the
// scalar ones), and the Q8_K quantizer rounds with ggml's 1.5 * 2^23 trick, as the ref.
#if !defined(NK_BODY)

#include "internal.h"

// The exact formulas of ref_kquants.c require that no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__aarch64__)

#include <arm_neon.h>

#define NK_INLINE static inline __attribute__((always_inline))
#define NK_UNROLL _Pragma("GCC unroll 16")

NK_INLINE float nk_h2f(roost_half h) {
    __fp16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x; // exact
}

// ---- unpacked weight super-block ------------------------------------------------------

typedef struct {
    int8x16_t q[16];  // the 256 integer quants, in element order
    int32x4_t sc[4];  // group scales: 16 groups of 16 (Q2/3/6_K) or 8 groups of 32 (sc[0..1])
    int16x8_t m[2];   // mins: 16 (Q2_K) or 8 (Q4_K, Q5_K: m[0])
    float d, dmin;
} nk_sb;

NK_INLINE int8x16_t nk_s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

// 16 uint8 (values < 128) -> 4 x int32x4
NK_INLINE void nk_widen_u8(uint8x16_t v, int32x4_t out[4]) {
    const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
    out[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
    out[1] = vreinterpretq_s32_u32(vmovl_high_u16(lo));
    out[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
    out[3] = vreinterpretq_s32_u32(vmovl_high_u16(hi));
}

NK_INLINE void nk_widen_s8(int8x16_t v, int32x4_t out[4]) {
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
    out[0] = vmovl_s16(vget_low_s16(lo));
    out[1] = vmovl_high_s16(lo);
    out[2] = vmovl_s16(vget_low_s16(hi));
    out[3] = vmovl_high_s16(hi);
}

// Q2_K / Q3_K low bits: element 128 h + 32 k + l (l < 32) is bits 2k..2k+1 of qs[32 h + l].
NK_INLINE void nk_q2_bits(const uint8_t *qs, uint8x16_t out[16]) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    NK_UNROLL
    for (int h = 0; h < 2; h++) {
        const uint8x16_t q0 = vld1q_u8(qs + 32 * h), q1 = vld1q_u8(qs + 32 * h + 16);
        out[8 * h + 0] = vandq_u8(q0, m3);
        out[8 * h + 1] = vandq_u8(q1, m3);
        out[8 * h + 2] = vandq_u8(vshrq_n_u8(q0, 2), m3);
        out[8 * h + 3] = vandq_u8(vshrq_n_u8(q1, 2), m3);
        out[8 * h + 4] = vandq_u8(vshrq_n_u8(q0, 4), m3);
        out[8 * h + 5] = vandq_u8(vshrq_n_u8(q1, 4), m3);
        out[8 * h + 6] = vshrq_n_u8(q0, 6);
        out[8 * h + 7] = vshrq_n_u8(q1, 6);
    }
}

NK_INLINE void nk_unpack_q2_k(const block_q2_K *b, nk_sb *s) {
    uint8x16_t u[16];
    nk_q2_bits(b->qs, u);
    NK_UNROLL
    for (int g = 0; g < 16; g++) s->q[g] = nk_s8(u[g]);
    const uint8x16_t sc = vld1q_u8(b->scales);
    nk_widen_u8(vandq_u8(sc, vdupq_n_u8(0x0f)), s->sc);
    const uint8x16_t m = vshrq_n_u8(sc, 4);
    s->m[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
    s->m[1] = vreinterpretq_s16_u16(vmovl_high_u8(m));
    s->d = nk_h2f(b->d);
    s->dmin = nk_h2f(b->dmin);
}

// Q3_K scales: 16 six-bit values minus 32, as int8 in [-32, 31].
NK_INLINE int8x16_t nk_q3_scales(const uint8_t *s) {
    const uint8x8_t lo8 = vld1_u8(s);
    const uint8x16_t lo = vcombine_u8(vand_u8(lo8, vdup_n_u8(0x0f)), vshr_n_u8(lo8, 4));
    uint32_t aux;
    memcpy(&aux, s + 8, sizeof aux);
    // byte j = s[8 + j % 4], shifted right by 2 * (j / 4)
    const uint8x16_t hb = vreinterpretq_u8_u32(vdupq_n_u32(aux));
    static const int8_t shifts[16] = {0, 0, 0, 0, -2, -2, -2, -2, -4, -4, -4, -4, -6, -6, -6, -6};
    const uint8x16_t hi = vandq_u8(vshlq_u8(hb, vld1q_s8(shifts)), vdupq_n_u8(3));
    return vsubq_s8(nk_s8(vorrq_u8(lo, vshlq_n_u8(hi, 4))), vdupq_n_s8(32));
}

// Q3_K quants: the low 2 bits as Q2_K; the high bit of element 128 h + 32 k + l is bit
// 4 h + k of hmask[l]; a clear high bit subtracts 4.
NK_INLINE void nk_q3_quants(const block_q3_K *b, int8x16_t out[16]) {
    uint8x16_t u[16];
    nk_q2_bits(b->qs, u);
    const uint8x16_t hm0 = vld1q_u8(b->hmask), hm1 = vld1q_u8(b->hmask + 16);
    const uint8x16_t four = vdupq_n_u8(4);
    NK_UNROLL
    for (int h = 0; h < 2; h++)
        NK_UNROLL
        for (int k = 0; k < 4; k++) {
            const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << (4 * h + k)));
            const int g = 8 * h + 2 * k;
            out[g] = vsubq_s8(nk_s8(u[g]), nk_s8(vbicq_u8(four, vtstq_u8(hm0, bit))));
            out[g + 1] = vsubq_s8(nk_s8(u[g + 1]), nk_s8(vbicq_u8(four, vtstq_u8(hm1, bit))));
        }
}

NK_INLINE void nk_unpack_q3_k(const block_q3_K *b, nk_sb *s) {
    nk_q3_quants(b, s->q);
    nk_widen_s8(nk_q3_scales(b->scales), s->sc);
    s->d = nk_h2f(b->d);
}

// Q4_K / Q5_K: 8 six-bit scales (bytes 0..7 of sm) and mins (bytes 8..15), ggml's
// get_scale_min_k4 packing.
NK_INLINE void nk_scale_min_k4(const uint8_t *scales, uint8_t sm[16]) {
    uint32_t u[4];
    memcpy(u, scales, 12);
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t m03 = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = m03;
    u[0] &= kmask1;
    memcpy(sm, u, 16);
}

NK_INLINE void nk_k4_scales(const uint8_t *scales, nk_sb *s) {
    uint8_t sm[16];
    nk_scale_min_k4(scales, sm);
    const uint8x16_t v = vld1q_u8(sm);
    int32x4_t w[4];
    nk_widen_u8(v, w);
    s->sc[0] = w[0];
    s->sc[1] = w[1];
    s->m[0] = vreinterpretq_s16_u16(vmovl_high_u8(v));
}

// Q4_K quants: element 64 p + l: low nibble of qs[32 p + l]; 64 p + 32 + l: high nibble.
NK_INLINE void nk_q4_nibbles(const uint8_t *qs, uint8x16_t out[16]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    NK_UNROLL
    for (int p = 0; p < 4; p++) {
        const uint8x16_t q0 = vld1q_u8(qs + 32 * p), q1 = vld1q_u8(qs + 32 * p + 16);
        out[4 * p + 0] = vandq_u8(q0, m4);
        out[4 * p + 1] = vandq_u8(q1, m4);
        out[4 * p + 2] = vshrq_n_u8(q0, 4);
        out[4 * p + 3] = vshrq_n_u8(q1, 4);
    }
}

NK_INLINE void nk_unpack_q4_k(const block_q4_K *b, nk_sb *s) {
    uint8x16_t u[16];
    nk_q4_nibbles(b->qs, u);
    NK_UNROLL
    for (int g = 0; g < 16; g++) s->q[g] = nk_s8(u[g]);
    nk_k4_scales(b->scales, s);
    s->d = nk_h2f(b->d);
    s->dmin = nk_h2f(b->dmin);
}

// Q5_K: as Q4_K; the fifth bit of element 32 g + l (g < 8, l < 32) is bit g of qh[l].
NK_INLINE void nk_unpack_q5_k(const block_q5_K *b, nk_sb *s) {
    uint8x16_t u[16];
    nk_q4_nibbles(b->qs, u);
    const uint8x16_t qh0 = vld1q_u8(b->qh), qh1 = vld1q_u8(b->qh + 16);
    const uint8x16_t b4 = vdupq_n_u8(0x10);
    NK_UNROLL
    for (int g = 0; g < 8; g++) {
        const uint8x16_t bit = vdupq_n_u8((uint8_t)(1u << g));
        s->q[2 * g] = nk_s8(vorrq_u8(u[2 * g], vandq_u8(vtstq_u8(qh0, bit), b4)));
        s->q[2 * g + 1] = nk_s8(vorrq_u8(u[2 * g + 1], vandq_u8(vtstq_u8(qh1, bit), b4)));
    }
    nk_k4_scales(b->scales, s);
    s->d = nk_h2f(b->d);
    s->dmin = nk_h2f(b->dmin);
}

// Q6_K quants in [-32, 31]; half h (128 elements) uses ql[64 h ..], qh[32 h ..].
NK_INLINE void nk_q6_quants(const block_q6_K *b, int8x16_t out[16]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
    const int8x16_t m32 = vdupq_n_s8(32);
    NK_UNROLL
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16), l2 = vld1q_u8(ql + 32),
                         l3 = vld1q_u8(ql + 48);
        const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);
        uint8x16_t u[8];
        u[0] = vorrq_u8(vandq_u8(l0, m4), vandq_u8(vshlq_n_u8(h0, 4), m30));
        u[1] = vorrq_u8(vandq_u8(l1, m4), vandq_u8(vshlq_n_u8(h1, 4), m30));
        u[2] = vorrq_u8(vandq_u8(l2, m4), vandq_u8(vshlq_n_u8(h0, 2), m30));
        u[3] = vorrq_u8(vandq_u8(l3, m4), vandq_u8(vshlq_n_u8(h1, 2), m30));
        u[4] = vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(h0, m30));
        u[5] = vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(h1, m30));
        u[6] = vorrq_u8(vshrq_n_u8(l2, 4), vandq_u8(vshrq_n_u8(h0, 2), m30));
        u[7] = vorrq_u8(vshrq_n_u8(l3, 4), vandq_u8(vshrq_n_u8(h1, 2), m30));
        NK_UNROLL
        for (int j = 0; j < 8; j++) out[8 * h + j] = vsubq_s8(nk_s8(u[j]), m32);
    }
}

NK_INLINE void nk_unpack_q6_k(const block_q6_K *b, nk_sb *s) {
    nk_q6_quants(b, s->q);
    nk_widen_s8(vld1q_s8(b->scales), s->sc);
    s->d = nk_h2f(b->d);
}

NK_INLINE size_t nk_wsize(const int type) {
    switch (type) {
    case ROOST_TYPE_Q2_K: return sizeof(block_q2_K);
    case ROOST_TYPE_Q3_K: return sizeof(block_q3_K);
    case ROOST_TYPE_Q4_K: return sizeof(block_q4_K);
    case ROOST_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

NK_INLINE void nk_unpack(const int type, const char *b, nk_sb *s) {
    switch (type) {
    case ROOST_TYPE_Q2_K: nk_unpack_q2_k((const block_q2_K *)b, s); break;
    case ROOST_TYPE_Q3_K: nk_unpack_q3_k((const block_q3_K *)b, s); break;
    case ROOST_TYPE_Q4_K: nk_unpack_q4_k((const block_q4_K *)b, s); break;
    case ROOST_TYPE_Q5_K: nk_unpack_q5_k((const block_q5_K *)b, s); break;
    default: nk_unpack_q6_k((const block_q6_K *)b, s); break;
    }
}

// msum = sum of the 16 mins times bsums (Q2_K); exact in int32.
NK_INLINE int32_t nk_msum16(const nk_sb *s, const int16_t *bsums) {
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t p = vmull_s16(vget_low_s16(s->m[0]), vget_low_s16(b0));
    p = vmlal_high_s16(p, s->m[0], b0);
    p = vmlal_s16(p, vget_low_s16(s->m[1]), vget_low_s16(b1));
    p = vmlal_high_s16(p, s->m[1], b1);
    return vaddvq_s32(p);
}

// msum = sum_g m_g * (bsums[2 g] + bsums[2 g + 1]) (Q4_K, Q5_K); exact in int32.
NK_INLINE int32_t nk_msum8(const nk_sb *s, const int16_t *bsums) {
    const int16x8_t b = vpaddq_s16(vld1q_s16(bsums), vld1q_s16(bsums + 8));
    int32x4_t p = vmull_s16(vget_low_s16(s->m[0]), vget_low_s16(b));
    p = vmlal_high_s16(p, s->m[0], b);
    return vaddvq_s32(p);
}

// ---- dequantize: bitwise equal to the ref -------------------------------------------

// y[0..15] = dl * (float)q, or dl * (float)q - ml when sub (separate multiply, subtract).
NK_INLINE void nk_store16(float *y, int8x16_t q, float dl, float ml, const int sub) {
    int32x4_t w[4];
    nk_widen_s8(q, w);
    const float32x4_t vd = vdupq_n_f32(dl), vm = vdupq_n_f32(ml);
    NK_UNROLL
    for (int j = 0; j < 4; j++) {
        float32x4_t f = vmulq_f32(vd, vcvtq_f32_s32(w[j]));
        if (sub) f = vsubq_f32(f, vm);
        vst1q_f32(y + 4 * j, f);
    }
}

static void dequantize_q2_k_neon(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_h2f(x[i].d), dmin = nk_h2f(x[i].dmin);
        uint8x16_t u[16];
        nk_q2_bits(x[i].qs, u);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(x[i].scales[g] & 0x0f);
            const float ml = dmin * (float)(x[i].scales[g] >> 4);
            nk_store16(yb + 16 * g, nk_s8(u[g]), dl, ml, 1);
        }
    }
}

static void dequantize_q3_k_neon(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_h2f(x[i].d);
        int8x16_t q[16];
        nk_q3_quants(&x[i], q);
        int8_t sc[16];
        vst1q_s8(sc, nk_q3_scales(x[i].scales));
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) nk_store16(yb + 16 * g, q[g], d * (float)sc[g], 0.0f, 0);
    }
}

static void dequantize_q4_k_neon(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_h2f(x[i].d), dmin = nk_h2f(x[i].dmin);
        uint8x16_t u[16];
        nk_q4_nibbles(x[i].qs, u);
        uint8_t sm[16];
        nk_scale_min_k4(x[i].scales, sm);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 8; g++) {
            const float dl = d * (float)sm[g], ml = dmin * (float)sm[8 + g];
            nk_store16(yb + 32 * g, nk_s8(u[2 * g]), dl, ml, 1);
            nk_store16(yb + 32 * g + 16, nk_s8(u[2 * g + 1]), dl, ml, 1);
        }
    }
}

static void dequantize_q5_k_neon(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        nk_sb s;
        nk_unpack_q5_k(&x[i], &s);
        uint8_t sm[16];
        nk_scale_min_k4(x[i].scales, sm);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 8; g++) {
            const float dl = s.d * (float)sm[g], ml = s.dmin * (float)sm[8 + g];
            nk_store16(yb + 32 * g, s.q[2 * g], dl, ml, 1);
            nk_store16(yb + 32 * g + 16, s.q[2 * g + 1], dl, ml, 1);
        }
    }
}

static void dequantize_q6_k_neon(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = nk_h2f(x[i].d);
        int8x16_t q[16];
        nk_q6_quants(&x[i], q);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) nk_store16(yb + 16 * g, q[g], d * (float)x[i].scales[g], 0.0f, 0);
    }
}

static void dequantize_q8_k_neon(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int g = 0; g < 16; g++) nk_store16(y + i * QK_K + 16 * g, vld1q_s8(x[i].qs + 16 * g), x[i].d, 0.0f, 0);
}

// ---- Q8_K quantize: bitwise equal to the ref ------------------------------------------

static void quantize_q8_k_neon(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        // amax as the ref's (NaNs never win: FMAXNM returns the number)
        float32x4_t mx = vdupq_n_f32(0.0f);
        for (int j = 0; j < QK_K; j += 4) mx = vmaxnmq_f32(mx, vabsq_f32(vld1q_f32(xb + j)));
        const float amax = vmaxnmvq_f32(mx);
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        // max = the first element of largest magnitude
        int jm = 0;
        while (fabsf(xb[jm]) != amax) jm++;
        const float max = xb[jm];
        const float iscale = -127.0f / max;
        const float32x4_t vis = vdupq_n_f32(iscale), magic = vdupq_n_f32(12582912.0f); // 1.5 * 2^23
        const int32x4_t mant = vdupq_n_s32(0x007fffff), off = vdupq_n_s32(0x00400000);
        const int32x4_t hi = vdupq_n_s32(127), lo = vdupq_n_s32(-127);
        for (int g = 0; g < QK_K / 16; g++) {
            int16x4_t h[4];
            for (int j = 0; j < 4; j++) {
                const float32x4_t v = vmulq_f32(vis, vld1q_f32(xb + 16 * g + 4 * j));
                const float32x4_t t = vaddq_f32(v, magic);
                int32x4_t q = vsubq_s32(vandq_s32(vreinterpretq_s32_f32(t), mant), off);
                q = vmaxq_s32(vminq_s32(q, hi), lo);
                h[j] = vmovn_s32(q);
            }
            const int8x16_t q8 = vcombine_s8(vmovn_s16(vcombine_s16(h[0], h[1])),
                                             vmovn_s16(vcombine_s16(h[2], h[3])));
            vst1q_s8(y[i].qs + 16 * g, q8);
            y[i].bsums[g] = vaddlvq_s8(q8);
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- the dot-product variants ---------------------------------------------------------

#define NK_BODY 1

// plain NEON: SMULL + SADALP
#define NK_SFX(name) name##_neon
#define NK_TARGET
#define NK_DOT16(acc, q, a) \
    vpadalq_s16(vpadalq_s16((acc), vmull_s8(vget_low_s8(q), vget_low_s8(a))), vmull_high_s8((q), (a)))
#include "neon_kquants.c"
#undef NK_SFX
#undef NK_TARGET
#undef NK_DOT16

// dotprod: SDOT. "+dotprod" alone is rejected by gcc 12 (its arm_neon.h declares
// vdotq_s32 for armv8.2-a+dotprod); this spelling is accepted by gcc 12 and clang.
#define NK_SFX(name) name##_dot
#define NK_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define NK_DOT16(acc, q, a) vdotq_s32((acc), (q), (a))
#include "neon_kquants.c"
#undef NK_SFX
#undef NK_TARGET
#undef NK_DOT16

#undef NK_BODY

#define NK_SET(k, sfx)                                                 \
    do {                                                               \
        (k)->gemv[ROOST_TYPE_Q2_K] = gemv_q2_k_##sfx;                  \
        (k)->gemv[ROOST_TYPE_Q3_K] = gemv_q3_k_##sfx;                  \
        (k)->gemv[ROOST_TYPE_Q4_K] = gemv_q4_k_##sfx;                  \
        (k)->gemv[ROOST_TYPE_Q5_K] = gemv_q5_k_##sfx;                  \
        (k)->gemv[ROOST_TYPE_Q6_K] = gemv_q6_k_##sfx;                  \
        (k)->gemm[ROOST_TYPE_Q2_K] = gemm_q2_k_##sfx;                  \
        (k)->gemm[ROOST_TYPE_Q3_K] = gemm_q3_k_##sfx;                  \
        (k)->gemm[ROOST_TYPE_Q4_K] = gemm_q4_k_##sfx;                  \
        (k)->gemm[ROOST_TYPE_Q5_K] = gemm_q5_k_##sfx;                  \
        (k)->gemm[ROOST_TYPE_Q6_K] = gemm_q6_k_##sfx;                  \
    } while (0)

void roost_register_neon_kquants(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_K] = quantize_q8_k_neon;

    k->dequantize[ROOST_TYPE_Q2_K] = dequantize_q2_k_neon;
    k->dequantize[ROOST_TYPE_Q3_K] = dequantize_q3_k_neon;
    k->dequantize[ROOST_TYPE_Q4_K] = dequantize_q4_k_neon;
    k->dequantize[ROOST_TYPE_Q5_K] = dequantize_q5_k_neon;
    k->dequantize[ROOST_TYPE_Q6_K] = dequantize_q6_k_neon;
    k->dequantize[ROOST_TYPE_Q8_K] = dequantize_q8_k_neon;

    if (roost_cpu.dotprod)
        NK_SET(k, dot);
    else
        NK_SET(k, neon);
}

#else

void roost_register_neon_kquants(roost_kernels *k) { (void)k; }

#endif // __aarch64__

#else // NK_BODY: the variant-specific half, compiled once per variant.

#define NK_TINLINE NK_INLINE NK_TARGET

// isum over 16 groups of 16: sum_g sc_g * dot(q_g, a_g), exact.
NK_TINLINE int32_t NK_SFX(nk_isum16)(const nk_sb *s, const int8_t *a) {
    const int32x4_t z = vdupq_n_s32(0);
    int32x4_t acc = z;
    NK_UNROLL
    for (int k = 0; k < 4; k++) {
        int32x4_t g[4];
        NK_UNROLL
        for (int j = 0; j < 4; j++) g[j] = NK_DOT16(z, s->q[4 * k + j], vld1q_s8(a + 64 * k + 16 * j));
        const int32x4_t gs = vpaddq_s32(vpaddq_s32(g[0], g[1]), vpaddq_s32(g[2], g[3]));
        acc = vmlaq_s32(acc, gs, s->sc[k]);
    }
    return vaddvq_s32(acc);
}

// isum over 8 groups of 32, exact.
NK_TINLINE int32_t NK_SFX(nk_isum32)(const nk_sb *s, const int8_t *a) {
    const int32x4_t z = vdupq_n_s32(0);
    int32x4_t acc = z;
    NK_UNROLL
    for (int k = 0; k < 2; k++) {
        int32x4_t g[4];
        NK_UNROLL
        for (int j = 0; j < 4; j++) {
            const int e = 8 * k + 2 * j;
            g[j] = NK_DOT16(z, s->q[e], vld1q_s8(a + 16 * e));
            g[j] = NK_DOT16(g[j], s->q[e + 1], vld1q_s8(a + 16 * e + 16));
        }
        const int32x4_t gs = vpaddq_s32(vpaddq_s32(g[0], g[1]), vpaddq_s32(g[2], g[3]));
        acc = vmlaq_s32(acc, gs, s->sc[k]);
    }
    return vaddvq_s32(acc);
}

// One (weight super-block, activation super-block) pair into the pair's accumulator:
// the ref's float operations, in the ref's order.
NK_TINLINE void NK_SFX(nk_pair)(const int type, const nk_sb *s, const block_q8_K *a, float *acc) {
    switch (type) {
    case ROOST_TYPE_Q2_K: {
        const int32_t isum = NK_SFX(nk_isum16)(s, a->qs);
        const int32_t msum = nk_msum16(s, a->bsums);
        const float dall = a->d * s->d;
        const float dmin = a->d * s->dmin;
        const float t = dall * (float)isum;
        const float u = dmin * (float)msum;
        *acc += t - u;
        break;
    }
    case ROOST_TYPE_Q4_K:
    case ROOST_TYPE_Q5_K: {
        const int32_t isum = NK_SFX(nk_isum32)(s, a->qs);
        const int32_t msum = nk_msum8(s, a->bsums);
        const float d = s->d * a->d;
        const float dmin = s->dmin * a->d;
        const float t = d * (float)isum;
        const float u = dmin * (float)msum;
        *acc += t - u;
        break;
    }
    default: { // Q3_K, Q6_K
        const int32_t isum = NK_SFX(nk_isum16)(s, a->qs);
        const float d = s->d * a->d;
        const float t = d * (float)isum;
        *acc += t;
        break;
    }
    }
}

// One weight row x C activation rows (C <= 4) -> out[c].
NK_TINLINE void NK_SFX(nk_tile)(const int type, const int C, int64_t nb, const char *w,
                                const block_q8_K *const *a, float *out) {
    const size_t ws = nk_wsize(type);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t ib = 0; ib < nb; ib++) {
        nk_sb s;
        nk_unpack(type, w + (size_t)ib * ws, &s);
        NK_UNROLL
        for (int c = 0; c < C; c++) NK_SFX(nk_pair)(type, &s, a[c] + ib, &acc[c]);
    }
    for (int c = 0; c < C; c++) out[c] = acc[c];
}

NK_TINLINE void NK_SFX(nk_gemv)(const int type, int64_t n, int64_t nrows, const void *w,
                                size_t row_bytes, const void *a, float *y) {
    const int64_t nb = n / QK_K;
    const block_q8_K *ap[1] = {a};
    for (int64_t r = 0; r < nrows; r++)
        NK_SFX(nk_tile)(type, 1, nb, (const char *)w + (size_t)r * row_bytes, ap, y + r);
}

// Column tiles of 4 (the weight super-block is unpacked once for 4 columns), then 3, 2, 1.
NK_TINLINE void NK_SFX(nk_gemm_cols)(const int type, const int C, int64_t nb, int64_t nrows,
                                     const char *w, size_t row_bytes, const block_q8_K *const *ap,
                                     float *y, int64_t y_stride) {
    float out[4];
    for (int64_t r = 0; r < nrows; r++) {
        NK_SFX(nk_tile)(type, C, nb, w + (size_t)r * row_bytes, ap, out);
        for (int c = 0; c < C; c++) y[c * y_stride + r] = out[c];
    }
}

NK_TINLINE void NK_SFX(nk_gemm)(const int type, int64_t n, int64_t nrows, const void *w,
                                size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                                float *y, int64_t y_stride) {
    const int64_t nb = n / QK_K;
    const char *ab = a;
    for (int64_t c = 0; c < ncols; c += 4) {
        const block_q8_K *ap[4];
        const int C = ncols - c < 4 ? (int)(ncols - c) : 4;
        for (int j = 0; j < C; j++) ap[j] = (const block_q8_K *)(ab + (size_t)(c + j) * a_stride);
        float *yc = y + c * y_stride;
        switch (C) {
        case 4: NK_SFX(nk_gemm_cols)(type, 4, nb, nrows, w, row_bytes, ap, yc, y_stride); break;
        case 3: NK_SFX(nk_gemm_cols)(type, 3, nb, nrows, w, row_bytes, ap, yc, y_stride); break;
        case 2: NK_SFX(nk_gemm_cols)(type, 2, nb, nrows, w, row_bytes, ap, yc, y_stride); break;
        default: NK_SFX(nk_gemm_cols)(type, 1, nb, nrows, w, row_bytes, ap, yc, y_stride); break;
        }
    }
}

#define NK_KERNELS(name, type)                                                                  \
    NK_TARGET static void NK_SFX(gemv_##name)(int64_t n, int64_t nrows, const void *w,         \
                                              size_t row_bytes, const void *a, float *y) {     \
        NK_SFX(nk_gemv)(type, n, nrows, w, row_bytes, a, y);                                   \
    }                                                                                          \
    NK_TARGET static void NK_SFX(gemm_##name)(int64_t n, int64_t nrows, const void *w,         \
                                              size_t row_bytes, int64_t ncols, const void *a,  \
                                              size_t a_stride, float *y, int64_t y_stride) {   \
        NK_SFX(nk_gemm)(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);        \
    }

NK_KERNELS(q2_k, ROOST_TYPE_Q2_K)
NK_KERNELS(q3_k, ROOST_TYPE_Q3_K)
NK_KERNELS(q4_k, ROOST_TYPE_Q4_K)
NK_KERNELS(q5_k, ROOST_TYPE_Q5_K)
NK_KERNELS(q6_k, ROOST_TYPE_Q6_K)

#undef NK_KERNELS
#undef NK_TINLINE

#endif // NK_BODY
