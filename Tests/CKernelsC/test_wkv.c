// WKV kernel tests: the ref path against a double-precision oracle written from the
// formulas in roost_kernels.h, every other path against the ref, and T tokens in one
// call against T single-token calls.
#include "internal.h"
#include "test_blocks.h"

#include <stdio.h>
#include <stdlib.h>

static float *rand_vec(int64_t n, float lo, float hi, uint64_t *rng) {
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * roost_test_rng_unit(rng);
    return p;
}

static float *copy_vec(const float *x, int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) exit(2);
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

// Double oracles, same formulas.
static void wkv6_oracle(int64_t T, int64_t H, int64_t N, const float *r, const float *k, const float *v,
                        const float *w, int64_t ws, const float *u, double *S, double *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            double *Sh = S + h * N * N;
            const int64_t o = h * N;
            for (int64_t j = 0; j < N; j++) {
                double y = 0.0;
                for (int64_t i = 0; i < N; i++)
                    y += (double)r[t * C + o + i] *
                         ((double)u[o + i] * k[t * C + o + i] * v[t * C + o + j] + Sh[i * N + j]);
                out[t * C + o + j] = y;
            }
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < N; j++)
                    Sh[i * N + j] = (double)w[t * ws + o + i] * Sh[i * N + j] +
                                    (double)k[t * C + o + i] * v[t * C + o + j];
        }
}

static void wkv7_oracle(int64_t T, int64_t H, int64_t N, const float *r, const float *w, const float *k,
                        const float *v, const float *a, const float *b, double *S, double *out) {
    const int64_t C = H * N;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            double *Sh = S + h * N * N;
            const int64_t o = h * N;
            for (int64_t i = 0; i < N; i++) {
                double sa = 0.0;
                for (int64_t j = 0; j < N; j++) sa += Sh[i * N + j] * a[t * C + o + j];
                double y = 0.0;
                for (int64_t j = 0; j < N; j++) {
                    Sh[i * N + j] = Sh[i * N + j] * w[t * C + o + j] + sa * b[t * C + o + j] +
                                    (double)v[t * C + o + i] * k[t * C + o + j];
                    y += Sh[i * N + j] * r[t * C + o + j];
                }
                out[t * C + o + i] = y;
            }
        }
}

// max |x - y| / (max |y| + tiny)
static double rel_err_f(const float *x, const float *y, int64_t n) {
    double m = 0.0, e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)y[i]));
        e = fmax(e, fabs((double)x[i] - (double)y[i]));
    }
    return e / (m + 1e-30);
}

static double rel_err_d(const float *x, const double *y, int64_t n) {
    double m = 0.0, e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(y[i]));
        e = fmax(e, fabs((double)x[i] - y[i]));
    }
    return e / (m + 1e-30);
}

static void test_shape(const roost_kernels *k, const roost_kernels *ref, int is_ref, int64_t T, int64_t H,
                       int64_t N, uint64_t *rng) {
    const int64_t C = H * N, TC = T * C, SS = H * N * N;
    float *r = rand_vec(TC, -1, 1, rng), *kk = rand_vec(TC, -1, 1, rng), *v = rand_vec(TC, -1, 1, rng);
    float *w = rand_vec(TC, 0.5f, 0.999f, rng), *u = rand_vec(C, -1, 1, rng);
    float *s0 = rand_vec(SS, -1, 1, rng);
    // RWKV-7: a = -kk (unit per head), b = kk * iclr; keep |a|, |b| small like the model.
    float *a = rand_vec(TC, -0.2f, 0.2f, rng), *b = rand_vec(TC, -0.2f, 0.2f, rng);

    for (int version = 6; version <= 7; version++) {
        for (int constant_w = 0; constant_w <= (version == 6); constant_w++) {
            const int64_t ws = constant_w ? 0 : C;
            float *S = copy_vec(s0, SS), *out = malloc((size_t)TC * sizeof(float));
            float *Sr = copy_vec(s0, SS), *outr = malloc((size_t)TC * sizeof(float));
            float *S1 = copy_vec(s0, SS), *out1 = malloc((size_t)TC * sizeof(float));
            double *Sd = malloc((size_t)SS * sizeof(double)), *outd = malloc((size_t)TC * sizeof(double));
            for (int64_t i = 0; i < SS; i++) Sd[i] = s0[i];
            if (version == 6) {
                k->wkv6(T, H, N, r, kk, v, w, ws, u, S, out);
                ref->wkv6(T, H, N, r, kk, v, w, ws, u, Sr, outr);
                for (int64_t t = 0; t < T; t++)
                    k->wkv6(1, H, N, r + t * C, kk + t * C, v + t * C, w + t * ws, ws, u, S1, out1 + t * C);
                wkv6_oracle(T, H, N, r, kk, v, w, ws, u, Sd, outd);
            } else {
                k->wkv7(T, H, N, r, w, kk, v, a, b, S, out);
                ref->wkv7(T, H, N, r, w, kk, v, a, b, Sr, outr);
                for (int64_t t = 0; t < T; t++)
                    k->wkv7(1, H, N, r + t * C, w + t * C, kk + t * C, v + t * C, a + t * C, b + t * C, S1,
                            out1 + t * C);
                wkv7_oracle(T, H, N, r, w, kk, v, a, b, Sd, outd);
            }
            const char *name = version == 6 ? (constant_w ? "wkv6 (constant w)" : "wkv6") : "wkv7";
            if (is_ref) {
                const double eo = rel_err_d(out, outd, TC), es = rel_err_d(S, Sd, SS);
                roost_test_check(eo <= 1e-5 && es <= 1e-5, "%s T=%lld H=%lld N=%lld: ref vs double oracle: out %.3g, state %.3g",
                                 name, (long long)T, (long long)H, (long long)N, eo, es);
            } else {
                const double eo = rel_err_f(out, outr, TC), es = rel_err_f(S, Sr, SS);
                roost_test_check(eo <= 1e-5 && es <= 1e-5, "%s T=%lld H=%lld N=%lld: differs from ref: out %.3g, state %.3g",
                                 name, (long long)T, (long long)H, (long long)N, eo, es);
            }
            roost_test_check(memcmp(out, out1, (size_t)TC * sizeof(float)) == 0 &&
                                 memcmp(S, S1, (size_t)SS * sizeof(float)) == 0,
                             "%s T=%lld H=%lld N=%lld: T tokens in one call differ from T calls", name,
                             (long long)T, (long long)H, (long long)N);
            free(S);
            free(out);
            free(Sr);
            free(outr);
            free(S1);
            free(out1);
            free(Sd);
            free(outd);
        }
    }
    free(r);
    free(kk);
    free(v);
    free(w);
    free(u);
    free(s0);
    free(a);
    free(b);
}

void roost_test_wkv(const roost_kernels *k, const roost_kernels *ref, int is_ref, uint64_t *rng) {
    roost_test_check(k->wkv6 != NULL && k->wkv7 != NULL, "wkv kernels missing");
    if (!k->wkv6 || !k->wkv7 || !ref->wkv6 || !ref->wkv7) return;
    static const int64_t shapes[][3] = {{1, 1, 64}, {3, 2, 64}, {5, 12, 64}, {4, 16, 8}, {2, 3, 16}, {7, 1, 32}, {3, 2, 6}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        test_shape(k, ref, is_ref, shapes[i][0], shapes[i][1], shapes[i][2], rng);
}
