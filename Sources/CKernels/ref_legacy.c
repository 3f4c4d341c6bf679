// Reference kernels for the legacy quant formats (blocks of 32): Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0 weights, Q8_0 / Q8_1 activations.
//
// Dot products: per block an exact integer sum, then one float combine
//   Q4_0/Q5_0/Q8_0 x Q8_0:  acc += (float)isum * (dw * da)
//   Q4_1/Q5_1 x Q8_1:        acc += (float)isum * (dw * da) + mw * sa
// with blocks accumulated in order into one float.
#include "internal.h"

// The formulas above are separately rounded float operations: no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static inline float h2f(roost_half h) { return roost_fp16_to_fp32(h); }

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) |
           ((uint32_t)qh[3] << 24);
}

// ---- activation quantizers (ggml's quantize_row_q8_0_ref / q8_1_ref) ----------------

static void quantize_q8_0_ref(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = roost_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

static void quantize_q8_1_ref(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = roost_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            const int8_t q = (int8_t)roundf(xb[j] * id);
            y[i].qs[j] = q;
            sum += q;
        }
        y[i].s = roost_fp32_to_fp16((float)sum * d);
    }
}

// ---- dequantize -------------------------------------------------------------------

static void dequantize_q4_0_ref(const void *vx, float *y, int64_t n) {
    const block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[i * QK4_0 + j] = (float)((x[i].qs[j] & 0x0f) - 8) * d;
            y[i * QK4_0 + j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequantize_q4_1_ref(const void *vx, float *y, int64_t n) {
    const block_q4_1 *x = vx;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[i * QK4_1 + j] = (float)(x[i].qs[j] & 0x0f) * d + m;
            y[i * QK4_1 + j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void dequantize_q5_0_ref(const void *vx, float *y, int64_t n) {
    const block_q5_0 *x = vx;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        const float d = h2f(x[i].d);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            y[i * QK5_0 + j] = (float)(((x[i].qs[j] & 0x0f) | h0) - 16) * d;
            y[i * QK5_0 + j + 16] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void dequantize_q5_1_ref(const void *vx, float *y, int64_t n) {
    const block_q5_1 *x = vx;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            y[i * QK5_1 + j] = (float)((x[i].qs[j] & 0x0f) | h0) * d + m;
            y[i * QK5_1 + j + 16] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void dequantize_q8_0_ref(const void *vx, float *y, int64_t n) {
    const block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

static void dequantize_q8_1_ref(const void *vx, float *y, int64_t n) {
    const block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[i * QK8_1 + j] = (float)x[i].qs[j] * d;
    }
}

// ---- row dot products ---------------------------------------------------------------

static float dot_q4_0_q8_0(int64_t nb, const block_q4_0 *x, const block_q8_0 *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((x[i].qs[j] & 0x0f) - 8) * a[i].qs[j];
            s += ((x[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
        }
        acc += (float)s * (h2f(x[i].d) * h2f(a[i].d));
    }
    return acc;
}

static float dot_q4_1_q8_1(int64_t nb, const block_q4_1 *x, const block_q8_1 *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            s += (x[i].qs[j] & 0x0f) * a[i].qs[j];
            s += (x[i].qs[j] >> 4) * a[i].qs[j + 16];
        }
        acc += (float)s * (h2f(x[i].d) * h2f(a[i].d)) + h2f(x[i].m) * h2f(a[i].s);
    }
    return acc;
}

static float dot_q5_0_q8_0(int64_t nb, const block_q5_0 *x, const block_q8_0 *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint32_t qh = load_qh(x[i].qh);
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            s += (((x[i].qs[j] & 0x0f) | h0) - 16) * a[i].qs[j];
            s += (((x[i].qs[j] >> 4) | h1) - 16) * a[i].qs[j + 16];
        }
        acc += (float)s * (h2f(x[i].d) * h2f(a[i].d));
    }
    return acc;
}

static float dot_q5_1_q8_1(int64_t nb, const block_q5_1 *x, const block_q8_1 *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint32_t qh = load_qh(x[i].qh);
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            s += ((x[i].qs[j] & 0x0f) | h0) * a[i].qs[j];
            s += ((x[i].qs[j] >> 4) | h1) * a[i].qs[j + 16];
        }
        acc += (float)s * (h2f(x[i].d) * h2f(a[i].d)) + h2f(x[i].m) * h2f(a[i].s);
    }
    return acc;
}

static float dot_q8_0_q8_0(int64_t nb, const block_q8_0 *x, const block_q8_0 *a) {
    float acc = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int32_t s = 0;
        for (int j = 0; j < QK8_0; j++) s += x[i].qs[j] * a[i].qs[j];
        acc += (float)s * (h2f(x[i].d) * h2f(a[i].d));
    }
    return acc;
}

// ---- gemv / gemm ------------------------------------------------------------------
// w: [nrows, n] blocks, a: [n] activation blocks -> y: [nrows]

#define LEGACY_GEMV(name, wblock, ablock, qk, dot)                                          \
    static void gemv_##name##_ref(int64_t n, int64_t nrows, const void *w,                  \
                                  size_t row_bytes, const void *a, float *y) {              \
        for (int64_t r = 0; r < nrows; r++) {                                               \
            const wblock *x = (const wblock *)((const char *)w + (size_t)r * row_bytes);    \
            y[r] = dot(n / (qk), x, (const ablock *)a);                                     \
        }                                                                                   \
    }                                                                                       \
    static void gemm_##name##_ref(int64_t n, int64_t nrows, const void *w,                  \
                                  size_t row_bytes, int64_t ncols, const void *a,           \
                                  size_t a_stride, float *y, int64_t y_stride) {            \
        roost_gemm_by_gemv(gemv_##name##_ref, n, nrows, w, row_bytes, ncols, a, a_stride,   \
                           y, y_stride);                                                    \
    }

LEGACY_GEMV(q4_0, block_q4_0, block_q8_0, QK4_0, dot_q4_0_q8_0)
LEGACY_GEMV(q4_1, block_q4_1, block_q8_1, QK4_1, dot_q4_1_q8_1)
LEGACY_GEMV(q5_0, block_q5_0, block_q8_0, QK5_0, dot_q5_0_q8_0)
LEGACY_GEMV(q5_1, block_q5_1, block_q8_1, QK5_1, dot_q5_1_q8_1)
LEGACY_GEMV(q8_0, block_q8_0, block_q8_0, QK8_0, dot_q8_0_q8_0)

void roost_register_ref_legacy(roost_kernels *k) {
    k->quantize[ROOST_TYPE_Q8_0] = quantize_q8_0_ref;
    k->quantize[ROOST_TYPE_Q8_1] = quantize_q8_1_ref;

    k->dequantize[ROOST_TYPE_Q4_0] = dequantize_q4_0_ref;
    k->dequantize[ROOST_TYPE_Q4_1] = dequantize_q4_1_ref;
    k->dequantize[ROOST_TYPE_Q5_0] = dequantize_q5_0_ref;
    k->dequantize[ROOST_TYPE_Q5_1] = dequantize_q5_1_ref;
    k->dequantize[ROOST_TYPE_Q8_0] = dequantize_q8_0_ref;
    k->dequantize[ROOST_TYPE_Q8_1] = dequantize_q8_1_ref;

    k->gemv[ROOST_TYPE_Q4_0] = gemv_q4_0_ref;
    k->gemv[ROOST_TYPE_Q4_1] = gemv_q4_1_ref;
    k->gemv[ROOST_TYPE_Q5_0] = gemv_q5_0_ref;
    k->gemv[ROOST_TYPE_Q5_1] = gemv_q5_1_ref;
    k->gemv[ROOST_TYPE_Q8_0] = gemv_q8_0_ref;

    k->gemm[ROOST_TYPE_Q4_0] = gemm_q4_0_ref;
    k->gemm[ROOST_TYPE_Q4_1] = gemm_q4_1_ref;
    k->gemm[ROOST_TYPE_Q5_0] = gemm_q5_0_ref;
    k->gemm[ROOST_TYPE_Q5_1] = gemm_q5_1_ref;
    k->gemm[ROOST_TYPE_Q8_0] = gemm_q8_0_ref;
}
