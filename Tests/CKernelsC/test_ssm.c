// Mamba kernel tests (their own binary, built by `make test-c` natively and for AArch64
// under qemu): for every kernel path the CPU has,
//   - the ref path against a double-precision oracle written from the formulas in
//     roost_kernels.h, every other path against the ref (relative error bounds);
//   - T tokens in one call bitwise equal to T single-token calls;
//   - a channel's outputs and state bitwise the same however the channels are split over
//     calls (what the worker pool does);
//   - nothing written outside the outputs and the state.
#include "ssm_internal.h"
#include "test_blocks.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static long n_passed, n_failed;
static const char *cur_path = "";

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...) {
    if (ok) {
        n_passed++;
        return;
    }
    n_failed++;
    if (n_failed <= 60) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "FAIL [%s] ", cur_path);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static float *vec(int64_t n, float lo, float hi, uint64_t *rng) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * roost_test_rng_unit(rng);
    return p;
}

static float *dup(const float *x, int64_t n) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!p) exit(2);
    memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

static double *dzeros(int64_t n) {
    double *p = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
    if (!p) exit(2);
    return p;
}

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

// max |x - y| / (max |y| + tiny) over n values
static double rel(const float *x, const double *y, int64_t n) {
    double m = 0.0, e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs(y[i]));
        e = fmax(e, fabs((double)x[i] - y[i]));
    }
    return e / (m + 1e-30);
}

static double relf(const float *x, const float *y, int64_t n) {
    double m = 0.0, e = 0.0;
    for (int64_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)y[i]));
        e = fmax(e, fabs((double)x[i] - (double)y[i]));
    }
    return e / (m + 1e-30);
}

// ---- conv ------------------------------------------------------------------------------

static void conv_oracle(int64_t T, int64_t n, int64_t K, int64_t ld, const float *x, int64_t xs, const float *w,
                        const float *b, double *state, double *y, int64_t ys) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < n; c++) {
            double acc = b[c];
            for (int64_t k = 0; k + 1 < K; k++) acc += (double)w[k * ld + c] * state[k * ld + c];
            acc += (double)w[(K - 1) * ld + c] * x[t * xs + c];
            for (int64_t k = 0; k + 2 < K; k++) state[k * ld + c] = state[(k + 1) * ld + c];
            if (K > 1) state[(K - 2) * ld + c] = x[t * xs + c];
            y[t * ys + c] = acc / (1.0 + exp(-acc));
        }
}

static void test_conv(const roost_kernels *k, const roost_kernels *ref, int is_ref, int64_t T, int64_t n,
                      int64_t K, uint64_t *rng) {
    const int64_t ld = n + 3, xs = n + 5, ys = n + 2;
    const int64_t SS = (K - 1) * ld + 1, XN = T * xs, YN = T * ys;
    float *x = vec(XN, -3, 3, rng), *w = vec(K * ld, -1, 1, rng), *b = vec(n, -0.5f, 0.5f, rng);
    float *s0 = vec(SS, -3, 3, rng);
    const float sentinel = 12345.0f;
    float *y = vec(YN, 0, 0, rng), *S = dup(s0, SS);
    for (int64_t i = 0; i < YN; i++) y[i] = sentinel;
    k->ssm_conv(T, n, K, ld, x, xs, w, b, S, y, ys);

    // against the oracle (ref) or the ref (SIMD)
    double *yd = dzeros(YN), *Sd = dzeros(SS);
    float *yr = dup(y, YN), *Sr = dup(s0, SS);
    for (int64_t i = 0; i < SS; i++) Sd[i] = s0[i];
    conv_oracle(T, n, K, ld, x, xs, w, b, Sd, yd, ys);
    ref->ssm_conv(T, n, K, ld, x, xs, w, b, Sr, yr, ys);
    int pads = 1;
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = n; c < ys; c++)
            if (y[t * ys + c] != sentinel) pads = 0;
    for (int64_t i = (K - 1) * ld; i < SS; i++) if (S[i] != s0[i]) pads = 0;
    for (int64_t kk = 0; kk + 1 < K; kk++)
        for (int64_t c = n; c < ld; c++)
            if (S[kk * ld + c] != s0[kk * ld + c]) pads = 0;
    check(pads, "conv T=%lld n=%lld K=%lld: wrote outside the outputs or the state", (long long)T, (long long)n,
          (long long)K);
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = n; c < ys; c++) yd[t * ys + c] = sentinel;
    if (is_ref) {
        const double e = rel(y, yd, YN), es = rel(S, Sd, SS);
        check(e <= 1e-5 && es == 0.0, "conv T=%lld n=%lld K=%lld: ref vs oracle %.3g (state %.3g)", (long long)T,
              (long long)n, (long long)K, e, es);
    } else {
        const double e = relf(y, yr, YN);
        check(e <= 1e-5 && same(S, Sr, SS), "conv T=%lld n=%lld K=%lld: differs from ref %.3g", (long long)T,
              (long long)n, (long long)K, e);
    }

    // T tokens in one call == T calls
    float *y1 = dup(y, YN), *S1 = dup(s0, SS);
    for (int64_t t = 0; t < T; t++) k->ssm_conv(1, n, K, ld, x + t * xs, xs, w, b, S1, y1 + t * ys, ys);
    check(same(y, y1, YN) && same(S, S1, SS), "conv T=%lld n=%lld K=%lld: T tokens in one call differ from T calls",
          (long long)T, (long long)n, (long long)K);

    // channel splits
    static const int64_t splits[] = {1, 3, 5, 8, 13, 16, 17};
    int ok = 1;
    for (size_t si = 0; si < sizeof splits / sizeof splits[0]; si++) {
        const int64_t a = splits[si];
        if (a >= n) continue;
        float *y2 = dup(y, YN), *S2 = dup(s0, SS);
        k->ssm_conv(T, a, K, ld, x, xs, w, b, S2, y2, ys);
        k->ssm_conv(T, n - a, K, ld, x + a, xs, w + a, b + a, S2 + a, y2 + a, ys);
        if (!same(y, y2, YN) || !same(S, S2, SS)) ok = 0;
        free(y2);
        free(S2);
    }
    check(ok, "conv T=%lld n=%lld K=%lld: result depends on the channel split", (long long)T, (long long)n,
          (long long)K);
    free(x); free(w); free(b); free(s0); free(y); free(S); free(yd); free(Sd); free(yr); free(Sr); free(y1); free(S1);
}

// ---- scan ------------------------------------------------------------------------------

typedef struct {
    int64_t T, n, N, xs, dts, bcs, zs, ys;
    float *x, *dt, *dtb, *A, *B, *C, *D, *z, *s0;
} scan_case;

static void scan_oracle(const scan_case *q, double *S, double *y) {
    for (int64_t t = 0; t < q->T; t++)
        for (int64_t c = 0; c < q->n; c++) {
            const double v = (double)q->dt[t * q->dts + c] + (double)q->dtb[c];
            const double d = v > 20.0 ? v : log1p(exp(v));
            const double xt = q->x[t * q->xs + c];
            double acc = 0.0;
            for (int64_t i = 0; i < q->N; i++) {
                double *s = S + c * q->N + i;
                *s = *s * exp(d * q->A[c * q->N + i]) + d * xt * q->B[t * q->bcs + i];
                acc += *s * q->C[t * q->bcs + i];
            }
            const double zt = q->z[t * q->zs + c];
            y[t * q->ys + c] = (acc + q->D[c] * xt) * (zt / (1.0 + exp(-zt)));
        }
}

static void run_scan(const roost_kernels *k, const scan_case *q, int64_t t0, int64_t T, int64_t c0, int64_t n,
                     float *S, float *y) {
    k->ssm_scan(T, n, q->N, q->x + t0 * q->xs + c0, q->xs, q->dt + t0 * q->dts + c0, q->dts, q->dtb + c0,
                q->A + c0 * q->N, q->B + t0 * q->bcs, q->C + t0 * q->bcs, q->bcs, q->D + c0, q->z + t0 * q->zs + c0,
                q->zs, S + c0 * q->N, y + t0 * q->ys + c0, q->ys);
}

static void test_scan(const roost_kernels *k, const roost_kernels *ref, int is_ref, int64_t T, int64_t n, int64_t N,
                      uint64_t *rng) {
    scan_case q = {T, n, N, n + 7, 2 * n + 1, 3 * N + 2, n + 3, n + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    q.x = vec(T * q.xs, -2, 2, rng);
    q.dt = vec(T * q.dts, -5, 2, rng);
    if (T * q.dts > 3) q.dt[1] = 25.0f; // softplus's linear branch
    q.dtb = vec(n, -1, 1, rng);
    q.A = vec(n * N, -1, 3, rng);
    for (int64_t i = 0; i < n * N; i++) q.A[i] = -expf(q.A[i]);
    q.B = vec(T * q.bcs, -1, 1, rng);
    q.C = vec(T * q.bcs, -1, 1, rng);
    q.D = vec(n, -1, 1, rng);
    q.z = vec(T * q.zs, -3, 3, rng);
    q.s0 = vec(n * N + 1, -1, 1, rng);
    const int64_t SS = n * N + 1, YN = T * q.ys;
    const float sentinel = -777.0f;
    float *y = vec(YN, 0, 0, rng);
    for (int64_t i = 0; i < YN; i++) y[i] = sentinel;
    float *S = dup(q.s0, SS);
    run_scan(k, &q, 0, T, 0, n, S, y);

    int pads = S[n * N] == q.s0[n * N];
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = n; c < q.ys; c++)
            if (y[t * q.ys + c] != sentinel) pads = 0;
    check(pads, "scan T=%lld n=%lld N=%lld: wrote outside the outputs or the state", (long long)T, (long long)n,
          (long long)N);
    if (is_ref) {
        double *Sd = dzeros(SS), *yd = dzeros(YN);
        for (int64_t i = 0; i < SS; i++) Sd[i] = q.s0[i];
        scan_oracle(&q, Sd, yd);
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = n; c < q.ys; c++) yd[t * q.ys + c] = sentinel;
        const double e = rel(y, yd, YN), es = rel(S, Sd, SS);
        check(e <= 2e-5 && es <= 2e-5, "scan T=%lld n=%lld N=%lld: ref vs oracle %.3g (state %.3g)", (long long)T,
              (long long)n, (long long)N, e, es);
        free(Sd);
        free(yd);
    } else {
        float *yr = dup(y, YN), *Sr = dup(q.s0, SS);
        run_scan(ref, &q, 0, T, 0, n, Sr, yr);
        const double e = relf(y, yr, YN), es = relf(S, Sr, SS);
        check(e <= 2e-5 && es <= 2e-5, "scan T=%lld n=%lld N=%lld: differs from ref %.3g (state %.3g)", (long long)T,
              (long long)n, (long long)N, e, es);
        free(yr);
        free(Sr);
    }

    float *y1 = dup(y, YN), *S1 = dup(q.s0, SS);
    for (int64_t t = 0; t < T; t++) run_scan(k, &q, t, 1, 0, n, S1, y1);
    check(same(y, y1, YN) && same(S, S1, SS), "scan T=%lld n=%lld N=%lld: T tokens in one call differ from T calls",
          (long long)T, (long long)n, (long long)N);

    static const int64_t splits[] = {1, 2, 5, 8, 13};
    int ok = 1;
    for (size_t si = 0; si < sizeof splits / sizeof splits[0]; si++) {
        const int64_t a = splits[si];
        if (a >= n) continue;
        float *y2 = dup(y, YN), *S2 = dup(q.s0, SS);
        run_scan(k, &q, 0, T, 0, a, S2, y2);
        run_scan(k, &q, 0, T, a, n - a, S2, y2);
        if (!same(y, y2, YN) || !same(S, S2, SS)) ok = 0;
        free(y2);
        free(S2);
    }
    check(ok, "scan T=%lld n=%lld N=%lld: result depends on the channel split", (long long)T, (long long)n,
          (long long)N);
    free(q.x); free(q.dt); free(q.dtb); free(q.A); free(q.B); free(q.C); free(q.D); free(q.z); free(q.s0);
    free(y); free(S); free(y1); free(S1);
}

// The polynomial exp of the SIMD paths against libm over its range.
static void test_exp_poly(void) {
    cur_path = "exp";
    double worst = 0.0;
    for (float v = -87.0f; v <= 88.0f; v += 0.01337f) {
        const double e = fabs((double)roost_ssm_exp_poly(v) - exp((double)v)) / exp((double)v);
        worst = fmax(worst, e);
    }
    check(worst <= 4e-7, "polynomial exp: relative error %.3g", worst);
    check(roost_ssm_exp_poly(-1000.0f) < 1e-37f && roost_ssm_exp_poly(0.0f) == 1.0f, "polynomial exp: clamps");
}

int main(void) {
    const roost_kernels *ref = roost_kernels_for(ROOST_PATH_REF);
    if (!ref) return 1;
    test_exp_poly();
    static const int64_t conv_shapes[][3] = {{1, 40, 4}, {7, 37, 4}, {5, 64, 2}, {3, 19, 1}, {4, 33, 8}, {9, 3, 4}, {2, 48, 3}};
    static const int64_t scan_shapes[][3] = {{1, 24, 16}, {6, 37, 16}, {3, 9, 4}, {5, 17, 8}, {4, 5, 6},
                                             {2, 11, 32}, {3, 7, 128}, {8, 64, 16}};
    for (int32_t p = 0; p < ROOST_PATH_COUNT; p++) {
        if (!roost_path_available(p)) continue;
        const roost_kernels *k = roost_kernels_for(p);
        cur_path = roost_path_name(p);
        const long before_p = n_passed, before_f = n_failed;
        check(k->ssm_conv != NULL && k->ssm_scan != NULL, "ssm kernels missing");
        if (!k->ssm_conv || !k->ssm_scan) continue;
        uint64_t rng = 0x55a0000u + (uint64_t)p;
        for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
            test_conv(k, ref, p == ROOST_PATH_REF, conv_shapes[i][0], conv_shapes[i][1], conv_shapes[i][2], &rng);
        for (size_t i = 0; i < sizeof scan_shapes / sizeof scan_shapes[0]; i++)
            test_scan(k, ref, p == ROOST_PATH_REF, scan_shapes[i][0], scan_shapes[i][1], scan_shapes[i][2], &rng);
        printf("ssm kernels: path %-6s %ld passed, %ld failed%s\n", cur_path, n_passed - before_p, n_failed - before_f,
               p != ROOST_PATH_REF && k->ssm_scan == ref->ssm_scan ? " (ref's kernels)" : "");
    }
    printf("ssm kernels: %ld passed, %ld failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
