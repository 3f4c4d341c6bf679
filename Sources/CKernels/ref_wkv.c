// Reference RWKV recurrences (see roost_kernels.h for the formulas). Plain float32 loops
// in index order: out sums over i (or j) ascending, one float accumulator.
#include "internal.h"

// The formulas are separately rounded float operations: no multiply-add is fused.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// One head and one token (vectors of N floats at the head's offset, S: N x N).
void roost_wkv6_ref_head(int64_t N, const float *rt, const float *kt, const float *vt, const float *wt,
                         const float *u, float *S, float *ot) {
    for (int64_t j = 0; j < N; j++) ot[j] = 0.0f;
    for (int64_t i = 0; i < N; i++) {
        const float ri = rt[i], ki = kt[i], wi = wt[i], uk = u[i] * ki;
        float *Si = S + i * N;
        for (int64_t j = 0; j < N; j++) {
            const float kv = ki * vt[j];
            ot[j] += ri * (uk * vt[j] + Si[j]);
            Si[j] = wi * Si[j] + kv;
        }
    }
}

void roost_wkv7_ref_head(int64_t N, const float *rt, const float *wt, const float *kt, const float *vt,
                         const float *at, const float *bt, float *S, float *ot) {
    for (int64_t i = 0; i < N; i++) {
        float *Si = S + i * N;
        float sa = 0.0f;
        for (int64_t j = 0; j < N; j++) sa += Si[j] * at[j];
        const float vi = vt[i];
        float y = 0.0f;
        for (int64_t j = 0; j < N; j++) {
            Si[j] = Si[j] * wt[j] + sa * bt[j] + vi * kt[j];
            y += Si[j] * rt[j];
        }
        ot[i] = y;
    }
}

static void wkv6_ref(int64_t T, int64_t H, int64_t N, const float *r, const float *k,
                     const float *v, const float *w, int64_t w_stride, const float *u,
                     float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t o = t * C + h * N;
            roost_wkv6_ref_head(N, r + o, k + o, v + o, w + t * w_stride + h * N, u + h * N,
                                state + h * N * N, out + o);
        }
}

static void wkv7_ref(int64_t T, int64_t H, int64_t N, const float *r, const float *w,
                     const float *k, const float *v, const float *a, const float *b,
                     float *state, float *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t o = t * C + h * N;
            roost_wkv7_ref_head(N, r + o, w + o, k + o, v + o, a + o, b + o, state + h * N * N, out + o);
        }
}

void roost_register_ref_wkv(roost_kernels *k) {
    k->wkv6 = wkv6_ref;
    k->wkv7 = wkv7_ref;
}
