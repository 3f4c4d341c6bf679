// Reference kernels for float weights (F32, F16, BF16) with F32 activations.
// Each row's dot product is summed element by element in index order in double,
// then rounded once to float.
#include "internal.h"

// ---- dequantize -------------------------------------------------------------------

static void dequantize_f32_ref(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void dequantize_f16_ref(const void *x, float *y, int64_t n) {
    const roost_half *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = roost_fp16_to_fp32(h[i]);
}

static void dequantize_bf16_ref(const void *x, float *y, int64_t n) {
    const uint16_t *h = x;
    for (int64_t i = 0; i < n; i++) y[i] = roost_bf16_to_fp32(h[i]);
}

// ---- gemv: w [nrows, n] (float type), a [n] f32 -> y [nrows] ----------------------

static void gemv_f32_ref(int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                         const void *a, float *y) {
    const float *x = a;
    for (int64_t r = 0; r < nrows; r++) {
        const float *row = (const float *)((const char *)w + (size_t)r * row_bytes);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += (double)row[i] * (double)x[i];
        y[r] = (float)s;
    }
}

static void gemv_f16_ref(int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                         const void *a, float *y) {
    const float *x = a;
    for (int64_t r = 0; r < nrows; r++) {
        const roost_half *row = (const roost_half *)((const char *)w + (size_t)r * row_bytes);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += (double)roost_fp16_to_fp32(row[i]) * (double)x[i];
        y[r] = (float)s;
    }
}

static void gemv_bf16_ref(int64_t n, int64_t nrows, const void *w, size_t row_bytes,
                          const void *a, float *y) {
    const float *x = a;
    for (int64_t r = 0; r < nrows; r++) {
        const uint16_t *row = (const uint16_t *)((const char *)w + (size_t)r * row_bytes);
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += (double)roost_bf16_to_fp32(row[i]) * (double)x[i];
        y[r] = (float)s;
    }
}

// ---- gemm: column by column through the gemv (batch invariant by construction) -----

#define GEMM_BY_GEMV(name, gemv)                                                             \
    static void name(int64_t n, int64_t nrows, const void *w, size_t row_bytes,             \
                     int64_t ncols, const void *a, size_t a_stride, float *y,               \
                     int64_t y_stride) {                                                     \
        roost_gemm_by_gemv(gemv, n, nrows, w, row_bytes, ncols, a, a_stride, y, y_stride);  \
    }

GEMM_BY_GEMV(gemm_f32_ref, gemv_f32_ref)
GEMM_BY_GEMV(gemm_f16_ref, gemv_f16_ref)
GEMM_BY_GEMV(gemm_bf16_ref, gemv_bf16_ref)

void roost_register_ref_float(roost_kernels *k) {
    k->dequantize[ROOST_TYPE_F32] = dequantize_f32_ref;
    k->dequantize[ROOST_TYPE_F16] = dequantize_f16_ref;
    k->dequantize[ROOST_TYPE_BF16] = dequantize_bf16_ref;
    k->gemv[ROOST_TYPE_F32] = gemv_f32_ref;
    k->gemv[ROOST_TYPE_F16] = gemv_f16_ref;
    k->gemv[ROOST_TYPE_BF16] = gemv_bf16_ref;
    k->gemm[ROOST_TYPE_F32] = gemm_f32_ref;
    k->gemm[ROOST_TYPE_F16] = gemm_f16_ref;
    k->gemm[ROOST_TYPE_BF16] = gemm_bf16_ref;
}
