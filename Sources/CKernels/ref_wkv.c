// Reference RWKV recurrences (see roost_kernels.h for the formulas). Plain float32 loops
// in index order: out sums over i (or j) ascending, one float accumulator.
#include "internal.h"

// The formulas are separately rounded float operations: no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static void wkv6_ref(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
                     const float *v, const float *w, int64_t w_stride, const float *u,
                     float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++) {
        const float *rt = r + t * C, *kt = k + t * C, *vt = v + t * C, *wt = w + t * w_stride;
        float *ot = out + t * C;
        for (int64_t h = 0; h < H; h++) {
            float *S = state + h * N * N;
            const int64_t o = h * N;
            for (int64_t j = 0; j < N; j++) ot[o + j] = 0.0f;
            for (int64_t i = 0; i < N; i++) {
                const float ri = rt[o + i], ki = kt[o + i], wi = wt[o + i], uk = u[o + i] * ki;
                float *Si = S + i * N;
                for (int64_t j = 0; j < N; j++) {
                    const float kv = ki * vt[o + j];
                    ot[o + j] += ri * (uk * vt[o + j] + Si[j]);
                    Si[j] = wi * Si[j] + kv;
                }
            }
        }
    }
}

static void wkv7_ref(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
                     const float *k, const float *v, const float *a, const float *b,
                     float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++) {
        const float *rt = r + t * C, *wt = w + t * C, *kt = k + t * C, *vt = v + t * C;
        const float *at = a + t * C, *bt = b + t * C;
        float *ot = out + t * C;
        for (int64_t h = 0; h < H; h++) {
            float *S = state + h * N * N;
            const int64_t o = h * N;
            for (int64_t i = 0; i < N; i++) {
                float *Si = S + i * N;
                float sa = 0.0f;
                for (int64_t j = 0; j < N; j++) sa += Si[j] * at[o + j];
                const float vi = vt[o + i];
                float y = 0.0f;
                for (int64_t j = 0; j < N; j++) {
                    Si[j] = Si[j] * wt[o + j] + sa * bt[o + j] + vi * kt[o + j];
                    y += Si[j] * rt[o + j];
                }
                ot[o + i] = y;
            }
        }
    }
}

void roost_register_ref_wkv(roost_kernels *k) {
    k->wkv6 = wkv6_ref;
    k->wkv7 = wkv7_ref;
}
