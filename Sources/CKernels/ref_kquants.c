// Reference kernels for the K-quant formats (super-blocks of QK_K = 256): Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K weights, Q8_K activations. Layouts and values are ggml's
// (ggml-quants.c: dequantize_row_q2_K .. q6_K, quantize_row_q8_K_ref, dequantize_row_q8_K).
//
// Weight values per super-block i (q = the unpacked integer quant of element j):
//   Q2_K: 16 groups of 16, scales[g] = sc | m << 4 (4 + 4 bits), q in [0, 3]
//         w = (d * sc) * q - dmin * m
//   Q3_K: 16 groups of 16, 6-bit scale s (stored as s + 32), q = 2 low bits - (hmask bit ? 0 : 4)
//         in [-4, 3]:   w = (d * (s - 32)) * q
//   Q4_K: 8 groups of 32, 6-bit sc and m (get_scale_min_k4 packing), q in [0, 15]
//         w = (d * sc) * q - dmin * m
//   Q5_K: as Q4_K with a fifth bit from qh, q in [0, 31]
//   Q6_K: 16 groups of 16, int8 scale s, q in [-32, 31]:   w = (d * s) * q
//   Q8_K: w = d * q (d a float, q in [-127, 127]; bsums[g] = sum of q over group g of 16)
// Each product/difference above is a separate float32 operation, in that order (no FMA).
//
// Dot products with Q8_K activations (a.d, a.qs, a.bsums), per super-block an exact int32 sum:
//   Q2_K:       isum = sum_g sc_g * sum_{j in g} q_j * a.qs_j     (16 groups of 16)
//               msum = sum_g m_g * a.bsums_g
//               acc += (a.d * d) * (float)isum - (a.d * dmin) * (float)msum
//   Q3_K:       isum = sum_g (s_g - 32) * sum_{j in g} q_j * a.qs_j  (16 groups of 16)
//               acc += (d * a.d) * (float)isum
//   Q4_K, Q5_K: isum = sum_g sc_g * sum_{j in g} q_j * a.qs_j   (8 groups of 32)
//               msum = sum_{g16} m_{g16 / 2} * a.bsums_g16       (16 groups of 16)
//               acc += (d * a.d) * (float)isum - (dmin * a.d) * (float)msum
//   Q6_K:       isum = sum_g s_g * sum_{j in g} q_j * a.qs_j      (16 groups of 16)
//               acc += (d * a.d) * (float)isum
// with d, dmin the weight block's fp16 scales as floats, acc = 0.0f at the start, the
// super-blocks of a row accumulated in order into that one float, every float operation a
// separately rounded float32 operation (products first, then the difference, then the add).
// The integer sums are exact (they fit in int32 with wide margin). ggml's generic
// Q3_K..Q6_K scalar code spreads the float combine over 8 lanes instead; the integer parts
// are the same, the float rounding differs by a few ulps.
//
// Q8_K quantization (ggml's quantize_row_q8_K_ref): max = the element of largest |x| (the
// first one on ties), iscale = -127.f / max, q = min(127, nearest_int(iscale * x)) with
// ggml's nearest_int (round half to even, via the 1.5 * 2^23 trick), d = 1 / iscale,
// bsums = sums of 16 consecutive q. A block with max |x| = 0 gives d = 0 and zero qs and
// bsums. q is never -128.
#include "internal.h"

// The exact formulas above require that no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static inline float h2f(roost_half h) { return roost_fp16_to_fp32(h); }

// ---- scale unpacking ----------------------------------------------------------------

// Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes (ggml's get_scale_min_k4).
static inline void scale_min_k4(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Q3_K: 16 six-bit scales in 12 bytes, returned minus 32 (in [-32, 31]).
// Low 4 bits: bytes 0..7 (low nibble for scales 0..7, high nibble for 8..15);
// high 2 bits of scale j: bits 2*(j/4) .. 2*(j/4)+1 of byte 8 + j%4.
static inline void scales_q3_k(const uint8_t *s, int out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
        const int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

// ---- integer quants of one super-block, in element order ------------------------------

static inline void quants_q2_k(const block_q2_K *b, int q[QK_K]) {
    // element 128 h + 32 k + l (l < 32) is bits 2k..2k+1 of qs[32 h + l]
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * k + l] = (b->qs[32 * h + l] >> (2 * k)) & 3;
}

static inline void quants_q3_k(const block_q3_K *b, int q[QK_K]) {
    // as Q2_K for the low bits; the high bit of element 128 h + 32 k + l is bit 4 h + k of
    // hmask[l]; a clear high bit subtracts 4
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                const int lo = (b->qs[32 * h + l] >> (2 * k)) & 3;
                const int hb = (b->hmask[l] >> (4 * h + k)) & 1;
                q[128 * h + 32 * k + l] = lo - (hb ? 0 : 4);
            }
}

static inline void quants_q4_k(const block_q4_K *b, int q[QK_K]) {
    // element 64 p + l: low nibble of qs[32 p + l]; element 64 p + 32 + l: high nibble
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            q[64 * p + l] = b->qs[32 * p + l] & 0x0f;
            q[64 * p + 32 + l] = b->qs[32 * p + l] >> 4;
        }
}

static inline void quants_q5_k(const block_q5_K *b, int q[QK_K]) {
    // as Q4_K; the fifth bit of element 32 g + l (g < 8) is bit g of qh[l]
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            const int h0 = (b->qh[l] >> (2 * p)) & 1;
            const int h1 = (b->qh[l] >> (2 * p + 1)) & 1;
            q[64 * p + l] = (b->qs[32 * p + l] & 0x0f) | (h0 << 4);
            q[64 * p + 32 + l] = (b->qs[32 * p + l] >> 4) | (h1 << 4);
        }
}

static inline void quants_q6_k(const block_q6_K *b, int q[QK_K]) {
    // half h (128 elements) uses ql[64 h ..], qh[32 h ..]; for l < 32:
    //   +l:      ql[l] low,      qh[l] bits 0-1
    //   +32 + l: ql[32 + l] low, qh[l] bits 2-3
    //   +64 + l: ql[l] high,     qh[l] bits 4-5
    //   +96 + l: ql[32 + l] high, qh[l] bits 6-7
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h;
        const uint8_t *qh = b->qh + 32 * h;
        int *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            o[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            o[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            o[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        }
    }
}

// ---- dequantize -------------------------------------------------------------------

static void dequantize_q2_k_ref(const void *vx, float *y, int64_t n) {
    const block_q2_K *x = vx;
    int q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        quants_q2_k(&x[i], q);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)(x[i].scales[g] & 0x0f);
            const float ml = dmin * (float)(x[i].scales[g] >> 4);
            for (int l = 0; l < 16; l++) yb[16 * g + l] = dl * (float)q[16 * g + l] - ml;
        }
    }
}

static void dequantize_q3_k_ref(const void *vx, float *y, int64_t n) {
    const block_q3_K *x = vx;
    int q[QK_K], sc[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d);
        quants_q3_k(&x[i], q);
        scales_q3_k(x[i].scales, sc);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)sc[g];
            for (int l = 0; l < 16; l++) yb[16 * g + l] = dl * (float)q[16 * g + l];
        }
    }
}

static void dequantize_q4_k_ref(const void *vx, float *y, int64_t n) {
    const block_q4_K *x = vx;
    int q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        quants_q4_k(&x[i], q);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 8; g++) {
            uint8_t sc, m;
            scale_min_k4(g, x[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) yb[32 * g + l] = dl * (float)q[32 * g + l] - ml;
        }
    }
}

static void dequantize_q5_k_ref(const void *vx, float *y, int64_t n) {
    const block_q5_K *x = vx;
    int q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
        quants_q5_k(&x[i], q);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 8; g++) {
            uint8_t sc, m;
            scale_min_k4(g, x[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++) yb[32 * g + l] = dl * (float)q[32 * g + l] - ml;
        }
    }
}

static void dequantize_q6_k_ref(const void *vx, float *y, int64_t n) {
    const block_q6_K *x = vx;
    int q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = h2f(x[i].d);
        quants_q6_k(&x[i], q);
        float *yb = y + i * QK_K;
        for (int g = 0; g < 16; g++) {
            const float dl = d * (float)x[i].scales[g];
            for (int l = 0; l < 16; l++) yb[16 * g + l] = dl * (float)q[16 * g + l];
        }
    }
}

static void dequantize_q8_k_ref(const void *vx, float *y, int64_t n) {
    const block_q8_K *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++) y[i * QK_K + j] = x[i].d * (float)x[i].qs[j];
}

// ---- Q8_K activation quantizer -----------------------------------------------------

// ggml's nearest_int: round to nearest, ties to even, for |v| <= 2^22.
static inline int nearest_int(float v) {
    const float t = v + 12582912.0f; // 1.5 * 2^23
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static void quantize_q8_k_ref(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float *xb = x + i * QK_K;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const float v = iscale * xb[j];
            int q = nearest_int(v);
            if (q > 127) q = 127;
            if (q < -127) q = -127; // cannot happen (|v| <= 127 up to rounding); keeps -128 out
            y[i].qs[j] = (int8_t)q;
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)s;
        }
        y[i].d = 1.0f / iscale;
    }
}

// ---- row dot products ---------------------------------------------------------------

// sum over group of `len` elements starting at `off` of q * a
static inline int32_t group_dot(const int *q, const int8_t *a, int off, int len) {
    int32_t s = 0;
    for (int l = 0; l < len; l++) s += q[off + l] * a[off + l];
    return s;
}

static float dot_q2_k_q8_k(int64_t nb, const block_q2_K *x, const block_q8_K *a) {
    float acc = 0.0f;
    int q[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        quants_q2_k(&x[i], q);
        int32_t isum = 0, msum = 0;
        for (int g = 0; g < 16; g++) {
            isum += (x[i].scales[g] & 0x0f) * group_dot(q, a[i].qs, 16 * g, 16);
            msum += (x[i].scales[g] >> 4) * a[i].bsums[g];
        }
        const float dall = a[i].d * h2f(x[i].d);
        const float dmin = a[i].d * h2f(x[i].dmin);
        const float t = dall * (float)isum;
        const float u = dmin * (float)msum;
        acc += t - u;
    }
    return acc;
}

static float dot_q3_k_q8_k(int64_t nb, const block_q3_K *x, const block_q8_K *a) {
    float acc = 0.0f;
    int q[QK_K], sc[16];
    for (int64_t i = 0; i < nb; i++) {
        quants_q3_k(&x[i], q);
        scales_q3_k(x[i].scales, sc);
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) isum += sc[g] * group_dot(q, a[i].qs, 16 * g, 16);
        const float d = h2f(x[i].d) * a[i].d;
        acc += d * (float)isum;
    }
    return acc;
}

// Q4_K and Q5_K share the combine; only the quants differ.
static inline float combine_q45_k(const block_q8_K *a, const int q[QK_K], const uint8_t *scales,
                                  roost_half hd, roost_half hdmin) {
    int32_t isum = 0, msum = 0;
    for (int g = 0; g < 8; g++) {
        uint8_t sc, m;
        scale_min_k4(g, scales, &sc, &m);
        isum += sc * group_dot(q, a->qs, 32 * g, 32);
        msum += m * (a->bsums[2 * g] + a->bsums[2 * g + 1]);
    }
    const float d = h2f(hd) * a->d;
    const float dmin = h2f(hdmin) * a->d;
    const float t = d * (float)isum;
    const float u = dmin * (float)msum;
    return t - u;
}

static float dot_q4_k_q8_k(int64_t nb, const block_q4_K *x, const block_q8_K *a) {
    float acc = 0.0f;
    int q[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        quants_q4_k(&x[i], q);
        acc += combine_q45_k(&a[i], q, x[i].scales, x[i].d, x[i].dmin);
    }
    return acc;
}

static float dot_q5_k_q8_k(int64_t nb, const block_q5_K *x, const block_q8_K *a) {
    float acc = 0.0f;
    int q[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        quants_q5_k(&x[i], q);
        acc += combine_q45_k(&a[i], q, x[i].scales, x[i].d, x[i].dmin);
    }
    return acc;
}

static float dot_q6_k_q8_k(int64_t nb, const block_q6_K *x, const block_q8_K *a) {
    float acc = 0.0f;
    int q[QK_K];
    for (int64_t i = 0; i < nb; i++) {
        quants_q6_k(&x[i], q);
        int32_t isum = 0;
        for (int g = 0; g < 16; g++) isum += x[i].scales[g] * group_dot(q, a[i].qs, 16 * g, 16);
        const float d = h2f(x[i].d) * a[i].d;
        acc += d * (float)isum;
    }
    return acc;
}

// ---- gemv / gemm ------------------------------------------------------------------
// w: [nrows, n] super-blocks, a: [n] Q8_K blocks -> y: [nrows]; each row independent.

#define KQUANT_GEMV(name, wblock, dot)                                                      \
    static void gemv_##name##_ref(int64_t n, int64_t nrows, const void *w,                  \
                                  size_t row_bytes, const void *a, float *y) {              \
        for (int64_t r = 0; r < nrows; r++) {                                               \
            const wblock *x = (const wblock *)((const char *)w + (size_t)r * row_bytes);    \
            y[r] = dot(n / QK_K, x, (const block_q8_K *)a);                                 \
        }                                                                                   \
    }                                                                                       \
    static void gemm_##name##_ref(int64_t n, int64_t nrows, const void *w,                  \
                                  size_t row_bytes, int64_t ncols, const void *a,           \
                                  size_t a_stride, float *y, int64_t y_stride) {            \
        roost_gemm_by_gemv(gemv_##name##_ref, n, nrows, w, row_bytes, ncols, a, a_stride,   \
                           y, y_stride);                                                    \
    }

KQUANT_GEMV(q2_k, block_q2_K, dot_q2_k_q8_k)
KQUANT_GEMV(q3_k, block_q3_K, dot_q3_k_q8_k)
KQUANT_GEMV(q4_k, block_q4_K, dot_q4_k_q8_k)
KQUANT_GEMV(q5_k, block_q5_K, dot_q5_k_q8_k)
KQUANT_GEMV(q6_k, block_q6_K, dot_q6_k_q8_k)

void roost_register_ref_kquants(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_K] = quantize_q8_k_ref;

    k->dequantize[ROOST_TYPE_Q2_K] = dequantize_q2_k_ref;
    k->dequantize[ROOST_TYPE_Q3_K] = dequantize_q3_k_ref;
    k->dequantize[ROOST_TYPE_Q4_K] = dequantize_q4_k_ref;
    k->dequantize[ROOST_TYPE_Q5_K] = dequantize_q5_k_ref;
    k->dequantize[ROOST_TYPE_Q6_K] = dequantize_q6_k_ref;
    k->dequantize[ROOST_TYPE_Q8_K] = dequantize_q8_k_ref;

    k->gemv[ROOST_TYPE_Q2_K] = gemv_q2_k_ref;
    k->gemv[ROOST_TYPE_Q3_K] = gemv_q3_k_ref;
    k->gemv[ROOST_TYPE_Q4_K] = gemv_q4_k_ref;
    k->gemv[ROOST_TYPE_Q5_K] = gemv_q5_k_ref;
    k->gemv[ROOST_TYPE_Q6_K] = gemv_q6_k_ref;

    k->gemm[ROOST_TYPE_Q2_K] = gemm_q2_k_ref;
    k->gemm[ROOST_TYPE_Q3_K] = gemm_q3_k_ref;
    k->gemm[ROOST_TYPE_Q4_K] = gemm_q4_k_ref;
    k->gemm[ROOST_TYPE_Q5_K] = gemm_q5_k_ref;
    k->gemm[ROOST_TYPE_Q6_K] = gemm_q6_k_ref;
}
