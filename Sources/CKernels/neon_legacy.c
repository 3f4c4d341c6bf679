// AArch64 NEON kernels: legacy quants (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 weights with
// Q8_0 / Q8_1 activations) and float weights (F32, F16, BF16 with F32 activations).
//
// Quantized dot products are bitwise the ref's (ref_legacy.c): per block the exact integer
// sum, then the ref's float combine in block order, each operation rounded separately. So
// they do not depend on the path, the tile shape (4 rows x 1 column in gemv, 4 x 2 in gemm,
// 1 x 2 and 1 x 1 for remainders) or the row split.
//
// The quant dot products come in two variants chosen at run time: SDOT (the dotprod
// extension, Armv8.2+) and plain NEON (SMULL + pairwise adds). Both give four int32 lanes
// per block whose sum is the exact block sum, so both are bitwise the ref.
//
// Float-weight dots: every (weight row, activation row) pair owns its accumulators,
// updated in the same order by the same instructions whatever the tile shape, and is
// reduced by the same horizontal sum; gemm is bitwise gemv and gemv is bitwise the same
// for any row split. Their fused multiply-adds are explicit (vfmaq_f32, fmaf).
#include "internal.h"

// The quantized combine must round each float operation separately, as the ref does.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__aarch64__)

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
// Full unrolling of the small tile loops (gcc -O2 keeps them, with accumulators on the stack).
#define UNROLL _Pragma("GCC unroll 8")
// "+dotprod" alone is rejected by gcc 12's arm_neon.h (vdotq_s32 is declared for
// armv8.2-a+dotprod); this spelling is accepted by gcc 12 and clang.
#define TARGET_DP __attribute__((target("arch=armv8.2-a+dotprod")))

INLINE float h2f(roost_half h) {
    __fp16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x;
}

INLINE float bf2f(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

// ---- one weight block -> 32 int8 values (two halves), scale, min ---------------------
// Signed types (Q4_0, Q5_0, Q8_0) give values in [-16, 127] ([-128, 127] for Q8_0); the
// _1 types give values in [0, 31]. All fit int8, so every type uses signed x signed dots.

// 32 bits of qh -> 0x10 in byte j (of 32) where bit j is set.
INLINE void qh_to_bytes(uint32_t qh, uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t idx_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t idx_hi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t t = vreinterpretq_u8_u32(vdupq_n_u32(qh));
    const uint8x16_t m = vld1q_u8(bit);
    const uint8x16_t h10 = vdupq_n_u8(0x10);
    *lo = vandq_u8(vtstq_u8(vqtbl1q_u8(t, vld1q_u8(idx_lo)), m), h10);
    *hi = vandq_u8(vtstq_u8(vqtbl1q_u8(t, vld1q_u8(idx_hi)), m), h10);
}

INLINE void load_w(const int type, const char *b, int8x16_t *q0, int8x16_t *q1, float *d, float *m) {
    switch (type) {
    case ROOST_TYPE_Q4_0: {
        const block_q4_0 *x = (const block_q4_0 *)b;
        *d = h2f(x->d);
        const uint8x16_t v = vld1q_u8(x->qs);
        const int8x16_t k8 = vdupq_n_s8(8);
        *q0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), k8);
        *q1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), k8);
        return;
    }
    case ROOST_TYPE_Q4_1: {
        const block_q4_1 *x = (const block_q4_1 *)b;
        *d = h2f(x->d);
        *m = h2f(x->m);
        const uint8x16_t v = vld1q_u8(x->qs);
        *q0 = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f)));
        *q1 = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
        return;
    }
    case ROOST_TYPE_Q5_0: {
        const block_q5_0 *x = (const block_q5_0 *)b;
        *d = h2f(x->d);
        uint8x16_t hl, hh;
        qh_to_bytes(load_u32(x->qh), &hl, &hh);
        const uint8x16_t v = vld1q_u8(x->qs);
        const int8x16_t k16 = vdupq_n_s8(16);
        *q0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0f)), hl)), k16);
        *q1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), hh)), k16);
        return;
    }
    case ROOST_TYPE_Q5_1: {
        const block_q5_1 *x = (const block_q5_1 *)b;
        *d = h2f(x->d);
        *m = h2f(x->m);
        uint8x16_t hl, hh;
        qh_to_bytes(load_u32(x->qh), &hl, &hh);
        const uint8x16_t v = vld1q_u8(x->qs);
        *q0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0f)), hl));
        *q1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), hh));
        return;
    }
    default: { // Q8_0
        const block_q8_0 *x = (const block_q8_0 *)b;
        *d = h2f(x->d);
        *q0 = vld1q_s8(x->qs);
        *q1 = vld1q_s8(x->qs + 16);
        return;
    }
    }
}

INLINE int has_min(const int type) { return type == ROOST_TYPE_Q4_1 || type == ROOST_TYPE_Q5_1; }

INLINE size_t wblock_size(const int type) {
    switch (type) {
    case ROOST_TYPE_Q4_0: return sizeof(block_q4_0);
    case ROOST_TYPE_Q4_1: return sizeof(block_q4_1);
    case ROOST_TYPE_Q5_0: return sizeof(block_q5_0);
    case ROOST_TYPE_Q5_1: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

// ---- 32 x int8 dot products -> 4 int32 lanes (lane k: bytes 4k..4k+3 of both halves) --

TARGET_DP INLINE int32x4_t dot32_dp(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, a0), w1, a1);
}

INLINE int32x4_t dot32_nn(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
    const int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));  // bytes 0..7
    const int16x8_t p1 = vmull_high_s8(w0, a0);                         // bytes 8..15
    const int16x8_t p2 = vmull_s8(vget_low_s8(w1), vget_low_s8(a1));
    const int16x8_t p3 = vmull_high_s8(w1, a1);
    const int32x4_t t0 = vpadalq_s16(vpaddlq_s16(p0), p2); // pairs (0,1) (2,3) (4,5) (6,7)
    const int32x4_t t1 = vpadalq_s16(vpaddlq_s16(p1), p3); // pairs (8,9) ... (14,15)
    return vpaddq_s32(t0, t1);                             // quads 0..3, 4..7, 8..11, 12..15
}

// ---- quant gemv / gemm drivers, instantiated once per dot variant --------------------
// w[r]: R weight rows, a[c]: C activation rows (Q8_0 or Q8_1 blocks) -> out[r * C + c].
// Bitwise the ref: per (row, block) the dot gives 4 int32 lanes; their exact sum is the
// block's isum. With R = 4 the four rows' lanes are reduced together (two vpaddq_s32 give
// [isum r0, r1, r2, r3]), the four dw (and mw) are converted together, and each column's
// float32x4 accumulator (lane r = row r) is updated block by block in the ref's order,
//   acc = acc + ((float)isum * (dw * da))            (Q4_0, Q5_0, Q8_0)
//   acc = acc + ((float)isum * (dw * da) + mw * sa)  (Q4_1, Q5_1)
// with separate vmulq_f32 / vaddq_f32 (no FMA). Other R: the same in scalar code.

// Halves at byte offset off of four blocks -> float32x4 (lane r from block b[r]).
INLINE float32x4_t load_halves4(const char *const *b, const size_t off) {
    uint16_t h[4];
    UNROLL
    for (int r = 0; r < 4; r++) memcpy(&h[r], b[r] + off, sizeof h[r]);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

#define DEFINE_QUANT_DRIVERS(SFX, ATTR, DOT32)                                                  \
    ATTR INLINE void quant_tile_##SFX(const int type, const int R, const int C, int64_t nb,     \
                                      const char *const *w, const char *const *a, float *out) { \
        const size_t ws = wblock_size(type);                                                    \
        const int min = has_min(type);                                                          \
        const size_t as = min ? sizeof(block_q8_1) : sizeof(block_q8_0);                        \
        const size_t aqs = min ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);           \
        const size_t m_off = offsetof(block_q4_1, m); /* = offsetof(block_q5_1, m) */           \
        float32x4_t acc4[2];                                                                    \
        float acc1[4][2];                                                                       \
        UNROLL                                                                                  \
        for (int c = 0; c < C; c++) {                                                           \
            acc4[c] = vdupq_n_f32(0.0f);                                                        \
            UNROLL                                                                              \
            for (int r = 0; r < R; r++) acc1[r][c] = 0.0f;                                      \
        }                                                                                       \
        for (int64_t ib = 0; ib < nb; ib++) {                                                   \
            int8x16_t a0[2], a1[2];                                                             \
            float da[2], sa[2] = {0.0f, 0.0f};                                                  \
            UNROLL                                                                              \
            for (int c = 0; c < C; c++) {                                                       \
                const char *b = a[c] + (size_t)ib * as;                                         \
                roost_half h;                                                                   \
                memcpy(&h, b, sizeof h);                                                        \
                da[c] = h2f(h);                                                                 \
                if (min) {                                                                      \
                    memcpy(&h, b + offsetof(block_q8_1, s), sizeof h);                          \
                    sa[c] = h2f(h);                                                             \
                }                                                                               \
                a0[c] = vld1q_s8((const int8_t *)(b + aqs));                                    \
                a1[c] = vld1q_s8((const int8_t *)(b + aqs + 16));                               \
            }                                                                                   \
            int8x16_t q0[4], q1[4];                                                             \
            float dw[4], mw[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                      \
            UNROLL                                                                              \
            for (int r = 0; r < R; r++)                                                         \
                load_w(type, w[r] + (size_t)ib * ws, &q0[r], &q1[r], &dw[r], &mw[r]);           \
            if (R == 4) {                                                                       \
                const char *wb[4] = {w[0] + (size_t)ib * ws, w[1] + (size_t)ib * ws,            \
                                     w[2] + (size_t)ib * ws, w[3] + (size_t)ib * ws};           \
                const float32x4_t dw4 = load_halves4(wb, 0);                                    \
                const float32x4_t mw4 = min ? load_halves4(wb, m_off) : vdupq_n_f32(0.0f);      \
                UNROLL                                                                          \
                for (int c = 0; c < C; c++) {                                                   \
                    const int32x4_t l0 = DOT32(q0[0], q1[0], a0[c], a1[c]);                     \
                    const int32x4_t l1 = DOT32(q0[1], q1[1], a0[c], a1[c]);                     \
                    const int32x4_t l2 = DOT32(q0[2], q1[2], a0[c], a1[c]);                     \
                    const int32x4_t l3 = DOT32(q0[3], q1[3], a0[c], a1[c]);                     \
                    const int32x4_t isum = vpaddq_s32(vpaddq_s32(l0, l1), vpaddq_s32(l2, l3));  \
                    float32x4_t t = vmulq_f32(vcvtq_f32_s32(isum),                              \
                                              vmulq_f32(dw4, vdupq_n_f32(da[c])));              \
                    if (min) t = vaddq_f32(t, vmulq_f32(mw4, vdupq_n_f32(sa[c])));              \
                    acc4[c] = vaddq_f32(acc4[c], t);                                            \
                }                                                                               \
            } else {                                                                            \
                UNROLL                                                                          \
                for (int r = 0; r < R; r++)                                                     \
                    UNROLL                                                                      \
                    for (int c = 0; c < C; c++) {                                               \
                        const int32_t isum = vaddvq_s32(DOT32(q0[r], q1[r], a0[c], a1[c]));     \
                        float t = (float)isum * (dw[r] * da[c]);                                \
                        if (min) t = t + mw[r] * sa[c];                                         \
                        acc1[r][c] = acc1[r][c] + t;                                            \
                    }                                                                           \
            }                                                                                   \
        }                                                                                       \
        if (R == 4) {                                                                           \
            UNROLL                                                                              \
            for (int c = 0; c < C; c++) {                                                       \
                float v[4];                                                                     \
                vst1q_f32(v, acc4[c]);                                                          \
                UNROLL                                                                          \
                for (int r = 0; r < 4; r++) out[r * C + c] = v[r];                              \
            }                                                                                   \
        } else {                                                                                \
            UNROLL                                                                              \
            for (int r = 0; r < R; r++)                                                         \
                UNROLL                                                                          \
                for (int c = 0; c < C; c++) out[r * C + c] = acc1[r][c];                        \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    ATTR INLINE void quant_gemv_##SFX(const int type, int64_t n, int64_t nrows, const void *w,  \
                                      size_t row_bytes, const void *a, float *y) {              \
        const int64_t nb = n / 32;                                                              \
        const char *wb = w;                                                                     \
        const char *ap[1] = {a};                                                                \
        int64_t r = 0;                                                                          \
        for (; r + 4 <= nrows; r += 4) {                                                        \
            const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,  \
                                 wb + (size_t)(r + 2) * row_bytes,                              \
                                 wb + (size_t)(r + 3) * row_bytes};                             \
            quant_tile_##SFX(type, 4, 1, nb, wp, ap, y + r);                                    \
        }                                                                                       \
        for (; r < nrows; r++) {                                                                \
            const char *wp[1] = {wb + (size_t)r * row_bytes};                                   \
            quant_tile_##SFX(type, 1, 1, nb, wp, ap, y + r);                                    \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    ATTR INLINE void quant_gemm_##SFX(const int type, int64_t n, int64_t nrows, const void *w,  \
                                      size_t row_bytes, int64_t ncols, const void *a,           \
                                      size_t a_stride, float *y, int64_t y_stride) {            \
        const int64_t nb = n / 32;                                                              \
        const char *wb = w, *ab = a;                                                            \
        int64_t c = 0;                                                                          \
        for (; c + 2 <= ncols; c += 2) {                                                        \
            const char *ap[2] = {ab + (size_t)c * a_stride, ab + (size_t)(c + 1) * a_stride};  \
            float out[8];                                                                       \
            int64_t r = 0;                                                                      \
            for (; r + 4 <= nrows; r += 4) {                                                    \
                const char *wp[4] = {wb + (size_t)r * row_bytes,                                \
                                     wb + (size_t)(r + 1) * row_bytes,                          \
                                     wb + (size_t)(r + 2) * row_bytes,                          \
                                     wb + (size_t)(r + 3) * row_bytes};                         \
                quant_tile_##SFX(type, 4, 2, nb, wp, ap, out);                                  \
                UNROLL                                                                          \
                for (int i = 0; i < 4; i++) {                                                   \
                    y[c * y_stride + r + i] = out[i * 2];                                       \
                    y[(c + 1) * y_stride + r + i] = out[i * 2 + 1];                             \
                }                                                                               \
            }                                                                                   \
            for (; r < nrows; r++) {                                                            \
                const char *wp[1] = {wb + (size_t)r * row_bytes};                               \
                quant_tile_##SFX(type, 1, 2, nb, wp, ap, out);                                  \
                y[c * y_stride + r] = out[0];                                                   \
                y[(c + 1) * y_stride + r] = out[1];                                             \
            }                                                                                   \
        }                                                                                       \
        for (; c < ncols; c++)                                                                  \
            quant_gemv_##SFX(type, n, nrows, w, row_bytes, ab + (size_t)c * a_stride,           \
                             y + c * y_stride);                                                 \
    }

DEFINE_QUANT_DRIVERS(dp, TARGET_DP, dot32_dp)
DEFINE_QUANT_DRIVERS(neon, , dot32_nn)

#define QUANT_KERNELS(name, type, SFX, ATTR)                                                   \
    ATTR static void gemv_##name##_##SFX(int64_t n, int64_t nrows, const void *w,             \
                                         size_t row_bytes, const void *a, float *y) {         \
        quant_gemv_##SFX(type, n, nrows, w, row_bytes, a, y);                                 \
    }                                                                                         \
    ATTR static void gemm_##name##_##SFX(int64_t n, int64_t nrows, const void *w,             \
                                         size_t row_bytes, int64_t ncols, const void *a,      \
                                         size_t a_stride, float *y, int64_t y_stride) {       \
        quant_gemm_##SFX(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);      \
    }

#define QUANT_KERNELS_ALL(SFX, ATTR)                    \
    QUANT_KERNELS(q4_0, ROOST_TYPE_Q4_0, SFX, ATTR)     \
    QUANT_KERNELS(q4_1, ROOST_TYPE_Q4_1, SFX, ATTR)     \
    QUANT_KERNELS(q5_0, ROOST_TYPE_Q5_0, SFX, ATTR)     \
    QUANT_KERNELS(q5_1, ROOST_TYPE_Q5_1, SFX, ATTR)     \
    QUANT_KERNELS(q8_0, ROOST_TYPE_Q8_0, SFX, ATTR)

QUANT_KERNELS_ALL(dp, TARGET_DP)
QUANT_KERNELS_ALL(neon, )

// ---- float weights ------------------------------------------------------------------

INLINE float32x4_t load_f4(const int type, const char *row, int64_t i) {
    switch (type) {
    case ROOST_TYPE_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(row + i * 2))));
    case ROOST_TYPE_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(row + i * 2)), 16));
    default:
        return vld1q_f32((const float *)(row + i * 4));
    }
}

INLINE float load_f1(const int type, const char *row, int64_t i) {
    uint16_t h;
    switch (type) {
    case ROOST_TYPE_F16:
        memcpy(&h, row + i * 2, 2);
        return h2f(h);
    case ROOST_TYPE_BF16:
        memcpy(&h, row + i * 2, 2);
        return bf2f(h);
    default: {
        float f;
        memcpy(&f, row + i * 4, 4);
        return f;
    }
    }
}

// Per (row, column): two vector accumulators over 8-element steps, a 4-element step
// into the first, a scalar fma tail; result = addv(acc0 + acc1) + tail.
INLINE void float_tile(const int type, const int R, const int C, int64_t n,
                       const char *const *w, const float *const *a, float *out) {
    float32x4_t acc0[4][2], acc1[4][2];
    float tail[4][2];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) {
            acc0[r][c] = vdupq_n_f32(0.0f);
            acc1[r][c] = vdupq_n_f32(0.0f);
            tail[r][c] = 0.0f;
        }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0[2], x1[2];
        UNROLL
        for (int c = 0; c < C; c++) {
            x0[c] = vld1q_f32(a[c] + i);
            x1[c] = vld1q_f32(a[c] + i + 4);
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            const float32x4_t w0 = load_f4(type, w[r], i);
            const float32x4_t w1 = load_f4(type, w[r], i + 4);
            UNROLL
            for (int c = 0; c < C; c++) {
                acc0[r][c] = vfmaq_f32(acc0[r][c], w0, x0[c]);
                acc1[r][c] = vfmaq_f32(acc1[r][c], w1, x1[c]);
            }
        }
    }
    if (i + 4 <= n) {
        UNROLL
        for (int r = 0; r < R; r++) {
            const float32x4_t w0 = load_f4(type, w[r], i);
            UNROLL
            for (int c = 0; c < C; c++) acc0[r][c] = vfmaq_f32(acc0[r][c], w0, vld1q_f32(a[c] + i));
        }
        i += 4;
    }
    for (; i < n; i++)
        UNROLL
        for (int r = 0; r < R; r++)
            UNROLL
            for (int c = 0; c < C; c++) tail[r][c] = fmaf(load_f1(type, w[r], i), a[c][i], tail[r][c]);
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int c = 0; c < C; c++) out[r * C + c] = vaddvq_f32(vaddq_f32(acc0[r][c], acc1[r][c])) + tail[r][c];
}

INLINE void float_gemv(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, const void *a, float *y) {
    const char *wb = w;
    const float *ap[1] = {a};
    int64_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
        const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                             wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
        float_tile(type, 4, 1, n, wp, ap, y + r);
    }
    for (; r < nrows; r++) {
        const char *wp[1] = {wb + (size_t)r * row_bytes};
        float_tile(type, 1, 1, n, wp, ap, y + r);
    }
}

// Tiles of 4 rows x 2 columns, then 1 row x 2 columns, then single columns.
INLINE void float_gemm(const int type, int64_t n, int64_t nrows, const void *w,
                       size_t row_bytes, int64_t ncols, const void *a, size_t a_stride,
                       float *y, int64_t y_stride) {
    const char *wb = w, *ab = a;
    int64_t c = 0;
    for (; c + 2 <= ncols; c += 2) {
        const float *ap[2] = {(const float *)(ab + (size_t)c * a_stride),
                              (const float *)(ab + (size_t)(c + 1) * a_stride)};
        float out[8];
        int64_t r = 0;
        for (; r + 4 <= nrows; r += 4) {
            const char *wp[4] = {wb + (size_t)r * row_bytes, wb + (size_t)(r + 1) * row_bytes,
                                 wb + (size_t)(r + 2) * row_bytes, wb + (size_t)(r + 3) * row_bytes};
            float_tile(type, 4, 2, n, wp, ap, out);
            UNROLL
            for (int i = 0; i < 4; i++) {
                y[c * y_stride + r + i] = out[i * 2];
                y[(c + 1) * y_stride + r + i] = out[i * 2 + 1];
            }
        }
        for (; r < nrows; r++) {
            const char *wp[1] = {wb + (size_t)r * row_bytes};
            float_tile(type, 1, 2, n, wp, ap, out);
            y[c * y_stride + r] = out[0];
            y[(c + 1) * y_stride + r] = out[1];
        }
    }
    for (; c < ncols; c++) float_gemv(type, n, nrows, w, row_bytes, ab + (size_t)c * a_stride, y + c * y_stride);
}

#define FLOAT_KERNELS(name, type)                                                             \
    static void gemv_##name##_neon(int64_t n, int64_t nrows, const void *w, size_t row_bytes, \
                                   const void *a, float *y) {                                 \
        float_gemv(type, n, nrows, w, row_bytes, a, y);                                       \
    }                                                                                         \
    static void gemm_##name##_neon(int64_t n, int64_t nrows, const void *w, size_t row_bytes, \
                                   int64_t ncols, const void *a, size_t a_stride, float *y,   \
                                   int64_t y_stride) {                                        \
        float_gemm(type, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);            \
    }

FLOAT_KERNELS(f32, ROOST_TYPE_F32)
FLOAT_KERNELS(f16, ROOST_TYPE_F16)
FLOAT_KERNELS(bf16, ROOST_TYPE_BF16)

// ---- activation quantizers: bitwise equal to the ref ones ---------------------------

// 32 floats -> 32 int8 (two halves, element order) and their scale. amax with maxNum
// (as fmaxf), q = round-half-away(x * id) (as roundf) via FCVTAS.
INLINE void quant32(const float *x, float *dout, int8x16_t *q0, int8x16_t *q1) {
    float32x4_t v[8];
    float32x4_t mx = vdupq_n_f32(0.0f);
    UNROLL
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        mx = vmaxnmq_f32(mx, vabsq_f32(v[j]));
    }
    const float amax = vmaxnmvq_f32(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *dout = d;
    int16x8_t s[4];
    UNROLL
    for (int j = 0; j < 4; j++) {
        const int32x4_t i0 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * j], id));
        const int32x4_t i1 = vcvtaq_s32_f32(vmulq_n_f32(v[2 * j + 1], id));
        s[j] = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
    }
    *q0 = vcombine_s8(vqmovn_s16(s[0]), vqmovn_s16(s[1]));
    *q1 = vcombine_s8(vqmovn_s16(s[2]), vqmovn_s16(s[3]));
}

static void quantize_q8_0_neon(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d;
        int8x16_t q0, q1;
        quant32(x + i * QK8_0, &d, &q0, &q1);
        y[i].d = roost_fp32_to_fp16(d);
        vst1q_s8(y[i].qs, q0);
        vst1q_s8(y[i].qs + 16, q1);
    }
}

static void quantize_q8_1_neon(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float d;
        int8x16_t q0, q1;
        quant32(x + i * QK8_1, &d, &q0, &q1);
        y[i].d = roost_fp32_to_fp16(d);
        vst1q_s8(y[i].qs, q0);
        vst1q_s8(y[i].qs + 16, q1);
        const int sum = (int)vaddlvq_s8(q0) + (int)vaddlvq_s8(q1);
        y[i].s = roost_fp32_to_fp16((float)sum * d);
    }
}

// ---- dequantize: bitwise equal to the ref ones --------------------------------------
// y = float(q) * d, then + m for the _1 types (separate multiply and add, as the ref).

INLINE void store_i8x16(const int8x16_t q, const float d, const float m, const int add_m, float *y) {
    const int16x8_t l = vmovl_s8(vget_low_s8(q)), h = vmovl_high_s8(q);
    const int32x4_t parts[4] = {vmovl_s16(vget_low_s16(l)), vmovl_high_s16(l),
                                vmovl_s16(vget_low_s16(h)), vmovl_high_s16(h)};
    UNROLL
    for (int j = 0; j < 4; j++) {
        float32x4_t f = vmulq_n_f32(vcvtq_f32_s32(parts[j]), d);
        if (add_m) f = vaddq_f32(f, vdupq_n_f32(m));
        vst1q_f32(y + 4 * j, f);
    }
}

#define QUANT_DEQUANT(name, type, bsize)                                                     \
    static void dequantize_##name##_neon(const void *vx, float *y, int64_t n) {             \
        const char *x = vx;                                                                 \
        for (int64_t i = 0; i < n / 32; i++) {                                              \
            float d, m = 0.0f;                                                              \
            int8x16_t q0, q1;                                                               \
            load_w(type, x + (size_t)i * (bsize), &q0, &q1, &d, &m);                        \
            store_i8x16(q0, d, m, has_min(type), y + i * 32);                               \
            store_i8x16(q1, d, m, has_min(type), y + i * 32 + 16);                          \
        }                                                                                   \
    }

QUANT_DEQUANT(q4_0, ROOST_TYPE_Q4_0, sizeof(block_q4_0))
QUANT_DEQUANT(q4_1, ROOST_TYPE_Q4_1, sizeof(block_q4_1))
QUANT_DEQUANT(q5_0, ROOST_TYPE_Q5_0, sizeof(block_q5_0))
QUANT_DEQUANT(q5_1, ROOST_TYPE_Q5_1, sizeof(block_q5_1))
QUANT_DEQUANT(q8_0, ROOST_TYPE_Q8_0, sizeof(block_q8_0))

static void dequantize_q8_1_neon(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float d = h2f(x[i].d);
        store_i8x16(vld1q_s8(x[i].qs), d, 0.0f, 0, y + i * 32);
        store_i8x16(vld1q_s8(x[i].qs + 16), d, 0.0f, 0, y + i * 32 + 16);
    }
}

static void dequantize_f16_neon(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
        vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) y[i] = h2f(x[i]);
}

static void dequantize_bf16_neon(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t h = vld1q_u16(x + i);
        vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)));
        vst1q_f32(y + i + 4, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)));
    }
    for (; i < n; i++) y[i] = bf2f(x[i]);
}

#define REGISTER_QUANT(k, SFX)                                   \
    do {                                                         \
        (k)->gemv[ROOST_TYPE_Q4_0] = gemv_q4_0_##SFX;            \
        (k)->gemv[ROOST_TYPE_Q4_1] = gemv_q4_1_##SFX;            \
        (k)->gemv[ROOST_TYPE_Q5_0] = gemv_q5_0_##SFX;            \
        (k)->gemv[ROOST_TYPE_Q5_1] = gemv_q5_1_##SFX;            \
        (k)->gemv[ROOST_TYPE_Q8_0] = gemv_q8_0_##SFX;            \
        (k)->gemm[ROOST_TYPE_Q4_0] = gemm_q4_0_##SFX;            \
        (k)->gemm[ROOST_TYPE_Q4_1] = gemm_q4_1_##SFX;            \
        (k)->gemm[ROOST_TYPE_Q5_0] = gemm_q5_0_##SFX;            \
        (k)->gemm[ROOST_TYPE_Q5_1] = gemm_q5_1_##SFX;            \
        (k)->gemm[ROOST_TYPE_Q8_0] = gemm_q8_0_##SFX;            \
    } while (0)

void roost_register_neon_legacy(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_0] = quantize_q8_0_neon;
    k->quantize[ROOST_TYPE_Q8_1] = quantize_q8_1_neon;

    k->dequantize[ROOST_TYPE_F16] = dequantize_f16_neon;
    k->dequantize[ROOST_TYPE_BF16] = dequantize_bf16_neon;
    k->dequantize[ROOST_TYPE_Q4_0] = dequantize_q4_0_neon;
    k->dequantize[ROOST_TYPE_Q4_1] = dequantize_q4_1_neon;
    k->dequantize[ROOST_TYPE_Q5_0] = dequantize_q5_0_neon;
    k->dequantize[ROOST_TYPE_Q5_1] = dequantize_q5_1_neon;
    k->dequantize[ROOST_TYPE_Q8_0] = dequantize_q8_0_neon;
    k->dequantize[ROOST_TYPE_Q8_1] = dequantize_q8_1_neon;

    k->gemv[ROOST_TYPE_F32] = gemv_f32_neon;
    k->gemv[ROOST_TYPE_F16] = gemv_f16_neon;
    k->gemv[ROOST_TYPE_BF16] = gemv_bf16_neon;
    k->gemm[ROOST_TYPE_F32] = gemm_f32_neon;
    k->gemm[ROOST_TYPE_F16] = gemm_f16_neon;
    k->gemm[ROOST_TYPE_BF16] = gemm_bf16_neon;

    // dispatch.c detects the CPU before registering.
    if (roost_cpu.dotprod) REGISTER_QUANT(k, dp);
    else REGISTER_QUANT(k, neon);
}

#else

void roost_register_neon_legacy(roost_kernels *k) { (void)k; }

#endif
