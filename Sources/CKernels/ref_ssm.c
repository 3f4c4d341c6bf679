// Reference Mamba-1 kernels (see roost_kernels.h for the formulas): plain float32 loops in
// index order, libm's expf, every product and sum rounded separately. The test oracle of
// the SIMD paths; also the fallback of shapes they do not vectorize.
#include "ssm_internal.h"

static void ssm_conv_ref(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x, int64_t x_stride,
                         const float *w, const float *b, float *state, float *y, int64_t y_stride) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * x_stride;
        float *yt = y + t * y_stride;
        for (int64_t c = 0; c < n; c++) {
            float acc = b[c];
            for (int64_t k = 0; k + 1 < K; k++) acc += w[k * ld + c] * state[k * ld + c];
            acc += w[(K - 1) * ld + c] * xt[c];
            for (int64_t k = 0; k + 2 < K; k++) state[k * ld + c] = state[(k + 1) * ld + c];
            if (K > 1) state[(K - 2) * ld + c] = xt[c];
            yt[c] = acc / (1.0f + expf(-acc));
        }
    }
}

float roost_ssm_scan_ref_channel(int64_t N, float xt, float dt_raw, float dt_bias, const float *A,
                                 const float *B, const float *C, float D, float zt, float *s) {
    const float d = roost_ssm_softplus(dt_raw + dt_bias);
    const float dx = d * xt;
    float acc = 0.0f;
    for (int64_t i = 0; i < N; i++) {
        s[i] = s[i] * expf(d * A[i]) + dx * B[i];
        acc += s[i] * C[i];
    }
    const float yv = acc + D * xt;
    return yv * (zt / (1.0f + expf(-zt)));
}

static void ssm_scan_ref(int64_t T, int64_t n, int64_t N, const float *x, int64_t x_stride,
                         const float *dt, int64_t dt_stride, const float *dt_bias, const float *A,
                         const float *B, const float *C, int64_t bc_stride, const float *D, const float *z,
                         int64_t z_stride, float *state, float *y, int64_t y_stride) {
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * x_stride, *dtt = dt + t * dt_stride, *zt = z + t * z_stride;
        const float *Bt = B + t * bc_stride, *Ct = C + t * bc_stride;
        float *yt = y + t * y_stride;
        for (int64_t c = 0; c < n; c++)
            yt[c] = roost_ssm_scan_ref_channel(N, xt[c], dtt[c], dt_bias[c], A + c * N, Bt, Ct, D[c], zt[c],
                                               state + c * N);
    }
}

void roost_register_ref_ssm(roost_kernels *k) {
    k->ssm_conv = ssm_conv_ref;
    k->ssm_scan = ssm_scan_ref;
}

void roost_register_ssm(roost_kernels *tables, const int *available) {
    roost_register_ref_ssm(&tables[ROOST_PATH_REF]);
    if (available[ROOST_PATH_AVX2]) {
        roost_register_avx2_ssm(&tables[ROOST_PATH_AVX2]);
        if (!tables[ROOST_PATH_AVX2].ssm_conv) tables[ROOST_PATH_AVX2].ssm_conv = ssm_conv_ref;
        if (!tables[ROOST_PATH_AVX2].ssm_scan) tables[ROOST_PATH_AVX2].ssm_scan = ssm_scan_ref;
    }
    if (available[ROOST_PATH_AVX512]) {
        roost_register_avx512_ssm(&tables[ROOST_PATH_AVX512]);
        if (!tables[ROOST_PATH_AVX512].ssm_conv) tables[ROOST_PATH_AVX512].ssm_conv = tables[ROOST_PATH_AVX2].ssm_conv;
        if (!tables[ROOST_PATH_AVX512].ssm_scan) tables[ROOST_PATH_AVX512].ssm_scan = tables[ROOST_PATH_AVX2].ssm_scan;
    }
    if (available[ROOST_PATH_NEON]) {
        roost_register_neon_ssm(&tables[ROOST_PATH_NEON]);
        if (!tables[ROOST_PATH_NEON].ssm_conv) tables[ROOST_PATH_NEON].ssm_conv = ssm_conv_ref;
        if (!tables[ROOST_PATH_NEON].ssm_scan) tables[ROOST_PATH_NEON].ssm_scan = ssm_scan_ref;
    }
}
